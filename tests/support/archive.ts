// Archived rows for tests: the archive tables (what retention sweeps moved
// out of public) are empty in the template, so a probe of them would prove
// nothing. Planted as the superuser with triggers off (the attacker's world,
// not the attack): copies of the source table's rows of one organisation,
// filed under each organisation given (archive tables have no foreign keys
// to hold them to their organisation's sites and people).
import pg from 'pg';
import type { TestDatabase } from './db.js';

/** Every archive table with a tenant key, from the catalog. */
export async function archiveTables(db: TestDatabase): Promise<string[]> {
  return (await db.admin.query<{ t: string }>(
    `select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'archive' and c.relkind = 'r'
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
      order by 1`,
  )).rows.map((r) => r.t);
}

/**
 * Copies up to `perTable` rows of `from` in each public table into its archive
 * table, once under each organisation of `into`. Returns, per table, the rows
 * planted under each organisation.
 *
 * @example
 * const planted = await plantArchivedRows(db, { from: OAK, into: [OAK, ACORNS] })
 */
export async function plantArchivedRows(
  db: TestDatabase,
  { from, into, perTable = 3 }: { from: string; into: readonly string[]; perTable?: number },
): Promise<Map<string, Record<string, number>>> {
  const tables = await archiveTables(db);
  const planted = new Map<string, Record<string, number>>();
  await db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    for (const t of tables) {
      const cols = (await c.query<{ a: string }>(
        `select a.attname as a from pg_attribute a where a.attrelid = format('public.%I', $1::text)::regclass and a.attnum > 0 and not a.attisdropped
           and a.attidentity = '' and a.attgenerated = '' and a.attname <> 'org_id' order by a.attnum`, [t],
      )).rows.map((r) => pg.escapeIdentifier(r.a));
      const counts: Record<string, number> = {};
      for (const org of into) {
        counts[org] = (await c.query(
          `insert into archive.${pg.escapeIdentifier(t)} (org_id, ${cols.join(', ')}, run_id)
           select $1, ${cols.join(', ')}, gen_random_uuid() from public.${pg.escapeIdentifier(t)} where org_id = $2 limit ${Number(perTable)}
           on conflict do nothing`, [org, from],
        )).rowCount ?? 0;
      }
      planted.set(t, counts);
    }
    await c.query('commit');
  });
  return planted;
}
