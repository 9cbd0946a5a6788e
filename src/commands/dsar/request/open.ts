import type { Command } from 'commander';
import { withScopedSession } from '../../scope.js';
import { commandContext, parseSlug } from '../../context.js';
import { dsarReason, localToday, orgOption } from '../shared.js';
import { renderRequest } from './render.js';

export function registerRequestOpen(request: Command): void {
  orgOption(
    request
      .command('open')
      .summary('record a subject access or erasure request')
      .description(
        'record a request: who it is about, what they asked for (--kind access, the default: a copy of their data; --kind erasure: its erasure) and the day it was received. The legal due date is one calendar month later (the last day of that month where the day does not exist). dsar export answers an access request; dsar erase acts only under an erasure request.',
      ),
  )
    .requiredOption('--subject <id|email>', 'a child’s id, or a guardian’s or staff member’s id or email')
    .requiredOption('--request <ref>', 'your reference for the request, e.g. DSAR-2026-014')
    .option('--kind <kind>', 'access (a copy of their data) or erasure', 'access')
    .option('--received <date>', 'the day it was received, YYYY-MM-DD (default: today)')
    .addHelpText(
      'after',
      '\nExamples:\n  trustctl dsar request open --org oak-trust --subject parent@example.org --request DSAR-2026-014 --received 2026-11-20\n' +
        '  trustctl dsar request open --org oak-trust --subject 6f1c…e2 --request ER-2026-004 --kind erasure',
    )
    .action(async (opts: { org: string; subject: string; request: string; kind: string; received?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const org = parseSlug(opts.org);
      const { parseReference, parseRequestKind, openDsarRequest } = await import('../../../dsar/requests.js');
      const { parseSubjectQuery, findOrganisation, findSubjects, describeSubject } = await import('../../../dsar/subject.js');
      const { parseIsoDate } = await import('../../../dsar/due-date.js');
      const { RefusedError } = await import('../../../errors.js');
      const reference = parseReference(opts.request);
      const kind = parseRequestKind(opts.kind);
      const query = parseSubjectQuery(opts.subject);
      const today = localToday();
      const receivedOn = opts.received !== undefined ? parseIsoDate(opts.received, '--received', { latest: today }) : today;
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
            kind,
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
