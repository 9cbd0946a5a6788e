// The decoy-id world (issue 25). Site, child and user ids are unique only
// within an organisation, so an organisation may hold a site, child or user
// whose id is another organisation's. mintTwins copies every row of a victim
// organisation into a home organisation with every id kept: each of the
// victim's site, child, user, group … ids then names a twin at home, and each
// of the victim's users has a twin at home holding the same roles over the
// twins. A policy or guard that matches any of those ids without its
// organisation lets a twin reach the victim's rows; the isolation matrix,
// run as the twins, finds it. orgDroppedPolicies plants exactly that defect,
// so the suite proves it would.
import pg from 'pg';
import type { Persona, TenantTable } from './matrix.js';

const ident = (name: string) => pg.escapeIdentifier(name);

export interface DecoyScope {
  /** The organisation whose ids are copied: the one the attack must not reach. */
  readonly victim: string;
  /** The organisation that receives the twins: the attacker's own. */
  readonly home: string;
}

/**
 * Copies every row of the victim organisation, in every tenant table, into
 * the home organisation: organisation columns naming the victim renamed to
 * home, every other column kept. Rows whose key is taken at home (the
 * organisation itself, per-organisation settings) are left out. Runs as
 * the superuser with triggers off, as a restore would: it sets up the
 * attacker's world, it is not the attack. Returns the rows minted per table.
 *
 * @example
 * await mintTwins(db.admin, tables, { victim: ACORNS, home: OAK })
 */
export async function mintTwins(admin: pg.Pool, tables: readonly TenantTable[], scope: DecoyScope): Promise<Record<string, number>> {
  const minted: Record<string, number> = {};
  const client = await admin.connect();
  try {
    await client.query('begin');
    await client.query('set local session_replication_role = replica');
    for (const t of tables) {
      const q = t.qualified;
      const renamed = t.orgColumns.map((c) => `'${c}', case when v.${ident(c)} = $1 then $2::uuid else v.${ident(c)} end`).join(', ');
      const res = await client.query(
        `insert into ${q} overriding system value
         select twin.* from ${q} v, jsonb_populate_record(null::${q}, to_jsonb(v) || jsonb_build_object(${renamed})) twin
         where v.org_id = $1
         on conflict do nothing`,
        [scope.victim, scope.home],
      );
      minted[t.name] = res.rowCount ?? 0;
    }
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
  return minted;
}

/** A user of the victim organisation whose twin at home is a persona. */
export interface Twin {
  readonly persona: Persona;
  /** The original's user id, which the twin shares. */
  readonly userId: string;
}

/**
 * One twin persona for each kind of live role the victim's own users hold
 * there (each role, site-wide and organisation-wide): the victim's user, signed
 * in at home. Nothing outside home is theirs.
 */
export async function twinPersonas(admin: pg.Pool, scope: DecoyScope): Promise<Twin[]> {
  const res = await admin.query<{ role: string; org_wide: boolean; user_id: string }>(
    `select distinct on (ra.role, ra.site_id is null) ra.role, ra.site_id is null as org_wide, ra.user_id::text
     from role_assignments ra
     where ra.org_id = $1 and ra.user_org_id = $1 and ra.revoked_at is null
       and ra.approval_state in ('not_required', 'approved')
       and ra.starts_at <= now() and (ra.expires_at is null or now() < ra.expires_at)
     order by ra.role, ra.site_id is null, ra.user_id`,
    [scope.victim],
  );
  return res.rows.map((r) => ({
    userId: r.user_id,
    persona: {
      label: `twin of a ${r.role}${r.org_wide ? ' (organisation-wide)' : ''}`,
      login: 'trustctl_test_app',
      settings: { 'app.user_id': r.user_id, 'app.user_org_id': scope.home },
      foreign: (_t, row) => `${row}.org_id <> '${scope.home}'`,
      home: scope.home,
    },
  }));
}

export type PolicyCommand = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface PolicyMutant {
  readonly table: string;
  readonly policy: string;
  readonly original: { readonly using: string | null; readonly check: string | null };
  readonly mutant: { readonly using: string | null; readonly check: string | null };
}

/**
 * The expression with its organisation dropped from every match that pairs
 * it with another key: `(org_id, site_id) IN (SELECT x.org_id, x.site_id …)`
 * becomes `(site_id) IN (SELECT x.site_id …)`, and `(org_id = <current user's
 * organisation>) AND (id = <current user>)` becomes `(id = <current user>)`.
 * Works on PostgreSQL's deparsed text (pg_policies).
 */
export function dropOrg(expr: string): string {
  return expr
    .replace(/\((?:\w+\.)?org_id, ([\w., ]+?)\) IN \( SELECT \w+\.org_id,\s*/g, '($1) IN ( SELECT ')
    .replace(/\(\w+ = \( SELECT app\.current_user_org_id\(\) AS current_user_org_id\)\) AND /g, '');
}

/**
 * Every app_user policy for the command that matches a secondary key with
 * its organisation, and its mutant without (dropOrg).
 */
export async function orgDroppedPolicies(admin: pg.Pool, command: PolicyCommand): Promise<PolicyMutant[]> {
  const res = await admin.query<{ tablename: string; policyname: string; qual: string | null; with_check: string | null }>(
    `select tablename, policyname, qual, with_check from pg_policies
     where schemaname = 'public' and 'app_user' = any (roles) and cmd = $1 order by tablename, policyname`,
    [command],
  );
  return res.rows
    .map((p) => ({
      table: p.tablename,
      policy: p.policyname,
      original: { using: p.qual, check: p.with_check },
      mutant: { using: p.qual && dropOrg(p.qual), check: p.with_check && dropOrg(p.with_check) },
    }))
    .filter((m) => m.mutant.using !== m.original.using || m.mutant.check !== m.original.check);
}

/** Sets each policy to its mutant or back to its original. */
export async function setPolicies(admin: pg.Pool, mutants: readonly PolicyMutant[], which: 'mutant' | 'original'): Promise<void> {
  for (const m of mutants) {
    const e = m[which];
    const parts = [e.using && `using (${e.using})`, e.check && `with check (${e.check})`].filter(Boolean).join(' ');
    await admin.query(`alter policy ${ident(m.policy)} on public.${ident(m.table)} ${parts}`);
  }
}
