// Role grants and time-boxed access, inside an operator session. The rules
// (maximum duration, ticket pattern, approval by a different operator, no
// guardian roles, grants kept as history) are enforced by the database's
// guard trigger (migration 0009); this module asks for what the operator
// wants, records an audit event with the session's reason and ticket, and
// reads grants back for people.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { RefusedError } from '../errors.js';
import type { OrganisationRef, PersonQuery } from '../dsar/subject.js';

type Trx = Transaction<Database>;

export const GRANTABLE_ROLES = ['org_admin', 'site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office'] as const;
export type GrantableRole = (typeof GRANTABLE_ROLES)[number];
/** Roles that see every child of their site(s). */
export const WHOLE_SITE_ROLES = ['org_admin', 'site_admin', 'senco', 'safeguarding_lead', 'office'] as const;

export function parseRole(value: string): GrantableRole {
  if (value === 'guardian') {
    throw new RefusedError('guardian links are kept in guardianships, not granted as roles', `Roles: ${GRANTABLE_ROLES.join(', ')}`);
  }
  if (!(GRANTABLE_ROLES as readonly string[]).includes(value)) {
    throw new RefusedError(`unknown role "${value}"`, `Roles: ${GRANTABLE_ROLES.join(', ')}`);
  }
  return value as GrantableRole;
}

export interface Grantee {
  readonly orgId: string;
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly kind: string;
}

export interface SiteRef {
  readonly id: string;
  readonly slug: string;
}

export interface Grant {
  readonly id: string;
  readonly org: string;
  readonly site: string | null;
  readonly user: { readonly orgId: string; readonly id: string; readonly email: string | null; readonly name: string | null };
  readonly role: string;
  readonly kind: 'role' | 'access';
  readonly state: 'pending' | 'denied' | 'revoked' | 'scheduled' | 'active' | 'expired';
  readonly startsAt: string;
  readonly expiresAt: string | null;
  /** Seconds until it ends (active), or until it starts (scheduled). */
  readonly secondsLeft: number | null;
  readonly ticket: string | null;
  readonly reason: string | null;
  readonly requestedBy: string | null;
  readonly approvedBy: string | null;
  readonly deniedBy: string | null;
  readonly revokedBy: string | null;
  readonly revokeReason: string | null;
  /** When it stopped counting: expired, revoked or denied. */
  readonly endedAt: string | null;
}

export async function findSite(trx: Trx, org: OrganisationRef, slug: string): Promise<SiteRef> {
  const row = await sql<{ site_id: string }>`select site_id from public.sites where org_id = ${org.id}::uuid and slug = ${slug}`.execute(trx);
  if (!row.rows[0]) throw new RefusedError(`no site "${slug}" in ${org.slug}`, `List sites with: trustctl org show ${org.slug}`);
  return { id: row.rows[0].site_id, slug };
}

/**
 * The user named by --user (parsed by parseSubjectQuery): a user of the
 * organisation, or a member of the platform's support staff.
 */
export async function findGrantee(trx: Trx, org: OrganisationRef, user: PersonQuery): Promise<Grantee> {
  const byId = 'id' in user;
  const v = byId ? user.id : user.email;
  const own = await sql<{ org_id: string; id: string; email: string; full_name: string; kind: string }>`
    select org_id, id, email, full_name, kind from public.users
    where org_id = ${org.id}::uuid and ${byId ? sql`id = ${v}::uuid` : sql`lower(email) = ${v}`}`.execute(trx);
  const support = await sql<{ org_id: string; id: string; email: string; full_name: string }>`
    select org_id, id, email, full_name from app.support_user_directory()
    where ${byId ? sql`id = ${v}::uuid` : sql`lower(email) = ${v}`}`.execute(trx);
  const found = [
    ...own.rows.map((r) => ({ orgId: r.org_id, id: r.id, email: r.email, name: r.full_name, kind: r.kind })),
    ...support.rows.filter((r) => r.org_id !== org.id).map((r) => ({ orgId: r.org_id, id: r.id, email: r.email, name: r.full_name, kind: 'support' })),
  ];
  if (found.length === 0) throw new RefusedError(`no user of ${org.slug} or of the platform’s support staff matches --user ${v}`);
  if (found.length > 1) throw new RefusedError(`--user ${v} matches ${found.length} users`, 'Pass the user’s id');
  return found[0]!;
}

