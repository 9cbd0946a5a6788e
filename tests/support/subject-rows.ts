// Finds a person's rows from the catalog alone, without the data map: every
// uuid (or uuid[]) column of every table in public and archive is searched
// for their id, so a test can tell what the map missed.
import type pg from 'pg';

/**
 * Every row, in every table, with a uuid (or uuid[]) column holding the
 * subject's id: table (`notes`, `archive.notes`) -> row keys (the primary
 * key without org_id, as text). Where a foreign key pairs the column with an
 * organisation column (users' ids are unique per organisation), that column
 * must hold the subject's organisation too; an archive table pairs them as
 * its public table does.
 *
 * @example
 * const hits = await rowsNaming(db.admin, childId, OAK) // Map { 'notes' => Set { '…' }, … }
 */
export async function rowsNaming(pool: pg.Pool, subjectId: string, orgId: string): Promise<Map<string, Set<string>>> {
  const fks = await pool.query(`
    select c.relname as table, a.attname as column, o.attname as org_column
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid
    join pg_class f on f.oid = k.confrelid and f.relname in ('users', 'children')
    join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[array_length(k.conkey, 1)]
    join pg_attribute o on o.attrelid = k.conrelid and o.attnum = k.conkey[1]
    where k.contype = 'f' and c.relnamespace = 'public'::regnamespace and array_length(k.conkey, 1) > 1`);
  const orgColumn = new Map<string, string>(fks.rows.map((r) => [`${r.table}.${r.column}`, r.org_column]));
  const cols = await pool.query(`
    select n.nspname as schema, c.relname as table, a.attname as column, t.typname as type,
           (select string_agg(pa.attname, ',' order by pa.attnum) from pg_index i
              join pg_attribute pa on pa.attrelid = i.indrelid and pa.attnum = any (i.indkey)
             where i.indrelid = c.oid and i.indisprimary and pa.attname <> 'org_id') as key
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    join pg_type t on t.oid = a.atttypid
    where n.nspname in ('public', 'archive') and c.relkind in ('r', 'p') and t.typname in ('uuid', '_uuid')
      and a.attname not in ('org_id', 'site_id', 'user_org_id', 'run_id')`);
  const hits = new Map<string, Set<string>>();
  for (const c of cols.rows) {
    const name = c.schema === 'public' ? c.table : `archive.${c.table}`;
    const org = orgColumn.get(`${c.table}.${c.column}`);
    const where = c.type === '_uuid' ? `$1 = any (${c.column})` : `${c.column} = $1${org ? ` and ${org} = $2` : ''}`;
    const res = await pool.query(`select (${c.key})::text as key from ${c.schema}.${c.table} where ${where}`, org ? [subjectId, orgId] : [subjectId]);
    for (const r of res.rows) {
      if (!hits.has(name)) hits.set(name, new Set());
      hits.get(name)!.add(r.key);
    }
  }
  return hits;
}
