import type { Command } from 'commander';
import { ExitCode, RefusedError } from '../errors.js';
import { commandOnPath } from '../io/on-path.js';
import { commandContext } from './context.js';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .summary('see trustctl work on a laptop')
      .description(
        'see trustctl work on a laptop: start the embedded database, migrate it, seed the demo trust and nursery, take a short tour (operator sessions, tenant scope, the audit trail), then export and verify a subject access bundle for a demo child (written to $TRUSTCTL_HOME/bundles), seal and verify the audit trail, and run the doctor’s isolation checks and live probe',
      )
    .option('--media-dir <dir>', 'where demo media files are written (default: $TRUSTCTL_HOME/media)')
    .action(async (opts: { mediaDir?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { assertCanCreateDirectory } = await import('../io/paths.js');
      if (opts.mediaDir !== undefined) await assertCanCreateDirectory(opts.mediaDir, '--media-dir');
      if (ctx.options.databaseUrl) {
        throw new RefusedError(
          'the demo only runs on the embedded database',
          'Unset DATABASE_URL / --database-url; to seed a database you own, use: trustctl db seed --demo',
        );
      }
      const { seedDatabase } = await import('../seed/index.js');
      const { withOperatorDb } = await import('../db/with-db.js');
      const { runDemoTour, runDemoDsar, runDemoAudit } = await import('../seed/tour.js');
      const { trustctlHome } = await import('../db/embedded.js');
      const { join } = await import('node:path');
      const { VERSION } = await import('../version.js');
      const seed = await seedDatabase(ctx.db, { mediaDir: opts.mediaDir, logger: ctx.logger });
      const tour = await withOperatorDb(ctx.db, (db) =>
        runDemoTour(db.kysely, { commandLine: ctx.commandLine, logger: ctx.logger }).then((t) => ({
          ...t,
          operator: db.posture.role,
        })),
      );
      const dsar = await withOperatorDb(ctx.db, (db) =>
        runDemoDsar(db.kysely, {
          commandLine: ctx.commandLine,
          logger: ctx.logger,
          mediaDir: seed.mediaDir,
          outDir: join(trustctlHome(), 'bundles'),
          toolVersion: VERSION,
        }),
      );
      const audit = await withOperatorDb(ctx.db, (db) =>
        runDemoAudit(db.kysely, { commandLine: ctx.commandLine, logger: ctx.logger }),
      );
      const { runDoctorCommand } = await import('./doctor.js');
      const doctor = await runDoctorCommand(ctx, [], true);
      const { renderTour } = await import('./demo-render.js');
      ctx.print({ seed, tour, dsar, audit, doctor }, () => renderTour(seed, tour, dsar, audit, doctor, commandOnPath('trustctl')));
      if (doctor.summary.error > 0) process.exitCode = ExitCode.verificationFailed;
    });
}