const GRANT_COLUMNS = sql`
  ra.id, o.slug as org, s.slug as site, ra.user_org_id, ra.user_id, u.email, u.full_name, ra.role,
  ra.starts_at, ra.expires_at, ra.ticket, ra.reason, ra.approval_state, ra.approved_by, ra.denied_by,
  ra.revoked_at, ra.revoked_by, ra.revoke_reason, ra.denied_at, app.operator_session_user(ra.granted_by_session) as requested_by,
  extract(epoch from ra.starts_at - statement_timestamp())::float8 as to_start,
  extract(epoch from ra.expires_at - statement_timestamp())::float8 as to_end`;

const GRANT_FROM = sql`
  from public.role_assignments ra
  join public.organisations o on o.org_id = ra.org_id
  left join public.sites s on s.org_id = ra.org_id and s.site_id = ra.site_id
  left join public.users u on u.org_id = ra.user_org_id and u.id = ra.user_id`;

interface GrantRow {
  id: string;
  org: string;
  site: string | null;
  user_org_id: string;
  user_id: string;
  email: string | null;
  full_name: string | null;
  role: string;
  starts_at: Date;
  expires_at: Date | null;
  ticket: string | null;
  reason: string | null;
  approval_state: string;
  approved_by: string | null;
  denied_by: string | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoke_reason: string | null;
  denied_at: Date | null;
  requested_by: string | null;
  to_start: number;
  to_end: number | null;
}

function toGrant(r: GrantRow, support: ReadonlyMap<string, { email: string; name: string }>): Grant {
  const state: Grant['state'] =
    r.approval_state === 'denied' ? 'denied'
    : r.revoked_at ? 'revoked'
    : r.approval_state === 'pending' ? 'pending'
    : r.to_end !== null && r.to_end <= 0 ? 'expired'
    : r.to_start > 0 ? 'scheduled'
    : 'active';
  const who = support.get(r.user_id);
  return {
    id: r.id,
    org: r.org,
    site: r.site,
    user: { orgId: r.user_org_id, id: r.user_id, email: r.email ?? who?.email ?? null, name: r.full_name ?? who?.name ?? null },
    role: r.role,
    kind: r.expires_at ? 'access' : 'role',
    state,
    startsAt: r.starts_at.toISOString(),
    expiresAt: r.expires_at ? r.expires_at.toISOString() : null,
    secondsLeft: state === 'active' ? r.to_end : state === 'scheduled' ? r.to_start : null,
    ticket: r.ticket,
    reason: r.reason,
    requestedBy: r.requested_by,
    approvedBy: r.approved_by,
    deniedBy: r.denied_by,
    revokedBy: r.revoked_by,
    revokeReason: r.revoke_reason,
    endedAt:
      state === 'expired' ? r.expires_at!.toISOString()
      : state === 'revoked' ? r.revoked_at!.toISOString()
      : state === 'denied' ? r.denied_at!.toISOString()
      : null,
  };
}

async function supportDirectory(trx: Trx): Promise<Map<string, { email: string; name: string }>> {
  const rows = await sql<{ id: string; email: string; full_name: string }>`select id, email, full_name from app.support_user_directory()`.execute(trx);
  return new Map(rows.rows.map((r) => [r.id, { email: r.email, name: r.full_name }]));
}

export async function readGrant(trx: Trx, org: OrganisationRef, id: string): Promise<Grant> {
  const rows = await sql<GrantRow>`
    select ${GRANT_COLUMNS} ${GRANT_FROM}
    where ra.org_id = ${org.id}::uuid and ra.id = ${id}::uuid`.execute(trx);
  if (!rows.rows[0]) throw new RefusedError(`no grant ${id} in ${org.slug}`, `List them with: trustctl access list --org ${org.slug}`);
  return toGrant(rows.rows[0], await supportDirectory(trx));
}

export interface ListFilter {
  readonly orgIds: readonly string[];
  readonly kind?: 'role' | 'access';
  readonly states?: ReadonlyArray<Grant['state']>;
  readonly siteId?: string;
  readonly user?: { readonly orgId: string; readonly id: string };
  readonly role?: string;
  /** Ended (expired, revoked, denied) within this many days. */
  readonly endedWithinDays?: number;
}

