// The doctor's live probe: inside one transaction that is always rolled
// back, it creates a synthetic user holding every site role at one site, and
// as that user (through app.doctor_probe_as_user) and as an operator without
// a session, counts other tenants' rows it can see and tries to update,
// delete and insert across the boundary in every tenant table.
import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { OperatorSession } from '../db/operator-session.js';
import type { Database } from '../db/schema.js';
import { finding, type Finding } from './findings.js';

export const SITE_ROLES = ['site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office', 'guardian'] as const;

export interface ProbeSummary {
  /** Where the synthetic user lives, as org-slug/site-slug; null if the probe did not run. */
  readonly home: string | null;
  readonly personas: readonly string[];
  readonly tables: number;
  readonly attempts: number;
  readonly crossed: number;
}

interface ProbeRow {
  table_name: string;
  probe: 'select' | 'update' | 'delete' | 'insert';
  outcome: 'ok' | 'refused' | 'violation' | 'error' | 'skipped';
  detail: string;
}

class RollBack extends Error {
  constructor(readonly result: { findings: Finding[]; summary: ProbeSummary }) {
    super('rolled back on purpose');
  }
}

const CROSSED = {
  select: 'probe-visible-rows',
  update: 'probe-update-crossed',
  delete: 'probe-delete-crossed',
  insert: 'probe-insert-crossed',
} as const;

function toFindings(persona: string, rows: readonly ProbeRow[]): Finding[] {
  return rows.flatMap((r): Finding[] => {
    const obj = `table public.${r.table_name}`;
    if (r.outcome === 'violation') {
      const what =
        r.probe === 'select'
          ? `${Number(r.detail) >= 1000 ? 'at least 1000' : r.detail} row(s) of other tenants visible`
          : r.probe === 'insert'
            ? 'a copy of another tenant’s row was accepted'
            : `${r.detail} row(s) of other tenants ${r.probe === 'update' ? 'updated' : 'deleted'} (rolled back)`;
      return [finding(CROSSED[r.probe], obj, `as ${persona}: ${what}`,
        'Find the policy that admits it (SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = \'public.' + r.table_name + '\'::regclass) and make it match the tenant key.')];
    }
    if (r.outcome === 'error') {
      return [finding('probe-inconclusive', obj, `as ${persona}: ${r.probe} failed for another reason than a refusal (${r.detail})`,
        'Check the table’s triggers and constraints; the probe expects either no rows or SQLSTATE 42501.')];
    }
    return [];
  });
}

async function sampleForeignRow(trx: Transaction<Database>, table: string, org: string, site: string, hasSite: boolean): Promise<unknown> {
  const t = sql.table(`public.${table}`);
  // Another organisation's row first (the boundary that matters most), else another site's.
  const other = await sql<{ row: unknown }>`select to_jsonb(x) as row from ${t} x where x.org_id <> ${org}::uuid limit 1`.execute(trx);
  if (other.rows[0]) return other.rows[0].row;
  if (!hasSite) return undefined;
  const sibling = await sql<{ row: unknown }>`select to_jsonb(x) as row from ${t} x
    where x.org_id = ${org}::uuid and x.site_id is distinct from ${site}::uuid limit 1`.execute(trx);
  return sibling.rows[0]?.row;
}

/**
 * Runs the probe in a transaction of `session` (which must cover every
 * organisation) and rolls it back. `tables`: tenant tables of schema public.
 */
export async function runLiveProbe(
  session: OperatorSession,
  tables: ReadonlyArray<{ readonly name: string; readonly hasSite: boolean }>,
): Promise<{ findings: Finding[]; summary: ProbeSummary }> {
  const skipped = (why: string): { findings: Finding[]; summary: ProbeSummary } => ({
    findings: [finding('probe-skipped', 'database', why, 'Run trustctl db migrate, and make sure at least two sites exist.')],
    summary: { home: null, personas: [], tables: 0, attempts: 0, crossed: 0 },
  });
  try {
    await session.transaction(async (trx) => {
      const fn = await sql<{ ok: boolean }>`select to_regprocedure('app.doctor_probe_as_user(uuid, text[], jsonb)') is not null as ok`.execute(trx);
      if (!fn.rows[0]?.ok) throw new RollBack(skipped('the live probe needs app.doctor_probe_as_user (migration 0007), which is not installed'));
      // Home: a site of the organisation with the most sites, so both boundaries (site, organisation) are crossed.
      const home = await sql<{ org_id: string; site_id: string; org: string; site: string; others: number }>`
        select s.org_id, s.site_id, o.slug as org, s.slug as site,
          (select count(*) from public.sites x where (x.org_id, x.site_id) <> (s.org_id, s.site_id))::int as others
        from public.sites s join public.organisations o on o.org_id = s.org_id
        order by (select count(*) from public.sites x where x.org_id = s.org_id) desc, o.slug, s.slug limit 1`.execute(trx);
      const h = home.rows[0];
      if (!h || h.others === 0) throw new RollBack(skipped('the live probe needs at least two sites to probe across'));

      const user = randomUUID();
      await sql`insert into public.users (org_id, site_id, id, kind, email, full_name)
        values (${h.org_id}::uuid, ${h.site_id}::uuid, ${user}::uuid, 'staff', ${`doctor-probe-${user}@invalid.example`}, 'trustctl doctor probe')`.execute(trx);
      for (const role of SITE_ROLES) {
        await sql`insert into public.role_assignments (org_id, site_id, user_org_id, user_id, role, reason)
          values (${h.org_id}::uuid, ${h.site_id}::uuid, ${h.org_id}::uuid, ${user}::uuid, ${role}, 'trustctl doctor live probe (rolled back)')`.execute(trx);
      }
      const rows: Record<string, unknown> = {};
      for (const t of tables) {
        const row = await sampleForeignRow(trx, t.name, h.org_id, h.site_id, t.hasSite);
        if (row !== undefined) rows[t.name] = row;
      }
      const names = tables.map((t) => t.name);
      const userPersona = `a synthetic user with every site role at ${h.org}/${h.site}`;
      const asUser = await sql<ProbeRow>`select * from app.doctor_probe_as_user(${user}::uuid, ${names}::text[], ${JSON.stringify(rows)}::jsonb)`.execute(trx);
      await sql`select set_config('app.operator_session', '', true)`.execute(trx);
      const operatorPersona = 'an operator without a session';
      const asOperator = await sql<ProbeRow>`select * from app.probe_boundary(null, null, ${names}::text[], ${JSON.stringify(rows)}::jsonb)`.execute(trx);
      const all = [...asUser.rows, ...asOperator.rows];
      const findings = [...toFindings(userPersona, asUser.rows), ...toFindings(operatorPersona, asOperator.rows)];
      throw new RollBack({
        findings,
        summary: {
          home: `${h.org}/${h.site}`,
          personas: [userPersona, operatorPersona],
          tables: tables.length,
          attempts: all.filter((r) => r.outcome !== 'skipped').length,
          crossed: all.filter((r) => r.outcome === 'violation').length,
        },
      });
    });
  } catch (error) {
    if (error instanceof RollBack) return error.result;
    throw error;
  }
  throw new Error('the probe transaction committed; it must always roll back');
}
