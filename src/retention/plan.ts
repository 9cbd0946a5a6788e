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

export async function planRetention(trx: Trx, orgIds: readonly string[], asOf: Date): Promise<PlanRow[]> {
  const at = asOf.toISOString();
  const policies = await sql<{ org_id: string; org: string; site_id: string | null; category: string; keep_for: string; clock: string; action: RetentionAction; cutoff: Date }>`
    select p.org_id, o.slug as org, p.site_id, p.category, ${keepForText(sql.ref('p.keep_for'))} as keep_for, p.clock, p.action,
      ${at}::timestamptz - p.keep_for as cutoff
    from public.retention_policies p join public.organisations o on o.org_id = p.org_id
    where p.org_id = any (${[...orgIds]}::uuid[])`.execute(trx);
  const sites = await sql<{ org_id: string; site_id: string; slug: string }>`
    select org_id, site_id, slug from public.sites where org_id = any (${[...orgIds]}::uuid[]) order by slug`.execute(trx);
  const columns = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns where table_schema = 'public'`.execute(trx);
  const colsOf = (t: string) => columns.rows.filter((c) => c.table_name === t).map((c) => c.column_name);

  const out: PlanRow[] = [];
  for (const category of retentionCategories()) {
    for (const orgId of orgIds) {
      const orgPolicy = policies.rows.find((p) => p.org_id === orgId && p.site_id === null && p.category === category.name);
      const scopes: Array<{ siteId: string | null; slug: string | null }> = [
        ...sites.rows.filter((s) => s.org_id === orgId).map((s) => ({ siteId: s.site_id, slug: s.slug })),
        { siteId: null, slug: null },
      ];
      for (const scope of scopes) {
        const own = scope.siteId ? policies.rows.find((p) => p.org_id === orgId && p.site_id === scope.siteId && p.category === category.name) : undefined;
        const policy = own ?? orgPolicy;
        if (!policy) continue;
        for (const base of category.tables) {
          if (!base.hasSite && scope.siteId) continue;
          const table = tableClock(base, policy.clock, colsOf(base.table));
          const t = sql.table(`public.${table.table}`).as('t');
          const dueWhere = sql`t.org_id = ${orgId}::uuid
            and ${base.hasSite ? (scope.siteId ? sql`t.site_id = ${scope.siteId}::uuid` : sql`t.site_id is null`) : sql`true`}
            and ${clockSql(table)} <= ${policy.cutoff.toISOString()}::timestamptz
            ${policy.action === 'anonymise' ? sql`and not ${anonymisedSql(table)}` : sql``}`;
          const counts = await sql<{ due: string; held: string }>`
            select count(*) as due, count(*) filter (where ${heldSql(table, category.name)}) as held
            from ${t} where ${dueWhere}`.execute(trx);
          const due = Number(counts.rows[0]!.due);
          const held = Number(counts.rows[0]!.held);
          // Organisation-level rows of a site table are listed only when there are some.
          if (base.hasSite && scope.siteId === null && due === 0) continue;
          out.push({
            org: policy.org,
            site: scope.slug,
            category: category.name,
            table: table.table,
            action: policy.action,
            keepFor: policy.keep_for,
            clock: table.clock,
            policy: own ? 'site' : 'organisation',
            cutoff: policy.cutoff.toISOString(),
            due,
            held,
            toAct: due - held,
          });
        }
      }
    }
  }
  return out;
}
