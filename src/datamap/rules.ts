// The data map's rules as the database enforces them (app.datamap_rules,
// migration 0017): per table, in public and in archive, the retention
// category and clock, the statutory clock, and the columns that name a
// person. Written by `db migrate` from the data map, so the database's guard
// and trustctl's jobs read one definition.
import type { ClientBase } from 'pg';
import { anonymisation } from './anonymise.js';
import { dataMap } from './index.js';

export interface DataMapRule {
  readonly table: string;
  readonly category: string | null;
  readonly clock: string | null;
  readonly statutoryClock: string | null;
  readonly ownRefs: ReadonlyArray<{ column: string; array: boolean; org_column: string | null }>;
  readonly holdColumns: readonly string[];
  readonly holdArrayColumns: readonly string[];
  readonly hasSite: boolean;
  readonly idColumn: string;
  /** Column → how anonymising changes it (the only changes an operator's UPDATE may make). */
  readonly anonymise: Readonly<Record<string, string>>;
}

/**
 * The rules of every tenant table of the data map.
 *
 * @example
 * dataMapRules().find((r) => r.table === 'notes')?.category // 'notes'
 */
export function dataMapRules(): DataMapRule[] {
  return dataMap
    .filter((m) => m.tenantKey !== null)
    .map((m) => ({
      table: m.table,
      category: m.retention?.category ?? null,
      clock: m.retention?.clock ?? null,
      statutoryClock: m.erasure.statutory?.clock ?? null,
      ownRefs: m.subjects
        .filter((s) => s.relation !== 'by')
        .map((s) => ({ column: s.column, array: s.array === true, org_column: s.orgColumn ?? null })),
      holdColumns: m.subjects.filter((s) => !s.array).map((s) => s.column),
      holdArrayColumns: m.subjects.filter((s) => s.array).map((s) => s.column),
      hasSite: m.tenantKey?.site != null,
      idColumn: m.idColumn,
      anonymise: anonymisation(m.erasure.columns),
    }));
}

/**
 * Rewrites app.datamap_rules from the data map, for each table in public
 * and for its archive table where there is one. Needs the table's owner
 * (an administrative connection); a no-op before migration 0017.
 */
export async function syncDataMapRules(client: ClientBase): Promise<number> {
  const exists = await client.query<{ ok: boolean }>(`select to_regclass('app.datamap_rules') is not null as ok`);
  if (!exists.rows[0]?.ok) return 0;
  const rules = dataMapRules();
  await client.query('begin');
  try {
    await client.query('delete from app.datamap_rules');
    const res = await client.query(
      `insert into app.datamap_rules (schema_name, table_name, category, clock, statutory_clock, own_refs, hold_columns, hold_array_columns,
                                      has_site, id_column, anonymise)
       select s.nspname, r.t, r.category, r.clock, r.statutory_clock, r.own_refs, r.hold_columns, r.hold_array_columns, r.has_site,
              r.id_column, r.anonymise
       from jsonb_to_recordset($1::jsonb) as r(t text, category text, clock text, statutory_clock text, own_refs jsonb,
                                               hold_columns text[], hold_array_columns text[], has_site boolean, id_column text, anonymise jsonb)
       join pg_namespace s on s.nspname in ('public', 'archive')
       where to_regclass(format('%I.%I', s.nspname, r.t)) is not null`,
      [JSON.stringify(rules.map((r) => ({
        t: r.table, category: r.category, clock: r.clock, statutory_clock: r.statutoryClock, own_refs: r.ownRefs,
        hold_columns: r.holdColumns, hold_array_columns: r.holdArrayColumns, has_site: r.hasSite,
        id_column: r.idColumn, anonymise: r.anonymise,
      })))],
    );
    await client.query('commit');
    return res.rowCount ?? 0;
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}
