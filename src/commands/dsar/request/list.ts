import type { Command } from 'commander';
import { commandContext } from '../../context.js';
import { orgScopeOptions, parseOrgScope, withScopedSession } from '../../scope.js';
import { dsarReason, localToday } from '../shared.js';
import { renderRequest } from './render.js';

/** `dsar request list` and its short form `dsar list`. */
export function registerRequestList(parent: Command, name = 'list'): void {
  orgScopeOptions(parent.command(name), 'list')
    .description('requests still to answer, soonest due first; overdue ones are marked')
    .option('--closed', 'include closed requests')
    .action(async (opts: { org: string[]; allOrgs?: boolean; closed?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'refuse');
      const { listDsarRequests } = await import('../../../dsar/requests.js');
      const today = localToday();
      const rows = await withScopedSession(
        ctx,
        { ...scope, reason: dsarReason(ctx, null, 'list what is due') },
        (session) =>
          session.transaction((trx) =>
            listDsarRequests(trx, { today, includeClosed: opts.closed === true, orgIds: session.orgIds }),
          ),
      );
      ctx.print(rows, () => {
        if (rows.length === 0) return 'No requests to answer.';
        const overdue = rows.filter((r) => r.overdue).length;
        return [
          `${rows.length} request(s)${overdue ? `, ${overdue} OVERDUE` : ''} (today ${today}):`,
          ...rows.map((r) => `  ${renderRequest(r, today)}`),
        ].join('\n');
      });
    });
}
