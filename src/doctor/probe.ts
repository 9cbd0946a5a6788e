// The doctor's live probe (docs/doctor.md#the-live-probe). In an operator
// session scoped to one "home" organisation, app.doctor_probe creates
// synthetic people (a user holding every site role at one site, teaching a
// class and guardian of a child there; an organisation admin), and for them
// and for operators (without a session, with a made-up session id, in this
// session) counts other tenants' rows that real statements reach and that
// the policies of each command admit. It undoes its own changes; the
// transaction around it is rolled back as well.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { OperatorSession } from '../db/operator-session.js';
import type { Database } from '../db/schema.js';
import { finding, type Finding } from './findings.js';

export interface ProbeSummary {
  /** Where the synthetic people live, as org-slug/site-slug; null if the probe did not run. */
  readonly home: string | null;
  readonly personas: readonly string[];
  readonly tables: number;
  readonly attempts: number;
  readonly crossed: number;
}

interface ProbeRow {
  persona: string;
  table_name: string;
  probe: 'select' | 'update' | 'delete' | 'insert' | 'all';
  method: 'statement' | 'policy' | 'data';
  outcome: 'ok' | 'refused' | 'violation' | 'error' | 'untestable';
  detail: string;
}

class RollBack extends Error {
  constructor(readonly rows: ProbeRow[]) {
    super('rolled back on purpose');
  }
}

const CROSSED = {
  select: 'probe-visible-rows',
  update: 'probe-update-crossed',
  delete: 'probe-delete-crossed',
  insert: 'probe-insert-crossed',
} as const;

export interface ProbeHome {
  readonly slug: string;
  readonly reachable: boolean;
}

/** The organisation with the most sites (no session needed: the directory is not personal data). */
export async function chooseProbeHome(db: Kysely<Database>): Promise<ProbeHome | null> {
  const orgs = await sql<{ slug: string; site_count: string }>`select slug, site_count from app.organisation_directory()`.execute(db);
  const sites = orgs.rows.reduce((n, o) => n + Number(o.site_count), 0);
  const home = [...orgs.rows].sort((a, b) => Number(b.site_count) - Number(a.site_count) || a.slug.localeCompare(b.slug))[0];
  if (!home || Number(home.site_count) === 0) return null;
  return { slug: home.slug, reachable: sites >= 2 };
}

export function skippedProbe(why: string): { findings: Finding[]; summary: ProbeSummary } {
  return {
    findings: [finding('probe-skipped', 'database', why, 'Run trustctl db migrate, and make sure at least two sites exist.')],
    summary: { home: null, personas: [], tables: 0, attempts: 0, crossed: 0 },
  };
}

function describePersona(name: string, org: string, site: string): string {
  if (name === 'site user') return `a synthetic user with every site role at ${org}/${site}`;
  if (name === 'organisation admin') return `a synthetic organisation admin of ${org}`;
  if (name === 'operator in a session for this organisation only') return `an operator in a session for ${org} only`;
  return `an ${name}`;
}

function toFindings(rows: readonly ProbeRow[], org: string, site: string): Finding[] {
  const out: Finding[] = [];
  for (const r of rows) {
    if (r.probe === 'all') continue;
    const obj = `table public.${r.table_name}`;
    const who = describePersona(r.persona, org, site);
    const n = Number.parseInt(r.detail, 10);
    const count = n >= 1000 ? 'at least 1000' : String(n);
    if (r.outcome === 'violation') {
      const what =
        r.method === 'policy'
          ? `its ${r.probe.toUpperCase()} policies admit ${count} row(s) of other tenants${r.detail.includes('(as new rows)') ? ' as new rows (WITH CHECK)' : ''}`
          : r.probe === 'select'
            ? `${count} row(s) of other tenants visible`
            : 'a copy of another tenant’s row was accepted';
      out.push(finding(CROSSED[r.probe], obj, `as ${who}: ${what}`,
        `Find the ${r.probe.toUpperCase()} or ALL policy that admits it (SELECT polname, polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy WHERE polrelid = 'public.${r.table_name}'::regclass) and make it match the tenant key.`));
    } else if (r.outcome === 'error') {
      out.push(finding('probe-inconclusive', obj, `as ${who}: ${r.probe} (${r.method}) failed for another reason than a refusal (${r.detail})`,
        'Check the table’s policies, triggers and constraints; the probe expects no rows or SQLSTATE 42501.'));
    }
  }
  const untestable = [...new Set(rows.filter((r) => r.outcome === 'untestable').map((r) => r.table_name))].sort();
  if (untestable.length > 0) {
    out.push(finding('probe-skipped', 'database',
      `no rows of another tenant to aim at in ${untestable.join(', ')}: their boundary was checked by policy evaluation only`,
      'Nothing to fix; the probe covers these tables once other tenants have rows in them.'));
  }
  return out;
}

/**
 * Runs the probe in a transaction of `session` (scoped to the home
 * organisation only) and rolls it back. `tables`: tenant tables of schema public.
 */
export async function runLiveProbe(
  session: OperatorSession,
  tables: readonly string[],
): Promise<{ findings: Finding[]; summary: ProbeSummary }> {
  let home: { org: string; site: string } | null = null;
  try {
    await session.transaction(async (trx) => {
      const fn = await sql<{ ok: boolean }>`select to_regprocedure('app.doctor_probe(uuid, uuid, text[])') is not null as ok`.execute(trx);
      if (!fn.rows[0]?.ok) throw new RollBack([]);
      const site = await sql<{ org_id: string; site_id: string; org: string; site: string }>`
        select s.org_id, s.site_id, o.slug as org, s.slug as site
        from public.sites s join public.organisations o on o.org_id = s.org_id
        order by (select count(*) from public.children c where c.org_id = s.org_id and c.site_id = s.site_id) desc, s.slug limit 1`.execute(trx);
      const h = site.rows[0]!;
      home = { org: h.org, site: h.site };
      const rows = (await sql<ProbeRow>`select * from app.doctor_probe(${h.org_id}::uuid, ${h.site_id}::uuid, ${[...tables]}::text[])`.execute(trx)).rows;
      // Real statements through row-level security as operators: no session, a made-up one, this one.
      for (const [persona, setting, org] of [
        ['operator without a session', '', null],
        ['operator with a made-up session id', randomUUID(), null],
        ['operator in a session for this organisation only', session.id, h.org_id],
      ] as const) {
        await sql`select set_config('app.operator_session', ${setting}, true)`.execute(trx);
        const seen = await sql<Omit<ProbeRow, 'persona' | 'method'>>`select * from app.probe_boundary(${org}::uuid, null, ${[...tables]}::text[], '{}'::jsonb)`.execute(trx);
        rows.push(...seen.rows.map((r) => ({ ...r, persona, method: 'statement' as const })));
      }
      throw new RollBack(rows);
    });
  } catch (error) {
    if (!(error instanceof RollBack)) throw error;
    if (!home) return skippedProbe('the live probe needs app.doctor_probe (migration 0008), which is not installed');
    const { org, site } = home;
    const personas = [...new Set(error.rows.filter((r) => r.persona !== 'all').map((r) => r.persona))].sort().map((p) => describePersona(p, org, site));
    const counted = error.rows.filter((r) => ['ok', 'refused', 'violation'].includes(r.outcome));
    return {
      findings: toFindings(error.rows, org, site),
      summary: {
        home: `${org}/${site}`,
        personas,
        tables: tables.length,
        attempts: counted.length,
        crossed: counted.filter((r) => r.outcome === 'violation').length,
      },
    };
  }
  throw new Error('the probe transaction committed; it must always roll back');
}
