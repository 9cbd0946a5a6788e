import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { commandContext, parseSlug, resolveReason } from '../context.js';

export function registerOrgShow(org: Command): void {
  org
    .command('show')
    .argument('<slug>', 'the organisation’s slug (see: trustctl org list)')
    .description(
      'show an organisation’s sites and how many records each holds. Opens an operator session\n' +
        'scoped to that organisation: needs --reason (and --ticket where policy requires one).',
    )
    .action(async (slug: string, _opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd);
      parseSlug(slug);
      const reason = await resolveReason(ctx, `viewing organisation ${slug}`);
      const { withOperatorDb } = await import('../../db/with-db.js');
      const { withOperatorSession } = await import('../../db/operator-session.js');
      const { summariseOrganisation } = await import('../../db/directory.js');
      const summary = await withOperatorDb(ctx.db, (db) =>
        withOperatorSession(
          db.kysely,
          { reason, ticket: ctx.options.ticket, orgSlugs: [slug], command: ctx.commandLine },
          (session) => summariseOrganisation(session, slug),
          { logger: ctx.logger },
        ),
      );
      ctx.print(summary, () =>
        [
          `${printable(summary.name)} (${summary.slug}, ${summary.kind}) — operator session ${summary.operatorSessionId}`,
          `  ${'site'.padEnd(24)}${'children'.padStart(10)}${'staff'.padStart(8)}${'guardians'.padStart(11)}`,
          ...summary.sites.map(
            (s) =>
              `  ${s.slug.padEnd(24)}${String(s.children).padStart(10)}${String(s.staff).padStart(8)}${String(s.guardians).padStart(11)}`,
          ),
        ].join('\n'),
      );
    });
}
