import type { Command } from 'commander';
import { commandContext } from '../../context.js';
import { RefusedError } from '../../../errors.js';
import { dsarReason, localToday, parseOrg, withDsarSession } from '../shared.js';
import { renderRequest } from './render.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `dsar request list` and its short form `dsar list`. */
export function registerRequestList(parent: Command, name = 'list'): void {
  parent
    .command(name)
    .description('requests still to answer, soonest due first; overdue ones are marked')
    .option('--org <slug>', 'an organisation (repeatable)', collect, [])
    .option('--all-orgs', 'every organisation (an explicit, audited all-organisation session)')
    .option('--closed', 'include closed requests')
    .action(async (opts: { org: string[]; allOrgs?: boolean; closed?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      if (opts.org.length === 0 && !opts.allOrgs) {
        throw new RefusedError('name the organisations to list', 'Pass --org SLUG (repeatable) or --all-orgs');
      }
      if (opts.org.length > 0 && opts.allOrgs) throw new RefusedError('pass --org or --all-orgs, not both');
      const orgSlugs = opts.org.map(parseOrg);
      const { listDsarRequests } = await import('../../../dsar/requests.js');
      const today = localToday();
      const rows = await withDsarSession(
        ctx,
        { ...(opts.allOrgs ? { allOrgs: true } : { orgSlugs }), reason: dsarReason(ctx, null, 'list what is due') },
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
