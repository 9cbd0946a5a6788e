import type { Command } from 'commander';
import { withScopedSession } from '../../scope.js';
import { commandContext, parseSlug } from '../../context.js';
import { dsarReason, localToday, orgOption } from '../shared.js';
import { renderRequest } from './render.js';

export function registerRequestOpen(request: Command): void {
  orgOption(
    request
      .command('open')
      .summary('record a subject access request')
      .description(
        'record a subject access request: who it is about and the day it was received. The legal due date is one calendar month later (the last day of that month where the day does not exist).',
      ),
  )
    .requiredOption('--subject <id|email>', 'a child’s id, or a guardian’s or staff member’s id or email')
    .requiredOption('--request <ref>', 'your reference for the request, e.g. DSAR-2026-014')
    .option('--received <date>', 'the day it was received, YYYY-MM-DD (default: today)')
    .addHelpText('after', '\nExample:\n  trustctl dsar request open --org oak-trust --subject parent@example.org --request DSAR-2026-014 --received 2026-11-20')
    .action(async (opts: { org: string; subject: string; request: string; received?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const org = parseSlug(opts.org);
      const { parseReference, openDsarRequest } = await import('../../../dsar/requests.js');
      const { parseSubjectQuery, findOrganisation, findSubjects, describeSubject } = await import('../../../dsar/subject.js');
      const { parseIsoDate } = await import('../../../dsar/due-date.js');
      const { RefusedError } = await import('../../../errors.js');
      const reference = parseReference(opts.request);
      const query = parseSubjectQuery(opts.subject);
      const today = localToday();
      const receivedOn = opts.received ? parseIsoDate(opts.received, '--received') : today;
      const result = await withScopedSession(ctx, { orgSlugs: [org], reason: dsarReason(ctx, reference, 'record request') }, (session) =>
        session.transaction(async (trx) => {
          const organisation = await findOrganisation(trx, org);
          const subjects = await findSubjects(trx, organisation.id, query);
          if (subjects.length !== 1) {
            throw new RefusedError(
              subjects.length === 0
                ? `no child, guardian or staff member matches --subject in ${org}`
                : `--subject matches ${subjects.length} people: ${subjects.map(describeSubject).join('; ')}`,
              'Pass the person’s id',
            );
          }
          return openDsarRequest(trx, {
            org: organisation,
            reference,
            subject: subjects[0]!,
            receivedOn,
            today,
            sessionId: session.id,
          });
        }),
      );
      ctx.print(result, () => `Recorded ${renderRequest(result, today)}`);
    });
}
