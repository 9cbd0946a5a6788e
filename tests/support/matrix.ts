// The isolation matrix, built from the live catalog: every table with a
// tenant key × SELECT / UPDATE / DELETE / INSERT / INSERT … ON CONFLICT ×
// every persona. A persona is an app_user member with app.user_id (and
// app.user_org_id) set to a
// user holding one role, or an operator with or without a session. Each probe
// runs in a transaction that is rolled back. Returns one line per violation.
import type pg from 'pg';
import type { TestDatabase } from './db.js';
import type { TestRoleName } from './roles.js';

export interface Persona {
  readonly label: string;
  readonly login: TestRoleName;
  /** Settings to set transaction-locally before each probe. */
  readonly settings: Readonly<Record<string, string>>;
  /** SQL predicate (over the probed table) for rows this persona must NOT reach. */
  readonly foreign: (table: TenantTable) => string;
}

export interface TenantTable {
  readonly name: string;
  readonly hasSite: boolean;
  /** The primary-key column other than org_id that identifies a row. */
  readonly idColumn: string;
  readonly idIsUuid: boolean;
  readonly slugColumn: boolean;
  /** GENERATED ALWAYS columns: an INSERT probe must leave them out. */
  readonly identityColumns: readonly string[];
}

/** Every table in schema public with an org_id column: the tenant tables. */
export async function tenantTablesFromCatalog(admin: pg.Pool): Promise<TenantTable[]> {
  const res = await admin.query<{ relname: string; has_site: boolean; id_col: string; id_type: string; has_slug: boolean; identity_cols: string[] | null }>(`
    select c.relname,
      (select array_agg(a.attname::text) from pg_attribute a where a.attrelid = c.oid and a.attidentity = 'a') as identity_cols,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'site_id' and not a.attisdropped) as has_site,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'slug' and not a.attisdropped) as has_slug,
      (select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
        where i.indrelid = c.oid and i.indisprimary and a.attname <> 'org_id' order by a.attnum desc limit 1) as id_col,
      (select format_type(a.atttypid, a.atttypmod) from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
        where i.indrelid = c.oid and i.indisprimary and a.attname <> 'org_id' order by a.attnum desc limit 1) as id_type
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
    order by c.relname`);
  return res.rows.map((r) => ({
    name: r.relname,
    hasSite: r.has_site,
    idColumn: r.id_col ?? 'org_id',
    idIsUuid: (r.id_type ?? 'uuid') === 'uuid',
    slugColumn: r.has_slug,
    identityColumns: r.identity_cols ?? [],
  }));
}

function isRefusal(error: unknown): boolean {
  // 42501: RLS WITH CHECK violation or missing privilege. SQLSTATE class TC:
  // trustctl's own guards, which run before RLS and refuse outright (the
  // grant guard outside an open session, TC005; the erasure ledger outside
  // an erasure, TC044) — as the doctor's probe counts them. A foreign-key or
  // unique violation would still mean RLS let the row through.
  const code = (error as { code?: string }).code ?? '';
  return code === '42501' || /^TC\d{3}$/.test(code);
}

async function inRolledBack<T>(client: pg.Client, settings: Readonly<Record<string, string>>, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    for (const [k, v] of Object.entries(settings)) await client.query('select set_config($1, $2, true)', [k, v]);
    return await fn();
  } finally {
    await client.query('rollback');
  }
}

/**
 * Probes one persona against the given tables. Returns violations.
 */
export async function probePersona(db: TestDatabase, persona: Persona, tables: readonly TenantTable[]): Promise<string[]> {
  const violations: string[] = [];
  const settings = await db.userContext(persona.settings);
  const client = await db.connect(persona.login);
  try {
    for (const t of tables) {
      const q = `public.${client.escapeIdentifier(t.name)}`;
      const foreign = persona.foreign(t);
      const at = `${t.name} × ${persona.label}`;

      // SELECT: no foreign row visible.
      try {
        const seen = await inRolledBack(client, settings, () =>
          client.query<{ n: string }>(`select count(*) as n from ${q} where ${foreign}`),
        );
        if (Number(seen.rows[0]!.n) > 0) violations.push(`${at} SELECT: ${seen.rows[0]!.n} foreign rows visible`);
      } catch (error) {
        if (!isRefusal(error)) violations.push(`${at} SELECT: unexpected error ${(error as Error).message}`);
      }

      // Known foreign rows (read as superuser) to aim UPDATE, DELETE and INSERT at.
      const sample = await db.admin.query<{ row: Record<string, unknown> }>(
        `select to_jsonb(x) as row from ${q} x where ${foreign} order by ${client.escapeIdentifier(t.idColumn)} limit 3`,
      );
      if (sample.rows.length === 0) continue;
      const targets = sample.rows.map((r) => [r.row.org_id, r.row[t.idColumn]]);
      const targetSql = `(org_id, ${client.escapeIdentifier(t.idColumn)}::text) in (select (e->>0)::uuid, e->>1 from jsonb_array_elements($1::jsonb) e)`;

      // UPDATE and DELETE of those rows: nothing changed.
      for (const op of ['UPDATE', 'DELETE'] as const) {
        const stmt =
          op === 'UPDATE'
            ? `update ${q} set org_id = org_id where ${targetSql}`
            : `delete from ${q} where ${targetSql}`;
        try {
          const res = await inRolledBack(client, settings, () => client.query(stmt, [JSON.stringify(targets)]));
          if ((res.rowCount ?? 0) > 0) violations.push(`${at} ${op}: ${res.rowCount} foreign rows changed`);
        } catch (error) {
          if (!isRefusal(error)) violations.push(`${at} ${op}: unexpected error ${(error as Error).message}`);
        }
      }

      // INSERT a copy of a foreign row (fresh id), and the same row ON CONFLICT: both refused.
      const row = sample.rows[0]!.row;
      const copy = { ...row };
      if (t.idIsUuid) copy[t.idColumn] = crypto.randomUUID();
      if (t.slugColumn) copy.slug = `probe-${Math.random().toString(36).slice(2, 10)}`;
      const probes: Array<[string, Record<string, unknown>, string]> = [
        ['INSERT', copy, ''],
        ['INSERT ON CONFLICT', row, ' on conflict do nothing'],
      ];
      for (const [label, values, suffix] of probes) {
        const cols = Object.keys(values).filter((c) => !t.identityColumns.includes(c));
        const stmt =
          `insert into ${q} (${cols.map((c) => client.escapeIdentifier(c)).join(', ')}) ` +
          `select ${cols.map((c) => client.escapeIdentifier(c)).join(', ')} from jsonb_populate_record(null::${q}, $1)${suffix}`;
        try {
          const res = await inRolledBack(client, settings, () => client.query(stmt, [values]));
          violations.push(`${at} ${label}: foreign row accepted (${res.rowCount} rows)`);
        } catch (error) {
          if (!isRefusal(error)) violations.push(`${at} ${label}: refused for the wrong reason (${(error as Error).message})`);
        }
      }
    }
  } finally {
    await client.end();
  }
  return violations;
}