export async function listGrants(trx: Trx, f: ListFilter): Promise<Grant[]> {
  const rows = await sql<GrantRow>`
    select ${GRANT_COLUMNS} ${GRANT_FROM}
    where ra.org_id = any (${[...f.orgIds]}::uuid[])
      ${f.kind === 'access' ? sql`and ra.expires_at is not null` : f.kind === 'role' ? sql`and ra.expires_at is null` : sql``}
      ${f.siteId ? sql`and ra.site_id = ${f.siteId}::uuid` : sql``}
      ${f.user ? sql`and (ra.user_org_id, ra.user_id) = (${f.user.orgId}::uuid, ${f.user.id}::uuid)` : sql``}
      ${f.role ? sql`and ra.role = ${f.role}` : sql``}
    order by o.slug, s.slug nulls first, ra.role, coalesce(u.email, ra.user_id::text), ra.starts_at, ra.id`.execute(trx);
  const support = await supportDirectory(trx);
  const since = f.endedWithinDays === undefined ? null : Date.now() - f.endedWithinDays * 86_400_000;
  return rows.rows
    .map((r) => toGrant(r, support))
    .filter((g) => !f.states || f.states.includes(g.state))
    .filter((g) => since === null || g.endedAt === null || Date.parse(g.endedAt) >= since);
}

async function audit(trx: Trx, g: { orgId: string; siteId: string | null; id: string; subject: string }, action: string, context: Record<string, unknown>): Promise<void> {
  await sql`select app.audit_record(${g.orgId}::uuid, ${g.siteId}::uuid, ${action}, 'role_assignment', ${g.id},
    array[${g.subject}::uuid], 'success', ${JSON.stringify(context)}::jsonb)`.execute(trx);
}

export interface GrantRequest {
  readonly org: OrganisationRef;
  readonly site: SiteRef | null;
  readonly grantee: Grantee;
  readonly role: GrantableRole;
  readonly reason: string;
  readonly ticket: string | null;
  /** Time-boxed: seconds, and an optional start (default now). Null for a standing role. */
  readonly forSeconds: number | null;
  readonly startsAt?: Date | null;
  /** The grant this one extends (recorded in the audit event). */
  readonly extends?: string;
}

/** Inserts a grant (the database decides pending or live) and audits it. */
export async function createGrant(trx: Trx, req: GrantRequest): Promise<Grant> {
  const starts = req.startsAt ? req.startsAt.toISOString() : null;
  const inserted = await sql<{ id: string }>`
    insert into public.role_assignments (org_id, site_id, user_org_id, user_id, role, starts_at, expires_at, ticket, reason)
    values (${req.org.id}::uuid, ${req.site?.id ?? null}::uuid, ${req.grantee.orgId}::uuid, ${req.grantee.id}::uuid, ${req.role},
      coalesce(${starts}::timestamptz, statement_timestamp()),
      ${req.forSeconds === null ? sql`null` : sql`coalesce(${starts}::timestamptz, statement_timestamp()) + ${req.forSeconds} * interval '1 second'`},
      ${req.ticket}, ${req.reason})
    returning id`.execute(trx);
  const id = inserted.rows[0]!.id;
  const grant = await readGrant(trx, req.org, id);
  const action = req.forSeconds === null ? 'roles.grant' : req.extends ? 'access.extend' : 'access.grant';
  await audit(trx, { orgId: req.org.id, siteId: req.site?.id ?? null, id, subject: req.grantee.id }, action, {
    role: req.role,
    user_org_id: req.grantee.orgId,
    starts_at: grant.startsAt,
    expires_at: grant.expiresAt,
    state: grant.state,
    ...(req.extends ? { extends: req.extends } : {}),
  });
  return grant;
}

export type Decision = { readonly kind: 'approve' } | { readonly kind: 'deny'; readonly reason: string } | { readonly kind: 'revoke'; readonly reason: string } ;

