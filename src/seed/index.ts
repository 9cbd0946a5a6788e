// Entry point for seeding with an administrative connection.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { trustctlHome } from '../db/embedded.js';
import { withAdminDb, type DbSettings } from '../db/with-db.js';
import { seedDemo, type DemoSeedResult } from './demo.js';
import { assertSuperuser, seedScale, type ScaleProgress, type ScaleSeedResult } from './scale.js';

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

/**
 * Seeds scale data (and the demo dataset first, if missing) on the
 * configured database.
 *
 * @example
 * await seedScaleDatabase(ctx.db, { rows: 1_000_000, seed: 1, anchorDate: '2026-11-26', logger })
 */
export async function seedScaleDatabase(
  settings: DbSettings,
  input: {
    readonly rows: number;
    readonly seed: number;
    readonly anchorDate: string;
    readonly mediaDir?: string | undefined;
    readonly logger: Logger;
    readonly onProgress?: (p: ScaleProgress) => void;
  },
): Promise<ScaleSeedResult> {
  return withAdminDb(settings, async ({ pool }) => {
    const client = await pool.connect();
    try {
      await assertSuperuser(client);
      await seedDemo(client, { mediaDir: input.mediaDir ?? defaultMediaDir(settings.home), logger: input.logger });
      input.logger.info({ rows: input.rows, seed: input.seed }, 'seeding scale data');
      return await seedScale(client, input);
    } finally {
      client.release();
    }
  });
}
