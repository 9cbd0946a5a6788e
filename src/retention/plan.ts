// retention plan: per organisation, site and category, what a sweep would
// do as of a moment: rows past the cut-off, rows held, the action. A dry run:
// it only counts.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { isDerivedClock } from '../datamap/index.js';
import { anonymisedSql, clockSql, heldSql, keepForText, retentionCategories, type CategoryTable } from './categories.js';
import type { RetentionAction } from './categories.js';

type Trx = Transaction<Database>;

export interface PlanRow {
  readonly org: string;
  /** null: rows that belong to the organisation, not a site. */
  readonly site: string | null;
  readonly category: string;
  readonly table: string;
  readonly action: RetentionAction;
  readonly keepFor: string;
  readonly clock: string;
  /** From where: the site's own policy or the organisation's. */
  readonly policy: 'site' | 'organisation';
  /** Rows whose clock started before this are due. */
  readonly cutoff: string;
  readonly due: number;
  readonly held: number;
  /** Due and not held: what a sweep would act on. (To anonymise, rows already anonymised are not due.) */
  readonly toAct: number;
}

/** The table's clock under a policy: the policy's if it names one this table has, else the data map's. */
export function tableClock(table: CategoryTable, policyClock: string, columns: readonly string[]): CategoryTable {
  const usable = isDerivedClock(policyClock) ? columns.includes('child_id') : columns.includes(policyClock);
  return usable ? { ...table, clock: policyClock } : table;
}

/** One (organisation, site or organisation-level rows, category, table) under the policy that applies to it. */
export interface PolicyScope {
  readonly orgId: string;
  readonly org: string;
  /** null: the organisation's rows that belong to no site. */
  readonly siteId: string | null;
  readonly siteSlug: string | null;
  readonly category: string;
  /** The table, with the policy's clock where the table has it. */
  readonly table: CategoryTable;
  /** As PostgreSQL prints the interval, and as people wrote it. */
  readonly keepFor: string;
  readonly keepForText: string;
  readonly action: RetentionAction;
  /** The site's own policy, rather than the organisation's. */
  readonly own: boolean;
  /**
   * The connected operator set or changed this policy in the last 24 hours:
   * another operator applies it, or it waits (the database refuses, TC047).
   */
  readonly changedByYouRecently: boolean;
}

/**
 * Every scope a policy applies to: each site of each organisation follows
 * its own policy for a category or else the organisation's; rows that
 * belong to no site follow the organisation's. The audit trail is pruned
 * per organisation, so it has no site scopes unless a site has its own
 * policy (which a sweep then refuses).
 */
export async function policyScopes(trx: Trx, orgIds: readonly string[], categories?: readonly string[]): Promise<PolicyScope[]> {
  const policies = await sql<{ org_id: string; org: string; site_id: string | null; category: string; keep_for: string; keep_text: string; clock: string; action: RetentionAction; mine_recent: boolean }>`
    select p.org_id, o.slug as org, p.site_id, p.category, p.keep_for::text as keep_for, ${keepForText(sql.ref('p.keep_for'))} as keep_text, p.clock, p.action,
      p.updated_at > statement_timestamp() - interval '24 hours'
        and exists (select 1 from public.operator_sessions s where s.id = p.set_by_session and s.db_user = session_user) as mine_recent
    from public.retention_policies p join public.organisations o on o.org_id = p.org_id
    where p.org_id = any (${[...orgIds]}::uuid[])`.execute(trx);
  const sites = await sql<{ org_id: string; site_id: string; slug: string }>`
    select org_id, site_id, slug from public.sites where org_id = any (${[...orgIds]}::uuid[]) order by slug`.execute(trx);
  const columns = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns where table_schema = 'public'`.execute(trx);
  const colsOf = (t: string) => columns.rows.filter((c) => c.table_name === t).map((c) => c.column_name);
  const out: PolicyScope[] = [];
  for (const category of retentionCategories()) {
    if (categories && categories.length > 0 && !categories.includes(category.name)) continue;
    for (const orgId of orgIds) {
      const orgPolicy = policies.rows.find((p) => p.org_id === orgId && p.site_id === null && p.category === category.name);
      const scopes = [
        ...sites.rows.filter((x) => x.org_id === orgId).map((x) => ({ siteId: x.site_id as string | null, slug: x.slug as string | null })),
        { siteId: null, slug: null },
      ];
      for (const scope of scopes) {
        const own = scope.siteId ? policies.rows.find((p) => p.org_id === orgId && p.site_id === scope.siteId && p.category === category.name) : undefined;
        const policy = own ?? orgPolicy;
        if (!policy) continue;
        if (category.name === 'audit_events' && scope.siteId && !own) continue;
        for (const base of category.tables) {
          if (!base.hasSite && scope.siteId) continue;
          out.push({
            orgId,
            org: policy.org,
            siteId: scope.siteId,
            siteSlug: scope.slug,
            category: category.name,
            table: tableClock(base, policy.clock, colsOf(base.table)),
            keepFor: policy.keep_for,
            keepForText: policy.keep_text,
            action: policy.action,
            own: own !== undefined,
            changedByYouRecently: policy.mine_recent,
          });
        }
      }
    }
  }
  return out;
}

export async function planRetention(trx: Trx, orgIds: readonly string[], asOf: Date): Promise<PlanRow[]> {
  const at = asOf.toISOString();
  const out: PlanRow[] = [];
  for (const p of await policyScopes(trx, orgIds)) {
    const cutoffSql = sql`(${at}::timestamptz - ${p.keepFor}::interval)`;
    const t = sql.table(`public.${p.table.table}`).as('t');
    const dueWhere = sql`t.org_id = ${p.orgId}::uuid
      and ${p.table.hasSite ? (p.siteId ? sql`t.site_id = ${p.siteId}::uuid` : sql`t.site_id is null`) : sql`true`}
      and ${clockSql(p.table)} <= ${cutoffSql}
      ${p.action === 'anonymise' ? sql`and not ${anonymisedSql(p.table)}` : sql``}`;
    const counts = await sql<{ cutoff: Date; due: string; held: string }>`
      select ${cutoffSql} as cutoff, count(*) as due, count(*) filter (where ${heldSql(p.table, p.category)}) as held
      from ${t} where ${dueWhere}`.execute(trx);
    const cutoff = counts.rows[0]!.cutoff.toISOString();
    const due = Number(counts.rows[0]!.due);
    const held = Number(counts.rows[0]!.held);
    // Organisation-level rows of a site table are listed only when there are some.
    if (p.table.hasSite && p.siteId === null && due === 0) continue;
    out.push({
      org: p.org,
      site: p.siteSlug,
      category: p.category,
      table: p.table.table,
      action: p.action,
      keepFor: p.keepForText,
      clock: p.table.clock,
      policy: p.own ? 'site' : 'organisation',
      cutoff,
      due,
      held,
      toAct: due - held,
    });
  }
  return out;
}
