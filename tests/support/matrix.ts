// The isolation matrix, built from the live catalog: every table with a
// tenant key × SELECT / INSERT / UPDATE / DELETE × every persona. A persona is
// an app_user member with app.user_id (and app.user_org_id) set to a user
// holding one role, or an operator with or without a session. Each probe runs
// in a transaction that is rolled back. Returns one line per violation.
//
// UPDATE and DELETE are sent blind (no WHERE, nothing read), as an attacker
// would: a statement that reads a column is filtered by the SELECT policy as
// well, which hides a permissive UPDATE or DELETE policy. The witness
// (installWitness) counts the rows a blind statement reaches and skips them
// all, so nothing is changed.
import pg from 'pg';
import type { TestDatabase } from './db.js';
import type { TestRoleName } from './roles.js';

export interface Persona {
  readonly label: string;
  readonly login: TestRoleName;
  /** Settings to set transaction-locally before each probe. */
  readonly settings: Readonly<Record<string, string>>;
  /** SQL predicate over `row`, an alias of the probed table: rows this persona must NOT reach. */
  readonly foreign: (table: TenantTable, row: string) => string;
  /**
   * The persona's own organisation, if it has one. Its rows are then also
   * moved into another organisation, and rewritten with another
   * organisation's ids; both must be refused.
   */
  readonly home?: string;
}

export interface ProbeOptions {
  /**
   * The home organisation holds twins of the other organisations' ids
   * (tests/support/decoys.ts), so a row at home naming them is legitimate:
   * the probes that write such rows at home are left out.
   */
  readonly twinned?: boolean;
}

export interface TenantTable {
  /** The table's name, schema-qualified outside public: `notes`, `archive.notes`. */
  readonly name: string;
  /** The table as SQL: `public."notes"`, `archive."notes"`. */
  readonly qualified: string;
  readonly schema: string;
  readonly hasSite: boolean;
  /** The primary-key column other than org_id that identifies a row. */
  readonly idColumn: string;
  readonly idIsUuid: boolean;
  readonly slugColumn: boolean;
  /** GENERATED ALWAYS columns: an INSERT probe must leave them out. */
  readonly identityColumns: readonly string[];
  /** Every column, in order. */
  readonly columns: readonly string[];
  /** Columns naming an organisation: org_id, and any column a foreign key pairs with another table's org_id (role_assignments.user_org_id). */
  readonly orgColumns: readonly string[];
  /**
   * The secondary tenant keys: columns a foreign key ties to another tenant
   * table's id (site_id, child_id, user ids, group_id, …). Ids are unique only
   * within an organisation, so policies and guards must match them together
   * with the organisation.
   */
  readonly keyColumns: readonly string[];
}

const ident = (name: string) => pg.escapeIdentifier(name);

/**
 * Every table with an org_id column in the given schemas: the tenant tables.
 * By default public and archive (what retention sweeps archived: the same
 * personal data, under its own policies).
 */
