// Attacks found in review, kept as regression tests: ids minted in one
// organisation must never open another; app users cannot escalate their own
// roles or grant across organisations; operators can record their reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const SA = demoId('staff:oak-primary:site_admin:1');
const LAC = demoId('child:little-acorns-nursery:1');
const LAN = demoId('site:little-acorns-nursery');

type Query = (sql: string, params?: unknown[]) => Promise<{ rows: any[]; rowCount: number | null }>;
const asUser = <T>(user: string, fn: (q: Query) => Promise<T>): Promise<T> =>
  db.inTransaction('trustctl_test_app', { 'app.user_id': user }, (c) => fn((sql, params) => c.query(sql, params)));
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

describe('ids are matched with their tenant key', () => {
  it('a decoy child in Oak with the id of an Acorns child opens nothing in Acorns', async () => {
    // Set up as superuser what a site admin with a teacher role could build:
    // a child at Oak Primary reusing an Acorns child's id, on the admin's caseload.
    const g = demoId('group:decoy');
    await db.admin.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role) values ($1, $2, $1, $3, 'teacher')`, [OAK, OAK_PRIMARY, SA]);
    await db.admin.query(`insert into children (org_id, site_id, id, full_name, date_of_birth) values ($1, $2, $3, 'decoy', '2020-01-01')`, [OAK, OAK_PRIMARY, LAC]);
    await db.admin.query(`insert into groups (org_id, site_id, id, name, kind) values ($1, $2, $3, 'Decoy', 'class')`, [OAK, OAK_PRIMARY, g]);
    await db.admin.query(`insert into group_memberships (org_id, site_id, group_id, staff_id, role) values ($1, $2, $3, $4, 'teacher')`, [OAK, OAK_PRIMARY, g, SA]);
    await db.admin.query(`insert into group_memberships (org_id, site_id, group_id, child_id, role) values ($1, $2, $3, $4, 'member')`, [OAK, OAK_PRIMARY, g, LAC]);
    // The same id as a guardian link, too.
    await db.admin.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role) values ($1, $2, $1, $3, 'guardian')`, [OAK, OAK_PRIMARY, SA]);
    await db.admin.query(`insert into guardianships (org_id, site_id, child_id, guardian_id, relationship) values ($1, $2, $3, $4, 'carer')`, [OAK, OAK_PRIMARY, LAC, SA]);

    const acornsRows = await db.admin.query(`select count(*)::int as n from attendance_records where org_id = $1 and child_id = $2`, [ACORNS, LAC]);
    expect(acornsRows.rows[0].n).toBeGreaterThan(0);

    await asUser(SA, async (q) => {
      for (const t of ['children', 'attendance_records', 'wellbeing_checkins', 'notes', 'media_files', 'guardianships', 'group_memberships']) {
        const r = await q(`select count(*)::int as n from ${t} where org_id = $1`, [ACORNS]);
        expect({ t, n: r.rows[0].n }).toEqual({ t, n: 0 });
      }
      const upd = await q(`update attendance_records set status = 'present' where org_id = $1`, [ACORNS]);
      expect(upd.rowCount).toBe(0);
      // The decoy itself is visible at Oak, as it should be.
      expect((await q(`select count(*)::int as n from children where id = $1`, [LAC])).rows[0].n).toBe(1);
      // Last: a refused statement aborts the transaction.
      expect(await code(q(`insert into notes (org_id, site_id, child_id, kind, body) values ($1, $2, $3, 'general', 'planted')`, [ACORNS, LAN, LAC]))).toBe('42501');
    });
  });

  it('a site minted in Oak with the id of the Acorns nursery opens nothing there', async () => {
    const ceo = demoId('staff:oak-trust:ceo');
    // An org admin may create sites in their organisation; try reusing the nursery's id.
    await asUser(ceo, async (q) => {
      const made = await code(q(`insert into sites (org_id, site_id, slug, name, kind) values ($1, $2, 'copycat', 'Copycat', 'nursery')`, [OAK, LAN]));
      expect(made).toBe('ok');
      const seen = await q(`select count(*)::int as n from children where org_id = $1`, [ACORNS]);
      expect(seen.rows[0].n).toBe(0);
    });
  });
});

describe('role grants by app users', () => {
  it('a site admin cannot grant themselves safeguarding_lead, site_admin or org_admin', async () => {
    for (const [role, site] of [['safeguarding_lead', OAK_PRIMARY], ['site_admin', OAK_PRIMARY], ['teacher', OAK_PRIMARY], ['org_admin', null]] as const) {
      const r = await asUser(SA, (q) => code(q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role) values ($1, $2, $1, $3, $4)`, [OAK, site, SA, role])));
      expect({ role, r }).toEqual({ role, r: '42501' });
    }
  });

  it('a site admin can grant an everyday role to a colleague at their own site, and nothing more', async () => {
    const colleague = demoId('staff:oak-primary:office:1');
    const insert = (role: string, extra = '', vals: unknown[] = []) =>
      asUser(SA, (q) => code(q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role${extra ? ', approval_state' : ''}) values ($1, $2, $1, $3, $4${extra})`, [OAK, OAK_PRIMARY, colleague, role, ...vals])));
    expect(await insert('teacher')).toBe('ok');
    expect(await insert('safeguarding_lead')).toBe('42501');
    expect(await insert('teacher', ', $5', ['approved'])).toBe('42501');
  });

  it('nobody grants a user of another organisation through the app', async () => {
    const acornsOwner = demoId('staff:little-acorns:owner');
    for (const user of [SA, demoId('staff:oak-trust:ceo')]) {
      const r = await asUser(user, (q) =>
        code(q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role) values ($1, $2, $3, $4, 'teacher')`, [OAK, OAK_PRIMARY, ACORNS, acornsOwner])),
      );
      expect(r).toBe('42501');
    }
  });
});

describe('operators record their reads', () => {
  it('app.audit_record writes an event in the session’s scope and refuses outside it', async () => {
    await db.withClient('trustctl_test_op', async (c) => {
      const s = (await c.query(`select session_id from app.begin_operator_session('read test', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
      await c.query('begin');
      await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
      const id = (await c.query(`select app.audit_record($1, $2, 'dsar.export', 'child', $3::text, array[$3::uuid], 'success', '{"files": 3}') as id`, [OAK, OAK_PRIMARY, demoId('child:oak-primary:1')])).rows[0].id;
      expect(await code(c.query(`select app.audit_record($1, null, 'dsar.export', 'child', 'x', null, null, null)`, [ACORNS]))).toBe('TC005');
      await c.query('rollback');
      expect(id).toMatch(/^\d+$/);
    });
  });
});
