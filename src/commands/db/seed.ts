import type { Command } from 'commander';
import { RefusedError } from '../../errors.js';
import { commandContext, parseWholeNumber } from '../context.js';

export function registerSeed(db: Command): void {
  db.command('seed')
    .summary('add the demo dataset, or a scale dataset of a given size')
    .description(
      'add a dataset through the administrative connection. --demo: two organisations (a trust with three schools, a nursery) and the platform’s support staff, with two years of activity and media files. --scale N (e.g. 1m, 10m): about N more rows of many organisations and sites of uneven size: children, guardians, staff, classes, up to two years of registers, notes, safeguarding concerns, check-ins, rotas, staff activity and their audit events; set-based SQL in one transaction with row triggers off (a superuser connection), the same rows for the same --seed and --anchor; the demo dataset is added first if it is missing. Either does nothing if its data is already there.',
    )
    .option('--demo', 'seed the demo dataset')
    .option('--scale <rows>', 'seed about this many rows of scale data: 250k, 1m, 10m, …')
    .option('--seed <n>', 'with --scale: the generator’s seed', '1')
    .option('--anchor <date>', 'with --scale: the date the data is generated up to (default: today)')
    .option('--media-dir <dir>', 'where demo media files are written (default: $TRUSTCTL_HOME/media)')
    .addHelpText('after', '\nExamples:\n  trustctl db seed --demo\n  trustctl db seed --scale 1m --seed 7')
    .action(async (opts: { demo?: boolean; scale?: string; seed: string; anchor?: string; mediaDir?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      if (!opts.demo && !opts.scale) throw new RefusedError('say which dataset to seed', 'Pass --demo, or --scale 1m');
      if (opts.demo && opts.scale) throw new RefusedError('pass --demo or --scale, not both', '--scale adds the demo dataset first when it is missing');
      const seed = parseWholeNumber(opts.seed, '--seed', 0, 999_999_999);
      const { parseIsoDate } = await import('../../dsar/due-date.js');
      const anchor = opts.anchor !== undefined ? parseIsoDate(opts.anchor, '--anchor') : undefined;
      const { assertCanCreateDirectory } = await import('../../io/paths.js');
      if (opts.mediaDir !== undefined) await assertCanCreateDirectory(opts.mediaDir, '--media-dir');
      if (!opts.scale) {
        const { seedDatabase } = await import('../../seed/index.js');
        const result = await seedDatabase(ctx.db, { mediaDir: opts.mediaDir, logger: ctx.logger });
        ctx.print(result, () => {
          const total = Object.values(result.counts).reduce((a, b) => a + b, 0);
          return result.seeded
            ? `Seeded the demo dataset (${total} rows; media in ${result.mediaDir}).`
            : `The demo dataset is already present (${total} rows); nothing changed.`;
        });
        return;
      }
      const { parseScale } = await import('../../seed/scale.js');
      const rows = parseScale(opts.scale);
      const { localToday } = await import('../dsar/shared.js');
      const anchorDate = anchor ?? localToday();
      const { seedScaleDatabase } = await import('../../seed/index.js');
      const progress = ctx.interactive && !ctx.options.json;
      const result = await seedScaleDatabase(ctx.db, {
        rows,
        seed,
        anchorDate,
        mediaDir: opts.mediaDir,
        logger: ctx.logger,
        ...(progress
          ? { onProgress: (p: { step: string; seconds: number; stepsLeft: number }) =>
                process.stderr.write(`\r\x1b[2K${p.step} done, ${p.seconds.toFixed(0)} s (${p.stepsLeft} step(s) left)`) }
          : {}),
      });
      if (progress) process.stderr.write('\n');
      ctx.print(result, () => {
        const added = Object.values(result.added).reduce((a, b) => a + b, 0);
        return result.seeded
          ? `Seeded scale data (seed ${result.seed}, anchor ${result.anchorDate}): ${added.toLocaleString('en-GB')} rows in ${result.seconds.toFixed(0)} s — ` +
              `${result.organisations} organisations, ${result.sites} sites, ${result.children.toLocaleString('en-GB')} children.`
          : 'Scale data is already present; nothing changed (use a fresh database for another size).';
      });
    });
}