export async function tenantTablesFromCatalog(admin: pg.Pool, schemas: readonly string[] = ['public', 'archive']): Promise<TenantTable[]> {
  const res = await admin.query<{
    nspname: string; relname: string; has_site: boolean; id_col: string | null; id_type: string | null; has_slug: boolean;
    identity_cols: string[] | null; columns: string[]; org_cols: string[]; key_cols: string[];
  }>(`
    with fk as (
      -- Each column of each foreign key, with the column it references.
      select k.conrelid, a.attname::text as col, fa.attname::text as ref,
        exists (select 1 from pg_attribute x where x.attrelid = k.confrelid and x.attname = 'org_id' and not x.attisdropped) as ref_is_tenant
      from pg_constraint k
      cross join lateral unnest(k.conkey, k.confkey) as u(col, ref)
      join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.col
      join pg_attribute fa on fa.attrelid = k.confrelid and fa.attnum = u.ref
      where k.contype = 'f'
    )
    select n.nspname::text as nspname, c.relname,
      (select array_agg(a.attname::text) from pg_attribute a where a.attrelid = c.oid and a.attidentity = 'a') as identity_cols,
      (select array_agg(a.attname::text order by a.attnum) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'site_id' and not a.attisdropped) as has_site,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'slug' and not a.attisdropped) as has_slug,
      (select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
        where i.indrelid = c.oid and i.indisprimary and a.attname <> 'org_id' order by a.attnum desc limit 1) as id_col,
      (select format_type(a.atttypid, a.atttypmod) from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
        where i.indrelid = c.oid and i.indisprimary and a.attname <> 'org_id' order by a.attnum desc limit 1) as id_type,
      array(select 'org_id' union select fk.col from fk where fk.conrelid = c.oid and fk.ref = 'org_id' order by 1) as org_cols,
      array(select distinct fk.col from fk where fk.conrelid = c.oid and fk.ref <> 'org_id' and fk.ref_is_tenant order by 1) as key_cols
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any ($1::text[]) and c.relkind in ('r', 'p')
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
    order by n.nspname <> 'public', n.nspname, c.relname`, [schemas]);
  return res.rows.map((r) => ({
    name: r.nspname === 'public' ? r.relname : `${r.nspname}.${r.relname}`,
    qualified: `${ident(r.nspname)}.${ident(r.relname)}`,
    schema: r.nspname,
    hasSite: r.has_site,
    idColumn: r.id_col ?? 'org_id',
    idIsUuid: (r.id_type ?? 'uuid') === 'uuid',
    slugColumn: r.has_slug,
    identityColumns: r.identity_cols ?? [],
    columns: r.columns,
    orgColumns: r.org_cols,
    keyColumns: r.key_cols,
  }));
}

/**
 * Installs the witness on every given table: a row trigger, named to fire
 * before every other, for UPDATE and DELETE in a transaction that sets
 * matrix.witness. With 'count' it counts in matrix.reached the rows reached
 * that the persona must not reach (pg_temp.matrix_foreign, which
 * probePersona defines on its connection) and skips every row, so nothing
 * changes. With 'pass' it lets the first matrix.pass rows go on to the
 * policies' checks and skips the rest, so a blind UPDATE stays small. For
 * test databases only.
 *
 * @example
 * await installWitness(db.admin, await tenantTablesFromCatalog(db.admin))
 */
export async function installWitness(admin: pg.Pool, tables: readonly TenantTable[]): Promise<void> {
  await admin.query('create schema if not exists matrix_probe');
  await admin.query(`
    create or replace function matrix_probe.witness() returns trigger language plpgsql as $$
    declare
      n bigint;
    begin
      if pg_catalog.current_setting('matrix.witness') = 'count' then
        if pg_temp.matrix_foreign(old) then
          perform pg_catalog.set_config('matrix.reached',
            (coalesce(nullif(pg_catalog.current_setting('matrix.reached', true), ''), '0')::bigint + 1)::text, true);
        end if;
        return null;
      end if;
      n := coalesce(nullif(pg_catalog.current_setting('matrix.passed', true), ''), '0')::bigint + 1;
      perform pg_catalog.set_config('matrix.passed', n::text, true);
      return case when n <= pg_catalog.current_setting('matrix.pass')::bigint then new end;
    end $$`);
  for (const t of tables) {
    await admin.query(
      `create or replace trigger _matrix_witness before update or delete on ${t.qualified} for each row
       when (pg_catalog.current_setting('matrix.witness', true) in ('count', 'pass')) execute function matrix_probe.witness()`,
    );
  }
}

const refusedByPolicy = (code: string) => code === '42501' || /^TC\d{3}$/.test(code);

/**
 * Whether an error is the refusal a probe expects. 42501: RLS WITH CHECK
 * violation or missing privilege. SQLSTATE class TC: trustctl's own guards,
 * which run before RLS and refuse outright (the grant guard outside an open
 * session, TC005; the erasure ledger outside an erasure, TC044) — as the
 * doctor's probe counts them. Rows aimed at another organisation must be
 * refused so: a foreign-key or unique violation would mean RLS let the row
 * through. A row at home naming another organisation's ids may also be
 * refused by a foreign key (23503): every foreign key carries the tenant key,
 * so those ids name nothing at home, and an operator's own organisation is
 * open to it.
 */