/** Approves, denies or revokes a grant; the database checks who may. */
export async function decideGrant(trx: Trx, org: OrganisationRef, id: string, decision: Decision, action: string): Promise<Grant> {
  const before = await readGrant(trx, org, id);
  const set =
    decision.kind === 'approve' ? sql`approval_state = 'approved'`
    : decision.kind === 'deny' ? sql`approval_state = 'denied', deny_reason = ${decision.reason}`
    : sql`revoked_at = statement_timestamp(), revoke_reason = ${decision.reason}`;
  if (decision.kind === 'revoke' && ['revoked', 'denied', 'expired'].includes(before.state)) {
    throw new RefusedError(`grant ${id} has already ${before.state === 'expired' ? 'expired' : `been ${before.state}`}`);
  }
  await sql`update public.role_assignments set ${set} where org_id = ${org.id}::uuid and id = ${id}::uuid`.execute(trx);
  const after = await readGrant(trx, org, id);
  const siteId = after.site ? (await findSite(trx, org, after.site)).id : null;
  await audit(trx, { orgId: org.id, siteId, id, subject: after.user.id }, action, {
    role: after.role,
    user_org_id: after.user.orgId,
    state: after.state,
    starts_at: after.startsAt,
    expires_at: after.expiresAt,
    ...(decision.kind !== 'approve' ? { because: decision.reason } : {}),
  });
  return after;
}

export interface AccessPolicy {
  readonly org: string;
  readonly role: string;
  readonly maxDurationSeconds: number;
  readonly sensitive: boolean;
  readonly ticketPattern: string;
}

export async function readPolicies(trx: Trx, orgIds: readonly string[]): Promise<AccessPolicy[]> {
  const rows = await sql<{ org: string; role: string; secs: number; sensitive: boolean; ticket_pattern: string }>`
    select o.slug as org, p.role, extract(epoch from p.max_duration)::float8 as secs, p.sensitive, p.ticket_pattern
    from public.access_policies p join public.organisations o on o.org_id = p.org_id
    where p.org_id = any (${[...orgIds]}::uuid[]) order by o.slug, p.role`.execute(trx);
  return rows.rows.map((r) => ({ org: r.org, role: r.role, maxDurationSeconds: r.secs, sensitive: r.sensitive, ticketPattern: r.ticket_pattern }));
}

/**
 * Refuses a --ticket-pattern PostgreSQL cannot compile (the policy's CHECK
 * and the grant trigger match tickets with PostgreSQL's own engine, so only
 * it can say); needs no session.
 *
 * @example
 * await checkTicketPattern(db, '^SUP-[0-9]+$')
 */
export async function checkTicketPattern(db: Kysely<Database>, pattern: string): Promise<void> {
  try {
    await sql`select pg_catalog.regexp_replace('', ${pattern}, '')`.execute(db);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '2201B') throw error;
    throw new RefusedError(
      `--ticket-pattern "${pattern}" is not a regular expression (${(error as Error).message})`,
      'Use a PostgreSQL regular expression, e.g. ^SUP-[0-9]+$',
    );
  }
}

export async function setPolicy(
  trx: Trx,
  org: OrganisationRef,
  p: { role: GrantableRole; maxDurationSeconds?: number; sensitive?: boolean; ticketPattern?: string },
): Promise<AccessPolicy> {
  const existing = (await readPolicies(trx, [org.id])).find((x) => x.role === p.role);
  if (!existing && (p.maxDurationSeconds === undefined || p.ticketPattern === undefined)) {
    throw new RefusedError(`no access policy for ${p.role} in ${org.slug} yet`, 'A new policy needs --max-duration and --ticket-pattern');
  }
  const max = p.maxDurationSeconds ?? existing!.maxDurationSeconds;
  const sensitive = p.sensitive ?? existing?.sensitive ?? (p.role === 'org_admin' || p.role === 'safeguarding_lead');
  const pattern = p.ticketPattern ?? existing!.ticketPattern;
  await sql`
    insert into public.access_policies (org_id, role, max_duration, sensitive, ticket_pattern)
    values (${org.id}::uuid, ${p.role}, ${max} * interval '1 second', ${sensitive}, ${pattern})
    on conflict (org_id, role) do update set max_duration = excluded.max_duration, sensitive = excluded.sensitive,
      ticket_pattern = excluded.ticket_pattern, updated_at = now()`.execute(trx);
  return (await readPolicies(trx, [org.id])).find((x) => x.role === p.role)!;
}
