// The archive schema holds what retention sweeps archived: personal data,
// under row-level security like its source tables. The isolation matrix
// probes the public tables; this probes every archive table, read from the
// catalog (a new one is covered), with rows of two organisations in it:
// an operator in a session over one organisation reads and deletes only
// that organisation's archived rows. Found by a SQL mutant: the policy of
// archive.rota_shifts could match every organisation and no test noticed,
// because no test had another organisation's rows in that table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK } from '../support/demo-ids.js';
import { asOperatorInSession } from '../support/attacker.js';

let db: TestDatabase;
let tables: string[] = [];
const planted = new Map<string, { home: number; foreign: number }>();

beforeAll(async () => {
  db = await createTestDatabase();
  tables = (await db.admin.query<{ t: string }>(
    `select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'archive' and c.relkind = 'r'
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
      order by 1`,
  )).rows.map((r) => r.t);
  // Archived rows of both organisations, planted as the superuser with triggers off (the
  // attacker's world, not the attack): copies of the source table's Oak rows, kept at Oak
  // and moved to Little Acorns (archive tables have no foreign keys to hold them).
  await db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    for (const t of tables) {
      const cols = (await c.query<{ a: string }>(
        `select a.attname as a from pg_attribute a where a.attrelid = format('public.%I', $1::text)::regclass and a.attnum > 0 and not a.attisdropped
           and a.attidentity = '' and a.attgenerated = '' and a.attname <> 'org_id' order by a.attnum`, [t],
      )).rows.map((r) => `"${r.a}"`);
      const copy = async (org: string) =>
        (await c.query(
          `insert into archive."${t}" (org_id, ${cols.join(', ')}, run_id)
           select $1, ${cols.join(', ')}, gen_random_uuid() from public."${t}" where org_id = $2 limit 3
           on conflict do nothing`, [org, OAK],
        )).rowCount ?? 0;
      planted.set(t, { home: await copy(OAK), foreign: await copy(ACORNS) });
    }
    await c.query('commit');
  });
});
afterAll(() => db?.drop());

describe('archive tables', () => {
  it('are found in the catalog, and each holds rows of two organisations', () => {
    expect(tables.length).toBeGreaterThanOrEqual(8);
    for (const t of tables) expect(planted.get(t)?.foreign, t).toBeGreaterThan(0);
  });

  it('an operator in a session over one organisation reads only its archived rows, and deletes none of another’s', async () => {
    const seen = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const out: Record<string, { foreign: number; deleted: number }> = {};
      for (const t of tables) {
        const foreign = Number((await q(`select count(*) from archive."${t}" where org_id <> $1`, [OAK])).rows[0].count);
        // A delete that reaches a foreign row may also fail on its way (capturing it for the trail): counted as reached.
        await q('savepoint probe');
        const deleted = await q(`delete from archive."${t}" where org_id = $1`, [ACORNS]).then((r) => r.rowCount ?? 0, () => -1);
        await q('rollback to savepoint probe');
        out[t] = { foreign, deleted };
      }
      return out;
    });
    expect(seen).toEqual(Object.fromEntries(tables.map((t) => [t, { foreign: 0, deleted: 0 }])));
    for (const t of tables) {
      const left = Number((await db.admin.query(`select count(*) from archive."${t}" where org_id = $1`, [ACORNS])).rows[0].count);
      expect(left, t).toBe(planted.get(t)!.foreign);
    }
  });
});
