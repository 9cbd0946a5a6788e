import type { Command } from 'commander';
import { withScopedSession } from '../../scope.js';
import { commandContext, parseSlug, parseWholeNumber } from '../../context.js';
import { RefusedError } from '../../../errors.js';
import { dsarReason, localToday, orgOption } from '../shared.js';
import { renderRequest } from './render.js';

export function registerRequestExtend(request: Command): void {
  orgOption(
    request
      .command('extend')
      .summary('extend a request’s deadline by one or two further months (the most the law allows), with the reason recorded')
      .description(
        'extend a request’s deadline by one or two further months (the most the law allows), with the reason recorded. Counted from the day of receipt: received 31 January, extended by 2 → 30 April.',
      ),
  )
    .requiredOption('--request <ref>', 'the request reference')
    .requiredOption('--months <n>', 'further months beyond the first: 1 or 2')
    .requiredOption('--extension-reason <text>', 'why more time is needed (e.g. complex, or several requests)')
    .action(async (opts: { org: string; request: string; months: string; extensionReason: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const org = parseSlug(opts.org);
      const { parseReference, extendDsarRequest } = await import('../../../dsar/requests.js');
      const { findOrganisation } = await import('../../../dsar/subject.js');
      const reference = parseReference(opts.request);
      const months = parseWholeNumber(opts.months, '--months', 1, 2);
      if (opts.extensionReason.trim() === '') throw new RefusedError('--extension-reason must not be empty');
      const result = await withScopedSession(ctx, { orgSlugs: [org], reason: dsarReason(ctx, reference, 'extend deadline') }, (session) =>
        session.transaction(async (trx) =>
          extendDsarRequest(trx, {
            org: await findOrganisation(trx, org),
            reference,
            furtherMonths: months,
            reason: opts.extensionReason,
          }),
        ),
      );
      ctx.print(result, () => `Extended ${renderRequest(result, localToday())}`);
    });
}