function isRefusal(error: unknown, atHome = false): boolean {
  const code = (error as { code?: string }).code ?? '';
  return refusedByPolicy(code) || (atHome && code === '23503');
}

async function inRolledBack<T>(client: pg.Client, settings: Readonly<Record<string, string>>, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const pairs = Object.entries(settings);
    if (pairs.length > 0) {
      await client.query(`select ${pairs.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`, pairs.flat());
    }
    return await fn();
  } finally {
    await client.query('rollback');
  }
}

/** The foreign predicate as a function of a row, for the witness; SQL, so it is inlined. */
async function defineForeign(client: pg.Client, persona: Persona, tables: readonly TenantTable[]): Promise<void> {
  // A persona that may not use a schema (app_user and archive) reaches none of its rows: nothing to witness.
  const usable = (await client.query<{ s: string[] }>(
    `select array(select s from unnest($1::text[]) s where has_schema_privilege(s, 'usage')) as s`, [[...new Set(tables.map((t) => t.schema))]],
  )).rows[0]!.s;
  for (const t of tables.filter((x) => usable.includes(x.schema))) {
    await client.query(
      `create or replace function pg_temp.matrix_foreign(r ${t.qualified}) returns boolean
       language sql stable as $f$ select coalesce((${persona.foreign(t, 'r')}), false) $f$`,
    );
  }
}

/** A copy of a row with a fresh id (and slug), so that only RLS can refuse it. */
function freshCopy(t: TenantTable, row: Record<string, unknown>, orgs: Record<string, unknown> = {}): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...row, ...orgs };
  if (t.idIsUuid) copy[t.idColumn] = crypto.randomUUID();
  if (t.slugColumn) copy.slug = `probe-${Math.random().toString(36).slice(2, 10)}`;
  return copy;
}

/** The row's organisation columns that name `from`, renamed to `to`. */
function moveOrgs(t: TenantTable, row: Record<string, unknown>, from: unknown, to: string): Record<string, string> {
  return Object.fromEntries(t.orgColumns.filter((c) => row[c] === from).map((c) => [c, to]));
}

/**
 * Probes one persona against the given tables (with the witness installed).
 * Returns violations.
 *
 * @example
 * expect(await probePersona(db, teacher, tables)).toEqual([])
 */
