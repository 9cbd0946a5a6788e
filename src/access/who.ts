// trustctl access who: who could see a site's (or one child's) data at a
// moment, and through which grant. Answered from role_assignments, which
// keep every grant with its start, end, approval and revocation times (the
// guard trigger refuses deletes and rewrites), using the same rules as the
// policies: app.live_roles() and the children policy.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { RefusedError } from '../errors.js';
import type { OrganisationRef } from '../dsar/subject.js';
import type { SiteRef } from './grants.js';
import { WHOLE_SITE_ROLES } from './grants.js';

type Trx = Transaction<Database>;

export interface WhoEntry {
  readonly user: { readonly orgId: string; readonly id: string; readonly email: string | null; readonly name: string | null };
  readonly role: string;
  readonly grantId: string;
  /** Organisation-wide grant (site_id null). */
  readonly orgWide: boolean;
  readonly startsAt: string;
  readonly expiresAt: string | null;
  readonly ticket: string | null;
  /** What the grant lets them see of the site's children. */
  readonly sees: 'every child' | 'their class or caseload' | 'their own children';
}

export interface WhoOperator {
  readonly dbUser: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly allOrgs: boolean;
}

export interface WhoResult {
  readonly org: string;
  readonly site: string;
  readonly child: string | null;
  readonly at: string;
  readonly users: readonly WhoEntry[];
  readonly operators: readonly WhoOperator[];
}

/**
 * Everyone whose grants let them see the site's children at `at` (or, with
 * a child, that child), and the operator sessions that covered the
 * organisation then.
 */
export async function whoCouldSee(
  trx: Trx,
  org: OrganisationRef,
  site: SiteRef,
  child: string | null,
  at: Date,
): Promise<WhoResult> {
  const t = at.toISOString();
  if (child) {
    const exists = await sql`select 1 from public.children where org_id = ${org.id}::uuid and site_id = ${site.id}::uuid and id = ${child}::uuid`.execute(trx);
    if (exists.rows.length === 0) throw new RefusedError(`no child ${child} at ${org.slug}/${site.slug}`);
  }
  // Grants live at t: started, not ended, not revoked, approved (or not needing it) by then.
  const rows = await sql<{
    id: string; role: string; user_org_id: string; user_id: string; site_id: string | null;
    starts_at: Date; expires_at: Date | null; ticket: string | null; email: string | null; full_name: string | null;
    sees_child: boolean;
  }>`
    with live as (
      select ra.* from public.role_assignments ra
      where ra.org_id = ${org.id}::uuid and (ra.site_id is null or ra.site_id = ${site.id}::uuid)
        and ra.created_at <= ${t}::timestamptz and ra.starts_at <= ${t}::timestamptz
        and (ra.expires_at is null or ${t}::timestamptz < ra.expires_at)
        and (ra.revoked_at is null or ${t}::timestamptz < ra.revoked_at)
        and (ra.approval_state = 'not_required' or (ra.approval_state = 'approved' and ra.approved_at <= ${t}::timestamptz))
        and (ra.site_id is not null or ra.role in ('org_admin', 'safeguarding_lead'))
    )
    select l.id, l.role, l.user_org_id, l.user_id, l.site_id, l.starts_at, l.expires_at, l.ticket, u.email, u.full_name,
      case
        when l.role = any (${[...WHOLE_SITE_ROLES]}::text[]) then true
        -- A teacher sees the children of the classes they teach; a guardian their own children.
        when l.role = 'teacher' then exists (
          select 1 from public.group_memberships m
          join public.group_memberships c on c.org_id = m.org_id and c.site_id = m.site_id and c.group_id = m.group_id
          where m.org_id = ${org.id}::uuid and m.site_id = ${site.id}::uuid and l.user_org_id = m.org_id and m.staff_id = l.user_id
            and m.role in ('teacher', 'assistant') and c.child_id is not null
            and (${child}::uuid is null or c.child_id = ${child}::uuid)
            and m.created_at <= ${t}::timestamptz and c.created_at <= ${t}::timestamptz)
        when l.role = 'guardian' then exists (
          select 1 from public.guardianships g
          where g.org_id = ${org.id}::uuid and g.site_id = ${site.id}::uuid
            and (${child}::uuid is null or g.child_id = ${child}::uuid)
            and l.user_org_id = g.org_id and g.guardian_id = l.user_id and g.created_at <= ${t}::timestamptz)
        else false
      end as sees_child
    from live l
    left join public.users u on u.org_id = l.user_org_id and u.id = l.user_id
    order by coalesce(u.email, l.user_id::text), l.role, l.id`.execute(trx);
  const support = new Map(
    (await sql<{ id: string; email: string; full_name: string }>`select id, email, full_name from app.support_user_directory()`.execute(trx)).rows.map(
      (r) => [r.id, r],
    ),
  );
  const users = rows.rows
    .filter((r) => r.sees_child)
    .map((r): WhoEntry => ({
      user: {
        orgId: r.user_org_id,
        id: r.user_id,
        email: r.email ?? support.get(r.user_id)?.email ?? null,
        name: r.full_name ?? support.get(r.user_id)?.full_name ?? null,
      },
      role: r.role,
      grantId: r.id,
      orgWide: r.site_id === null,
      startsAt: r.starts_at.toISOString(),
      expiresAt: r.expires_at ? r.expires_at.toISOString() : null,
      ticket: r.ticket,
      sees: (WHOLE_SITE_ROLES as readonly string[]).includes(r.role) ? 'every child' : r.role === 'teacher' ? 'their class or caseload' : 'their own children',
    }))
    .sort((a, b) => (a.user.email ?? a.user.id).localeCompare(b.user.email ?? b.user.id) || a.role.localeCompare(b.role) || a.grantId.localeCompare(b.grantId));
  const ops = await sql<{ db_user: string; reason: string; ticket: string | null; started_at: Date; ended_at: Date | null; all_orgs: boolean }>`
    select * from app.operator_sessions_covering(${org.id}::uuid, ${t}::timestamptz)`.execute(trx);
  return {
    org: org.slug,
    site: site.slug,
    child,
    at: t,
    users,
    operators: ops.rows.map((o) => ({
      dbUser: o.db_user,
      reason: o.reason,
      ticket: o.ticket,
      startedAt: o.started_at.toISOString(),
      endedAt: o.ended_at ? o.ended_at.toISOString() : null,
      allOrgs: o.all_orgs,
    })),
  };
}
