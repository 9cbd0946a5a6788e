import type { Command } from 'commander';
import { RefusedError } from '../../errors.js';
import { commandContext } from '../context.js';

export function registerSeed(db: Command): void {
  db.command('seed')
    .description(
      'add the demo dataset: two organisations (a trust with three schools, a nursery) and the platform’s\n' +
        'support staff, with two years of activity and media files. Does nothing if it is already there.',
    )
    .option('--demo', 'seed the demo dataset (the only dataset so far)')
    .option('--media-dir <dir>', 'where media files are written (default: $TRUSTCTL_HOME/media)')
    .action(async (opts: { demo?: boolean; mediaDir?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      if (!opts.demo) throw new RefusedError('say which dataset to seed', 'Pass --demo');
      const { seedDatabase } = await import('../../seed/index.js');
      const result = await seedDatabase(ctx.db, { mediaDir: opts.mediaDir, logger: ctx.logger });
      ctx.print(result, () => {
        const total = Object.values(result.counts).reduce((a, b) => a + b, 0);
        return result.seeded
          ? `Seeded the demo dataset (${total} rows; media in ${result.mediaDir}).`
          : `The demo dataset is already present (${total} rows); nothing changed.`;
      });
    });
}
