import type { Command } from 'commander';
import { withScopedSession } from '../../scope.js';
import { commandContext, parseSlug } from '../../context.js';
import { dsarReason, localToday, orgOption } from '../shared.js';
import { renderRequest } from './render.js';

export function registerRequestClose(request: Command): void {
  orgOption(request.command('close').description('close a request once it has been answered, with a note of how'))
    .requiredOption('--request <ref>', 'the request reference')
    .option('--note <text>', 'how it was answered, e.g. "bundle sent by secure email 2026-12-01"')
    .action(async (opts: { org: string; request: string; note?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const org = parseSlug(opts.org);
      const { parseReference, closeDsarRequest } = await import('../../../dsar/requests.js');
      const { findOrganisation } = await import('../../../dsar/subject.js');
      const reference = parseReference(opts.request);
      const result = await withScopedSession(ctx, { orgSlugs: [org], reason: dsarReason(ctx, reference, 'close') }, (session) =>
        session.transaction(async (trx) =>
          closeDsarRequest(trx, { org: await findOrganisation(trx, org), reference, note: opts.note?.trim() || null }),
        ),
      );
      ctx.print(result, () => `Closed ${renderRequest(result, localToday())}`);
    });
}
