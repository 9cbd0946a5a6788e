// `trustctl roles …`: the platform's standing roles (no end date), granted
// and revoked with a reason, every change audited.
import type { Command } from 'commander';
import { commandContext, parseSlug, parseUuid, resolveReason } from '../context.js';
import { RefusedError } from '../../errors.js';
import { ROLE_HELP, USER_HINT } from '../access/index.js';
import { inOrg } from '../scope.js';
import { renderGrant, renderGrants } from '../access/render.js';

export function registerRolesCommands(program: Command): void {
  const roles = program
    .command('roles')
    .summary('standing role grants per site: grant, revoke, list')
    .description(
      'standing role grants (no end date) of the platform’s roles per site or organisation: org_admin, site_admin, teacher, senco, safeguarding_lead, office. Guardian links are kept in guardianships. Sensitive roles (safeguarding lead, organisation admin, and any role the access policy marks) wait for a different operator’s approval (trustctl access approve). Support staff only get time-boxed access (trustctl access grant). Grants are never deleted: revoking keeps them as history for trustctl access who.',
    );

  roles
    .command('grant')
    .summary('give a user of the organisation a standing role')
    .description('give a user of the organisation a standing role at a site, or organisation-wide for org_admin (and safeguarding_lead without --site). Needs --reason.')
    .requiredOption('--org <slug>', 'the organisation')
    .option('--site <slug>', 'the site (omit for organisation-wide org_admin or safeguarding_lead)')
    .requiredOption('--user <email|id>', 'who gets the role')
    .requiredOption('--role <role>', ROLE_HELP)
    .action(async (opts: { org: string; site?: string; user: string; role: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseRole, findSite, findGrantee, createGrant } = await import('../../access/grants.js');
      const { parseSubjectQuery } = await import('../../dsar/subject.js');
      const role = parseRole(opts.role);
      const siteSlug = opts.site !== undefined ? parseSlug(opts.site, 'site') : null;
      const user = parseSubjectQuery(opts.user, '--user', USER_HINT);
      if (role === 'org_admin' && siteSlug) throw new RefusedError('org_admin is organisation-wide: leave out --site');
      if (!siteSlug && role !== 'org_admin' && role !== 'safeguarding_lead') throw new RefusedError(`${role} is granted at a site: pass --site`);
      const reason = await resolveReason(ctx, 'this role grant');
      const grant = await inOrg(ctx, opts.org, reason, async (trx, org) =>
        createGrant(trx, {
          org,
          site: siteSlug ? await findSite(trx, org, siteSlug) : null,
          grantee: await findGrantee(trx, org, user),
          role,
          reason,
          ticket: ctx.options.ticket ?? null,
          forSeconds: null,
        }),
      );
      ctx.print(grant, () => `${grant.state === 'pending' ? 'Requested (pending approval by another operator)' : 'Granted'}:\n${renderGrant(grant)}`);
    });

  roles
    .command('revoke')
    .argument('<id>', 'the grant’s id (see: trustctl roles list)')
    .summary('end a standing role grant, with --reason')
    .description('end a standing role grant at once, keeping it as history. Needs --reason.')
    .requiredOption('--org <slug>', 'the organisation')
    .action(async (id: string, opts: { org: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const grantId = parseUuid(id, 'grant');
      const reason = await resolveReason(ctx, 'revoking this role');
      const { decideGrant } = await import('../../access/grants.js');
      const grant = await inOrg(ctx, opts.org, reason, (trx, org) => decideGrant(trx, org, grantId, { kind: 'revoke', reason }, 'roles.revoke'));
      ctx.print(grant, () => `Revoked:\n${renderGrant(grant)}`);
    });

  roles
    .command('list')
    .summary('role grants in force (and pending) by site, user or role')
    .description('role grants in force or pending in an organisation, standing and time-boxed, filtered by site, user or role; --all adds ended ones.')
    .requiredOption('--org <slug>', 'the organisation')
    .option('--site <slug>', 'only this site (and organisation-wide grants)')
    .option('--user <email|id>', 'only this user')
    .option('--role <role>', 'only this role')
    .option('--all', 'include expired, revoked and denied grants')
    .action(async (opts: { org: string; site?: string; user?: string; role?: string; all?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseRole, findSite, findGrantee, listGrants } = await import('../../access/grants.js');
      const { parseSubjectQuery } = await import('../../dsar/subject.js');
      const role = opts.role !== undefined ? parseRole(opts.role) : undefined;
      const siteSlug = opts.site !== undefined ? parseSlug(opts.site, 'site') : undefined;
      const userQuery = opts.user !== undefined ? parseSubjectQuery(opts.user, '--user', USER_HINT) : undefined;
      const grants = await inOrg(ctx, opts.org, ctx.options.reason ?? 'Roles: list grants', async (trx, org) => {
        const site = siteSlug ? await findSite(trx, org, siteSlug) : undefined;
        const user = userQuery ? await findGrantee(trx, org, userQuery) : undefined;
        const all = await listGrants(trx, {
          orgIds: [org.id],
          ...(user ? { user } : {}),
          ...(role ? { role } : {}),
          ...(opts.all ? {} : { states: ['active', 'scheduled', 'pending'] as const }),
        });
        return site ? all.filter((g) => g.site === site.slug || g.site === null) : all;
      });
      ctx.print(grants, () => renderGrants(grants, 'No role grants match.'));
    });
}
