// Retention policies (per organisation, optionally per site, per category)
// and legal holds, inside an operator session. Changes are captured in the
// audit trail by the tables' capture triggers, with the session's reason.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { OrganisationRef } from '../dsar/subject.js';
import type { SiteRef } from '../access/grants.js';
import { RefusedError } from '../errors.js';
import { isDerivedClock } from '../datamap/index.js';
import { findCategory, keepForText, sweepRefusal, type Category, type RetentionAction } from './categories.js';

type Trx = Transaction<Database>;

export interface RetentionPolicy {
  readonly id: string;
  readonly org: string;
  /** null: the organisation's policy, for every site without its own. */
  readonly site: string | null;
  readonly category: string;
  readonly keepFor: string;
  readonly clock: string;
  readonly action: RetentionAction;
  readonly updatedAt: string;
}

/** A policy clock meaning: each table's clock from the data map. */
export const DATA_MAP_CLOCK = 'data map';

/**
 * Checks --clock's form, before anything is looked up: a clock derived from
 * the child, or a column name (which checkClock then finds in the tables).
 *
 * @example
 * parseClockName('occurred_at') // 'occurred_at'
 */
export function parseClockName(clock: string): string {
  if (!isDerivedClock(clock) && !/^[a-z_][a-z0-9_]{0,62}$/.test(clock)) {
    throw new RefusedError(`--clock "${clock}" is not a column name`, 'Name a date column of the category’s tables, or child_left_on / child_25th_birthday');
  }
  return clock;
}

/** The clock a policy uses: the data map's for each table unless one column clock is named for all. */
export function checkClock(category: Category, clock: string | undefined, columnsOf: (table: string) => ReadonlyMap<string, string>): string {
  const defaults = [...new Set(category.tables.map((t) => t.clock))];
  if (!clock) return defaults.length === 1 ? defaults[0]! : DATA_MAP_CLOCK;
  parseClockName(clock);
  if (isDerivedClock(clock)) {
    if (!category.tables.every((t) => columnsOf(t.table).has('child_id'))) {
      throw new RefusedError(`--clock ${clock} needs a child on every row of ${category.name}`);
    }
    return clock;
  }
  const missing = category.tables.filter((t) => !columnsOf(t.table).has(clock)).map((t) => t.table);
  if (missing.length > 0) throw new RefusedError(`--clock ${clock} is not a column of ${missing.join(', ')}`, `The data map’s clock for ${category.name}: ${defaults.join(', ')}`);
  const notTime = category.tables.filter((t) => !/^(date|timestamp)/.test(columnsOf(t.table).get(clock) ?? '')).map((t) => t.table);
  if (notTime.length > 0) throw new RefusedError(`--clock ${clock} is not a date or time in ${notTime.join(', ')}`);
  return clock;
}

async function columnsByTable(trx: Trx, tables: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const rows = await sql<{ table_name: string; column_name: string; data_type: string }>`
    select table_name, column_name, data_type from information_schema.columns
    where table_schema = 'public' and table_name = any (${[...tables]}::text[])`.execute(trx);
  const out = new Map<string, Map<string, string>>();
  for (const r of rows.rows) out.set(r.table_name, (out.get(r.table_name) ?? new Map()).set(r.column_name, r.data_type));
  return out;
}

export async function setRetentionPolicy(
  trx: Trx,
  sessionId: string,
  p: { org: OrganisationRef; site: SiteRef | null; category: string; keepFor: string; action: RetentionAction; clock?: string },
): Promise<RetentionPolicy> {
  const category = findCategory(p.category);
  const cols = await columnsByTable(trx, category.tables.map((t) => t.table));
  const clock = checkClock(category, p.clock, (t) => cols.get(t) ?? new Map());
  const refusal = sweepRefusal(category.name, p.action, p.site !== null);
  if (refusal) throw new RefusedError(`a ${category.name} policy to ${p.action}${p.site ? ' at one site' : ''} would never be swept: ${refusal}`);
  const siteKey = p.site?.id ?? null;
  const existing = await sql<{ id: string }>`
    select id from public.retention_policies
    where org_id = ${p.org.id}::uuid and site_id is not distinct from ${siteKey}::uuid and category = ${category.name}`.execute(trx);
  if (existing.rows[0]) {
    await sql`update public.retention_policies set keep_for = ${p.keepFor}::interval, clock = ${clock}, action = ${p.action},
      updated_at = now(), set_by_session = ${sessionId}::uuid where org_id = ${p.org.id}::uuid and id = ${existing.rows[0].id}::uuid`.execute(trx);
  } else {
    await sql`insert into public.retention_policies (org_id, site_id, category, keep_for, clock, action, set_by_session)
      values (${p.org.id}::uuid, ${siteKey}::uuid, ${category.name}, ${p.keepFor}::interval, ${clock}, ${p.action}, ${sessionId}::uuid)`.execute(trx);
  }
  const all = await listRetentionPolicies(trx, [p.org.id]);
  return all.find((x) => x.site === (p.site?.slug ?? null) && x.category === category.name)!;
}

