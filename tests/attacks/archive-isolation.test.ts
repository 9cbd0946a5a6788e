// The archive schema holds what retention sweeps archived: personal data,
// under row-level security like its source tables. The isolation matrix
// (tests/integration/isolation.test.ts) probes every archive table with
// every persona; this is the operator's case alone, written out: with rows
// of two organisations in every archive table (read from the catalog), an
// operator in a session over one organisation reads and deletes only that
// organisation's archived rows. Found by a SQL mutant: the policy of
// archive.rota_shifts could match every organisation and no test noticed,
// because no test had another organisation's rows in that table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK } from '../support/demo-ids.js';
import { asOperatorInSession } from '../support/attacker.js';
import { plantArchivedRows } from '../support/archive.js';

let db: TestDatabase;
let tables: string[] = [];
let planted = new Map<string, Record<string, number>>();

beforeAll(async () => {
  db = await createTestDatabase();
  // Copies of Oak's rows, archived at Oak and at Little Acorns.
  planted = await plantArchivedRows(db, { from: OAK, into: [OAK, ACORNS] });
  tables = [...planted.keys()];
});
afterAll(() => db?.drop());

describe('archive tables', () => {
  it('are found in the catalog, and each holds rows of two organisations', () => {
    expect(tables.length).toBeGreaterThanOrEqual(8);
    for (const t of tables) expect(planted.get(t)?.[ACORNS], t).toBeGreaterThan(0);
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
      expect(left, t).toBe(planted.get(t)![ACORNS]);
    }
  });
});
