// Entry point for seeding with an administrative connection.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { trustctlHome } from '../db/embedded.js';
import { withAdminDb, type DbSettings } from '../db/with-db.js';
import { seedDemo, type DemoSeedResult } from './demo.js';

/** Where demo media files live unless told otherwise. */
export function defaultMediaDir(home = trustctlHome()): string {
  return join(home, 'media');
}

/**
 * Seeds the demo dataset on the configured database.
 *
 * @example
 * await seedDatabase(ctx.db, { logger })
 */
export async function seedDatabase(
  settings: DbSettings,
  { mediaDir, logger }: { mediaDir?: string; logger: Logger },
): Promise<DemoSeedResult> {
  return withAdminDb(settings, async ({ pool }) => {
    const client = await pool.connect();
    try {
      return await seedDemo(client, { mediaDir: mediaDir ?? defaultMediaDir(settings.home), logger });
    } finally {
      client.release();
    }
  });
}