export async function probePersona(
  db: TestDatabase,
  persona: Persona,
  tables: readonly TenantTable[],
  options: ProbeOptions = {},
): Promise<string[]> {
  const violations: string[] = [];
  const settings = await db.userContext(persona.settings);
  const client = await db.connect(persona.login);
  const home = persona.home;
  try {
    await defineForeign(client, persona, tables);
    for (const t of tables) {
      const q = t.qualified;
      const id = ident(t.idColumn);
      const at = `${t.name} × ${persona.label}`;
      /** Runs a statement in a rolled-back transaction; an expected refusal is no violation. */
      const attempt = async (
        label: string, sql: string, params: unknown[], judge: (res: pg.QueryResult) => string | null,
        { atHome = false, pass = 0 } = {},
      ) => {
        const witness: Record<string, string> = pass > 0 ? { 'matrix.witness': 'pass', 'matrix.pass': String(pass) } : {};
        try {
          const problem = await inRolledBack(client, { ...settings, ...witness }, async () => judge(await client.query(sql, params)));
          if (problem) violations.push(`${at} ${label}: ${problem}`);
        } catch (error) {
          if (!isRefusal(error, atHome)) violations.push(`${at} ${label}: refused for the wrong reason (${(error as Error).message})`);
        }
      };
      const insert = (values: Record<string, unknown>, suffix = '') => {
        const cols = Object.keys(values).filter((c) => !t.identityColumns.includes(c)).map(ident).join(', ');
        return `insert into ${q} (${cols}) select ${cols} from jsonb_populate_record(null::${q}, $1)${suffix}`;
      };
      // SELECT: no foreign row visible.
      await attempt('SELECT', `select count(*)::int as n from ${q} r where ${persona.foreign(t, 'r')}`, [], (res) =>
        res.rows[0].n > 0 ? `${res.rows[0].n} foreign rows visible` : null,
      );

      // UPDATE and DELETE, blind: the witness counts the foreign rows reached.
      for (const [label, stmt] of [['UPDATE', `update ${q} set org_id = null`], ['DELETE', `delete from ${q}`]] as const) {
        try {
          const reached = await inRolledBack(client, { ...settings, 'matrix.witness': 'count' }, async () => {
            await client.query(stmt);
            return Number((await client.query(`select current_setting('matrix.reached', true) as n`)).rows[0].n || 0);
          });
          if (reached > 0) violations.push(`${at} ${label}: ${reached} foreign rows reached`);
        } catch (error) {
          if (!isRefusal(error)) violations.push(`${at} ${label}: refused for the wrong reason (${(error as Error).message})`);
        }
      }

      // Foreign rows to copy: first those whose ids the persona sees at home
      // (where ids are twinned, the rows its reach mirrors), two of other
      // organisations and one of its own.
      const shadow = home
        ? await inRolledBack(client, settings, () =>
            client.query<{ ids: string[] }>(`select array(select ${id}::text from ${q} where org_id = $1 order by 1 limit 200) as ids`, [home]),
          ).then((res) => res.rows[0]!.ids, () => [])
        : [];
      const foreign = persona.foreign(t, 'r');
      const sample = await db.admin.query<{ row: Record<string, unknown> }>(
        `(select to_jsonb(r) as row from ${q} r where ${foreign} and r.org_id is distinct from $1
            order by r.${id}::text = any ($2::text[]) desc, r.${id} limit 2)
         union all
         (select to_jsonb(r) from ${q} r where ${foreign} and r.org_id = $1 order by r.${id} limit 1)`,
        [home ?? null, shadow],
      );
      const rows = sample.rows.map((r) => r.row);

      // INSERT a copy of each (fresh id), and the row itself ON CONFLICT: refused.
      for (const row of rows) {
        await attempt('INSERT', insert(row), [freshCopy(t, row)], (res) => `foreign row accepted (${res.rowCount} rows)`);
        await attempt('INSERT ON CONFLICT', insert(row, ' on conflict do nothing'), [row], (res) => `foreign row accepted (${res.rowCount} rows)`);
      }
      if (!home) continue;
      const elsewhere = rows.find((r) => r.org_id !== home);
      if (!elsewhere) continue;
      const other = String(elsewhere.org_id);

      // UPDATE moving the persona's own rows into the other organisation,
      // blind (a statement that reads is also held to the SELECT policy),
      // five rows at most: refused.
      const moved = t.orgColumns.map((c) => `${ident(c)} = $1`).join(', ');
      await attempt('UPDATE into another organisation', `update ${q} set ${moved}`, [other], (res) =>
        (res.rowCount ?? 0) > 0 ? `${res.rowCount} rows moved` : null, { pass: 5 },
      );

      // A row at home naming the other organisation's site, child, user…:
      // refused. One row is rewritten, so that rows cannot collide with each other.
      if (options.twinned || !t.keyColumns.some((c) => elsewhere[c] != null)) continue;
      const atHome = { ...elsewhere, ...moveOrgs(t, elsewhere, elsewhere.org_id, home) };
      await attempt('INSERT at home with foreign ids', insert(atHome), [freshCopy(t, atHome)], (res) => `accepted (${res.rowCount} rows)`, { atHome: true });
      const rewritten = t.columns.filter((c) => !t.orgColumns.includes(c) && c !== t.idColumn && !t.identityColumns.includes(c)).map(ident);
      await attempt(
        'UPDATE at home to foreign ids',
        `update ${q} set (${rewritten.join(', ')}) = (select ${rewritten.join(', ')} from jsonb_populate_record(null::${q}, $1))`,
        [atHome],
        (res) => ((res.rowCount ?? 0) > 0 ? `${res.rowCount} rows now name foreign ids` : null),
        { atHome: true, pass: 1 },
      );
    }
  } finally {
    await client.end();
  }
  return violations;
}
