import type { Command } from 'commander';
import { commandContext } from '../context.js';

export function registerMigrate(db: Command): void {
  db.command('migrate')
    .description(
      'apply pending schema migrations (roles, tables, RLS policies, audit triggers); safe to run twice.\n' +
        'Connect as a superuser or a role that can create roles; with the embedded database this is automatic.',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { withAdminDb } = await import('../../db/with-db.js');
      const { migrate, migrationStatus } = await import('../../db/migrate.js');
      const result = await withAdminDb(ctx.db, async ({ pool, display }) => {
        const client = await pool.connect();
        try {
          const applied = await migrate(client, { logger: ctx.logger });
          return { database: display, applied, migrations: await migrationStatus(client) };
        } finally {
          client.release();
        }
      });
      ctx.print(result, () =>
        result.applied.length === 0
          ? `Schema is up to date (${result.migrations.length} migrations) on ${result.database}.`
          : `Applied ${result.applied.length} migration(s) on ${result.database}:\n${result.applied.map((m) => `  ${m}`).join('\n')}`,
      );
    });
}