export async function unsetRetentionPolicy(trx: Trx, org: OrganisationRef, site: SiteRef | null, categoryName: string): Promise<RetentionPolicy> {
  const category = findCategory(categoryName);
  const before = (await listRetentionPolicies(trx, [org.id])).find((x) => x.site === (site?.slug ?? null) && x.category === category.name);
  if (!before) throw new RefusedError(`no ${category.name} policy for ${org.slug}${site ? `/${site.slug}` : ''}`);
  await sql`delete from public.retention_policies where org_id = ${org.id}::uuid and id = ${before.id}::uuid`.execute(trx);
  return before;
}

export async function listRetentionPolicies(trx: Trx, orgIds: readonly string[]): Promise<RetentionPolicy[]> {
  const rows = await sql<{ id: string; org: string; site: string | null; category: string; keep_for: string; clock: string; action: RetentionAction; updated_at: Date }>`
    select p.id, o.slug as org, s.slug as site, p.category, ${keepForText(sql.ref('p.keep_for'))} as keep_for, p.clock, p.action, p.updated_at
    from public.retention_policies p join public.organisations o on o.org_id = p.org_id
    left join public.sites s on s.org_id = p.org_id and s.site_id = p.site_id
    where p.org_id = any (${[...orgIds]}::uuid[])
    order by o.slug, p.category, s.slug nulls first`.execute(trx);
  return rows.rows.map((r) => ({
    id: r.id,
    org: r.org,
    site: r.site,
    category: r.category,
    keepFor: r.keep_for,
    clock: r.clock,
    action: r.action,
    updatedAt: r.updated_at.toISOString(),
  }));
}

export interface LegalHold {
  readonly id: string;
  readonly org: string;
  readonly site: string | null;
  readonly subjectId: string | null;
  readonly category: string | null;
  readonly reason: string;
  readonly createdAt: string;
  readonly releasedAt: string | null;
  readonly releaseReason: string | null;
}

export async function addLegalHold(
  trx: Trx,
  sessionId: string,
  h: { org: OrganisationRef; site: SiteRef | null; subjectId: string | null; category: string | null; reason: string },
): Promise<LegalHold> {
  if (!h.site && !h.subjectId && !h.category) {
    throw new RefusedError('a hold needs --site, --subject or --category (or a combination)', 'Name what must not be swept');
  }
  if (h.category) findCategory(h.category);
  if (h.subjectId) {
    const found = await sql`select 1 from public.children where org_id = ${h.org.id}::uuid and id = ${h.subjectId}::uuid
      union all select 1 from public.users where org_id = ${h.org.id}::uuid and id = ${h.subjectId}::uuid`.execute(trx);
    if (found.rows.length === 0) throw new RefusedError(`no child or user ${h.subjectId} in ${h.org.slug}`);
  }
  const row = await sql<{ id: string }>`
    insert into public.legal_holds (org_id, site_id, subject_id, category, reason, created_by_session)
    values (${h.org.id}::uuid, ${h.site?.id ?? null}::uuid, ${h.subjectId}::uuid, ${h.category}, ${h.reason}, ${sessionId}::uuid)
    returning id`.execute(trx);
  return (await listLegalHolds(trx, [h.org.id], true)).find((x) => x.id === row.rows[0]!.id)!;
}

export async function releaseLegalHold(trx: Trx, sessionId: string, org: OrganisationRef, id: string, reason: string): Promise<LegalHold> {
  const res = await sql`update public.legal_holds set released_at = now(), released_by_session = ${sessionId}::uuid, release_reason = ${reason}
    where org_id = ${org.id}::uuid and id = ${id}::uuid and released_at is null`.execute(trx);
  if (Number(res.numAffectedRows ?? 0) === 0) throw new RefusedError(`no active hold ${id} in ${org.slug}`, `List them with: trustctl hold list --org ${org.slug}`);
  return (await listLegalHolds(trx, [org.id], true)).find((x) => x.id === id)!;
}

export async function listLegalHolds(trx: Trx, orgIds: readonly string[], includeReleased: boolean): Promise<LegalHold[]> {
  const rows = await sql<{ id: string; org: string; site: string | null; subject_id: string | null; category: string | null; reason: string; created_at: Date; released_at: Date | null; release_reason: string | null }>`
    select h.id, o.slug as org, s.slug as site, h.subject_id, h.category, h.reason, h.created_at, h.released_at, h.release_reason
    from public.legal_holds h join public.organisations o on o.org_id = h.org_id
    left join public.sites s on s.org_id = h.org_id and s.site_id = h.site_id
    where h.org_id = any (${[...orgIds]}::uuid[]) ${includeReleased ? sql`` : sql`and h.released_at is null`}
    order by o.slug, h.created_at, h.id`.execute(trx);
  return rows.rows.map((r) => ({
    id: r.id,
    org: r.org,
    site: r.site,
    subjectId: r.subject_id,
    category: r.category,
    reason: r.reason,
    createdAt: r.created_at.toISOString(),
    releasedAt: r.released_at ? r.released_at.toISOString() : null,
    releaseReason: r.release_reason,
  }));
}
