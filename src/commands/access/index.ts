// `trustctl access …`: time-boxed, ticketed grants enforced by the database,
// their approval by a second operator, and who could see what when.
import type { Command } from 'commander';
import { commandContext, parseSlug, parseUuid, parseWholeNumber, resolveReason, type CommandContext } from '../context.js';
import { RefusedError } from '../../errors.js';
import { inOrg, orgScopeOptions, parseOrgScope, withScopedSession } from '../scope.js';
import type { Grant } from '../../access/grants.js';
import { renderGrant, renderGrants, renderPolicies, renderWho } from './render.js';

const ROLE_HELP = 'org_admin, site_admin, teacher, senco, safeguarding_lead or office';
/** What --user takes, for its refusal. */
const USER_HINT = 'Pass the user’s id or email (see: trustctl roles list)';

function requireTicket(ctx: CommandContext): string {
  if (!ctx.options.ticket) throw new RefusedError('a ticket is required for access', 'Pass --ticket REF (the support ticket this access is for)');
  return ctx.options.ticket;
}

export function registerAccessCommands(program: Command): void {
  const access = program
    .command('access')
    .summary('time-boxed, ticketed access for support staff, approved and enforced by the database')
    .description(
      'time-boxed, ticketed access to one site: the grant’s end is read by the row-level security policies themselves, so access stops the second it expires with nothing running. Each organisation’s access policy sets the longest grant per role and the ticket pattern; sensitive roles (safeguarding lead, organisation admin, and any role the policy marks) wait for a different operator’s approval. Every grant, approval, denial and revocation is in the audit trail with its ticket and reason.',
    );

  access
    .command('grant')
    .summary('give a user a role at one site for a limited time')
    .description(
      'give a user (of the organisation, or the platform’s support staff) a role at one site for a limited time. Needs --ticket (matching the organisation’s pattern) and --reason; longer than the role’s maximum is refused (exit 2). Sensitive roles are created pending until another operator runs trustctl access approve.',
    )
    .requiredOption('--org <slug>', 'the organisation')
    .requiredOption('--site <slug>', 'the site (school or setting)')
    .requiredOption('--user <email|id>', 'who gets access')
    .requiredOption('--role <role>', 'site_admin, teacher, senco, safeguarding_lead or office')
    .requiredOption('--for <duration>', 'how long, e.g. 90s, 30m, 2h, 1h30m')
    .option('--starts <time>', 'when it starts (ISO 8601; default: now)')
    .addHelpText('after', '\nExample:\n  trustctl access grant --org oak-trust --site oak-primary --user pat.support@platform.example.com \\\n    --role site_admin --for 1h --ticket SUP-1234 --reason "Fix the register import"')
    .action(async (opts: { org: string; site: string; user: string; role: string; for: string; starts?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseRole, findSite, findGrantee, createGrant } = await import('../../access/grants.js');
      const { parseDuration, parseTimeOption } = await import('../../access/duration.js');
      const { parseSubjectQuery } = await import('../../dsar/subject.js');
      const role = parseRole(opts.role);
      if (role === 'org_admin') throw new RefusedError('org_admin is organisation-wide; time-boxed access is to one site', 'Use site_admin for a site');
      const siteSlug = parseSlug(opts.site, 'site');
      const user = parseSubjectQuery(opts.user, '--user', USER_HINT);
      const forSeconds = parseDuration(opts.for, '--for');
      const startsAt = opts.starts !== undefined ? parseTimeOption(opts.starts, '--starts') : null;
      const ticket = requireTicket(ctx);
      const reason = await resolveReason(ctx, 'this access grant');
      const grant = await inOrg(ctx, opts.org, reason, async (trx, org) =>
        createGrant(trx, {
          org,
          site: await findSite(trx, org, siteSlug),
          grantee: await findGrantee(trx, org, user),
          role,
          reason,
          ticket,
          forSeconds,
          startsAt,
        }),
      );
      ctx.print(grant, () => `${grant.state === 'pending' ? 'Requested (pending approval by another operator)' : 'Granted'}:\n${renderGrant(grant)}`);
    });

  const decide = (name: 'approve' | 'deny' | 'revoke', summary: string, description: string): void => {
    access
      .command(`${name}`)
      .argument('<id>', 'the grant’s id (see: trustctl access list)')
      .summary(summary)
      .description(description)
      .requiredOption('--org <slug>', 'the grant’s organisation')
      .action(async (id: string, opts: { org: string }, cmd: Command) => {
        const ctx = await commandContext(cmd);
        const grantId = parseUuid(id, 'grant');
        const reason = await resolveReason(ctx, `${name === 'approve' ? 'approving' : name === 'deny' ? 'denying' : 'revoking'} this grant`);
        const { decideGrant } = await import('../../access/grants.js');
        const decision = name === 'approve' ? ({ kind: 'approve' } as const) : ({ kind: name, reason } as const);
        const grant = await inOrg(ctx, opts.org, reason, (trx, org) => decideGrant(trx, org, grantId, decision, `access.${name}`));
        ctx.print(grant, () => `${name === 'approve' ? 'Approved' : name === 'deny' ? 'Denied' : 'Revoked'}:\n${renderGrant(grant)}`);
      });
  };
  decide('approve', 'approve a pending grant (not your own)', 'approve a pending grant. The database refuses if you requested it: a different operator must approve. Its time box starts now, keeping its length.');
  decide('deny', 'deny a pending grant, with --reason', 'deny a pending grant; --reason is recorded. The requester may also deny (withdraw) their own request.');
  decide('revoke', 'end a grant at once, with --reason', 'end a grant at once: the policies stop honouring it from this statement on. --reason is recorded; revocation is final.');

  access
    .command('extend')
    .argument('<id>', 'the grant to extend')
    .summary('request more time: a new grant from the old one’s end, approved like one')
    .description(
      'request more time as a new grant for the same user, site and role, starting when the old one ends (or now, if it has ended). It is checked and, for sensitive roles, approved like any new grant. --ticket defaults to the old grant’s; --reason is required.',
    )
    .requiredOption('--org <slug>', 'the grant’s organisation')
    .requiredOption('--for <duration>', 'how much longer, e.g. 30m, 2h')
    .action(async (id: string, opts: { org: string; for: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const grantId = parseUuid(id, 'grant');
      const { parseDuration } = await import('../../access/duration.js');
      const forSeconds = parseDuration(opts.for, '--for');
      const reason = await resolveReason(ctx, 'extending this grant');
      const { readGrant, findSite, createGrant, parseRole } = await import('../../access/grants.js');
      const grant = await inOrg(ctx, opts.org, reason, async (trx, org) => {
        const old = await readGrant(trx, org, grantId);
        if (old.kind !== 'access' || !old.site) throw new RefusedError(`grant ${grantId} is not time-boxed access to a site`, 'Only access grants can be extended');
        if (old.state === 'denied' || old.state === 'revoked') throw new RefusedError(`grant ${grantId} was ${old.state}; request new access with trustctl access grant`);
        const end = Date.parse(old.expiresAt!);
        return createGrant(trx, {
          org,
          site: await findSite(trx, org, old.site),
          grantee: { orgId: old.user.orgId, id: old.user.id, email: old.user.email ?? '', name: old.user.name ?? '', kind: '' },
          role: parseRole(old.role),
          reason,
          ticket: ctx.options.ticket ?? old.ticket,
          forSeconds,
          startsAt: end > Date.now() ? new Date(end) : null,
          extends: grantId,
        });
      });
      ctx.print(grant, () => `${grant.state === 'pending' ? 'Extension requested (pending approval by another operator)' : 'Extended'}:\n${renderGrant(grant)}`);
    });

  orgScopeOptions(
    access
      .command('list')
      .summary('time-boxed grants: active, scheduled, pending and recently ended, with time left')
      .description(
        'time-boxed grants with their state (active, scheduled, pending, expired, revoked, denied) and time left. Without a filter: everything not yet ended, and what ended in the last 7 days. Without --org: every organisation.',
      ),
    'list',
  )
    .option('--active', 'only grants in force now (and scheduled ones)')
    .option('--pending', 'only grants waiting for approval')
    .option('--expired', 'only grants that ended (expired, revoked or denied) in the last --days')
    .option('--days <n>', 'how far back ended grants are listed', '7')
    .option('--user <email|id>', 'only this user’s grants (needs exactly one --org)')
    .action(async (opts: { org: string[]; allOrgs?: boolean; active?: boolean; pending?: boolean; expired?: boolean; days: string; user?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const days = parseWholeNumber(opts.days, '--days', 0, 3650);
      if (opts.user !== undefined && !('orgSlugs' in scope && scope.orgSlugs.length === 1)) throw new RefusedError('--user needs exactly one --org');
      const { parseSubjectQuery } = await import('../../dsar/subject.js');
      const userQuery = opts.user !== undefined ? parseSubjectQuery(opts.user, '--user', USER_HINT) : undefined;
      const states: Grant['state'][] = [
        ...(opts.active ? (['active', 'scheduled'] as const) : []),
        ...(opts.pending ? (['pending'] as const) : []),
        ...(opts.expired ? (['expired', 'revoked', 'denied'] as const) : []),
      ];
      const { listGrants, findGrantee } = await import('../../access/grants.js');
      const { findOrganisation } = await import('../../dsar/subject.js');
      const grants = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Access: list grants' }, (session) =>
        session.transaction(async (trx) => {
          const user = userQuery ? await findGrantee(trx, await findOrganisation(trx, (scope as { orgSlugs: string[] }).orgSlugs[0]!), userQuery) : undefined;
          return listGrants(trx, {
            orgIds: session.orgIds,
            kind: 'access',
            ...(states.length > 0 ? { states } : {}),
            ...(user ? { user } : {}),
            endedWithinDays: days,
          });
        }),
      );
      ctx.print(grants, () => renderGrants(grants, 'No time-boxed grants match.'));
    });

  access
    .command('who')
    .summary('who could see a site’s (or a child’s) data at a moment, and through which grant')
    .description(
      'who could see a site’s children (or, with --child, that child) at a moment, and through which grant: staff and support by role, teachers by class, guardians by their own children, and the operator sessions that covered the organisation. Read from the grants’ history (start, end, approval and revocation times), which the database keeps.',
    )
    .requiredOption('--org <slug>', 'the organisation')
    .requiredOption('--site <slug>', 'the site')
    .option('--child <id>', 'one child')
    .option('--at <time>', 'the moment (ISO 8601; default: now)')
    .action(async (opts: { org: string; site: string; child?: string; at?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseTimeOption } = await import('../../access/duration.js');
      const at = opts.at !== undefined ? parseTimeOption(opts.at, '--at') : new Date();
      const child = opts.child !== undefined ? parseUuid(opts.child, 'child') : null;
      const siteSlug = parseSlug(opts.site, 'site');
      const { findSite } = await import('../../access/grants.js');
      const { whoCouldSee } = await import('../../access/who.js');
      const result = await inOrg(ctx, opts.org, ctx.options.reason ?? 'Access: who could see', async (trx, org) =>
        whoCouldSee(trx, org, await findSite(trx, org, siteSlug), child, at),
      );
      ctx.print(result, () => renderWho(result));
    });

  const policy = access.command('policy').description('each organisation’s access policy per role: longest grant, approval, ticket pattern');
  policy
    .command('set')
    .summary('set a role’s longest grant, approval rule and ticket pattern')
    .description(
      'set a role’s access policy in an organisation: the longest time-boxed grant, whether it needs a second operator’s approval (organisation admins and safeguarding leads always do), and the pattern (a PostgreSQL regular expression) tickets must match. Audited.',
    )
    .requiredOption('--org <slug>', 'the organisation')
    .requiredOption('--role <role>', ROLE_HELP)
    .option('--max-duration <duration>', 'the longest grant, e.g. 4h')
    .option('--sensitive', 'grants need approval by a different operator')
    .option('--no-sensitive', 'grants take effect without approval (not for org_admin or safeguarding_lead)')
    .option('--ticket-pattern <regex>', 'e.g. ^SUP-[0-9]+$')
    .action(async (opts: { org: string; role: string; maxDuration?: string; sensitive?: boolean; ticketPattern?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { checkTicketPattern, parseRole, setPolicy } = await import('../../access/grants.js');
      const { parseDuration } = await import('../../access/duration.js');
      const role = parseRole(opts.role);
      const max = opts.maxDuration !== undefined ? parseDuration(opts.maxDuration, '--max-duration') : undefined;
      if (opts.sensitive === false && (role === 'org_admin' || role === 'safeguarding_lead')) {
        throw new RefusedError(`${role} grants always need approval`);
      }
      const reason = await resolveReason(ctx, 'changing the access policy');
      const pattern = opts.ticketPattern;
      const result = await inOrg(
        ctx,
        opts.org,
        reason,
        (trx, org) =>
          setPolicy(trx, org, {
            role,
            ...(max !== undefined ? { maxDurationSeconds: max } : {}),
            ...(opts.sensitive !== undefined && cmd.getOptionValueSource('sensitive') === 'cli' ? { sensitive: opts.sensitive } : {}),
            ...(pattern !== undefined ? { ticketPattern: pattern } : {}),
          }),
        pattern !== undefined ? { before: (db) => checkTicketPattern(db, pattern) } : {},
      );
      ctx.print(result, () => renderPolicies([result]));
    });
  orgScopeOptions(policy.command('show').description('the access policies of organisations (default: every organisation)'), 'show')
    .action(async (opts: { org: string[]; allOrgs?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { readPolicies } = await import('../../access/grants.js');
      const result = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Access: show policies' }, (session) =>
        session.transaction((trx) => readPolicies(trx, session.orgIds)),
      );
      ctx.print(result, () => renderPolicies(result));
    });
}

export { ROLE_HELP, USER_HINT };
