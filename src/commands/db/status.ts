import type { Command } from 'commander';
import { ExitCode } from '../../errors.js';
import { commandContext } from '../context.js';

export function registerStatus(db: Command): void {
  db.command('status')
    .description('list migrations and whether each is applied, pending or changed since it was applied')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { withAdminDb } = await import('../../db/with-db.js');
      const { migrationStatus } = await import('../../db/migrate.js');
      const result = await withAdminDb(ctx.db, async ({ pool, display }) => {
        const client = await pool.connect();
        try {
          return { database: display, migrations: await migrationStatus(client) };
        } finally {
          client.release();
        }
      });
      ctx.print(result, () =>
        [
          `Database ${result.database}`,
          ...result.migrations.map(
            (m) => `  ${m.state.padEnd(8)} ${m.name}${m.appliedAt ? `  ${m.appliedAt.toISOString()}` : ''}`,
          ),
        ].join('\n'),
      );
      if (result.migrations.some((m) => m.state === 'changed')) process.exitCode = ExitCode.verificationFailed;
    });
}
