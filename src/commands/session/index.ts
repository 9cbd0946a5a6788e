// `trustctl session …`: your own operator sessions (who looked, why, when).
import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { commandContext, parseUuid, parseWholeNumber } from '../context.js';
import { RefusedError } from '../../errors.js';

export function registerSessionCommands(program: Command): void {
  const session = program.command('session').description('your operator sessions: each reason, scope and outcome');
  session
    .command('list')
    .description('list your most recent operator sessions')
    .option('--limit <n>', 'how many', '20')
    .action(async (opts: { limit: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const limit = parseWholeNumber(opts.limit, '--limit', 1, 1000);
      const { withOperatorDb } = await import('../../db/with-db.js');
      const { listOwnSessions } = await import('../../db/sessions.js');
      const rows = await withOperatorDb(ctx.db, (db) => listOwnSessions(db.kysely, { limit }));
      ctx.print(rows, () =>
        rows.length === 0
          ? 'No operator sessions yet.'
          : rows
              .map((r) => `${r.id}  ${r.startedAt.toISOString()}  ${(r.outcome ?? 'open').padEnd(11)} ${printable(r.reason)}`)
              .join('\n'),
      );
    });
  session
    .command('show')
    .argument('<id>', 'operator session id (a UUID)')
    .description('show one of your operator sessions in full')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const sessionId = parseUuid(id, 'operator session');
      const { withOperatorDb } = await import('../../db/with-db.js');
      const { listOwnSessions } = await import('../../db/sessions.js');
      const [row] = await withOperatorDb(ctx.db, (db) => listOwnSessions(db.kysely, { id: sessionId, limit: 1 }));
      if (!row) throw new RefusedError(`no operator session ${sessionId} of yours`, 'List yours with: trustctl session list');
      ctx.print(row, () =>
        Object.entries(row)
          .map(([k, v]) => `${k.padEnd(16)} ${printable(v instanceof Date ? v.toISOString() : Array.isArray(v) ? v.join(', ') : String(v ?? ''))}`)
          .join('\n'),
      );
    });
}
