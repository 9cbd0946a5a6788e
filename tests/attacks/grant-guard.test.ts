// The grant guard (app.guard_role_assignment, app.continuous_access_start)
// attacked with psql as an operator in an open session. Each case is one a
// SQL mutant survived (docs/testing.md, Mutation testing): the rule was in
// the database, but no test would have noticed it gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, PLATFORM, demoId } from '../support/demo-ids.js';
import { asOperatorInSession, countAs, sqlstate, type Query } from '../support/attacker.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const PAT = demoId('support:1');
const TEACHER = demoId('staff:oak-primary:teacher:1');
const ACORNS_SITE = demoId('site:little-acorns-nursery');

/** A teacher grant for support user Pat at Oak Primary, starting `startsIn` from now, `hours` long. */
const grantAt = (q: Query, startsIn: string, hours: number) =>
  q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
     values ($1, $2, $3, $4, 'teacher', 'support visit', now() + $5::interval, now() + $5::interval + make_interval(hours => $6), 'SUP-9')
     returning id, approval_state`, [OAK, OAK_PRIMARY, PLATFORM, PAT, startsIn, hours]);

describe('time boxes', () => {
  it('a revoked grant does not let a new one start hours ahead where it would have ended', async () => {
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const first = (await grantAt(q, '0 seconds', 8)).rows[0];
      await q(`update role_assignments set revoked_at = now(), revoke_reason = 'not needed' where id = $1`, [first.id]);
      return sqlstate(grantAt(q, '8 hours', 8));
    });
    expect(state).toBe('TC022');
  });

  it('a grant can be cut short to end this very moment, but not a moment before it, nor made longer', async () => {
    const out = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const g = (await grantAt(q, '0 seconds', 8)).rows[0];
      // The guard's "now" is the statement's own time, so statement_timestamp() in the UPDATE is exactly it.
      const cut = async (to: string) => {
        await q('savepoint cut');
        const state = await sqlstate(q(`update role_assignments set expires_at = ${to} where id = $1`, [g.id]));
        await q(state === 'ok' ? 'release savepoint cut' : 'rollback to savepoint cut');
        return state;
      };
      const longer = await cut(`expires_at + interval '1 second'`);
      const past = await cut(`statement_timestamp() - interval '1 millisecond'`);
      const now = await cut('statement_timestamp()');
      const ended = (await q(`select expires_at <= clock_timestamp() as ended from role_assignments where id = $1`, [g.id])).rows[0].ended;
      return { longer, past, now, ended };
    });
    expect(out).toEqual({ longer: 'TC024', past: 'TC024', now: 'ok', ended: true });
  });

  it('a grant revoked before it started adds nothing to continuous access', async () => {
    const out = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const early = (await grantAt(q, '1 minute', 8)).rows[0];
      await q(`update role_assignments set revoked_at = now(), revoke_reason = 'booked by mistake' where id = $1`, [early.id]);
      // Counted with the revoked one, this would be 8 hours and a minute of access: over the maximum.
      return (await grantAt(q, '2 minutes', 8)).rows[0].approval_state;
    });
    expect(out).toBe('not_required');
  });

  it('a permanent role does not count as continuous time-boxed access', async () => {
    // The demo's first Oak Primary teacher holds the teacher role there without an end.
    const held = await countAs(db, `select count(*) from role_assignments where user_id = $1 and site_id = $2 and role = 'teacher' and expires_at is null and revoked_at is null`, [TEACHER, OAK_PRIMARY]);
    expect(held).toBe(1);
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) =>
      (await q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
                values ($1, $2, $1, $3, 'teacher', 'cover', now(), now() + interval '1 hour', 'SUP-9') returning approval_state`, [OAK, OAK_PRIMARY, TEACHER])).rows[0].approval_state);
    expect(state).toBe('not_required');
  });
});

describe('decisions', () => {
  it('who approved a grant cannot be written without a decision', async () => {
    const id = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => (await grantAt(q, '0 seconds', 1)).rows[0].id, { commit: true });
    const before = (await db.admin.query(`select row_to_json(r)::text as row from role_assignments r where id = $1`, [id])).rows[0].row;
    for (const set of [`approved_by = 'trustctl_test_op2', approved_at = now()`, `denied_by = 'trustctl_test_op2'`, `deny_reason = 'rewritten'`]) {
      const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) => sqlstate(q(`update role_assignments set ${set} where id = $1`, [id])), { commit: true });
      expect(state, set).toBe('TC024');
    }
    expect((await db.admin.query(`select row_to_json(r)::text as row from role_assignments r where id = $1`, [id])).rows[0].row).toBe(before);
  });
});

describe('the operator’s session', () => {
  it('a grant in an organisation the session does not cover is refused by the guard itself (TC005), not left to row-level security', async () => {
    const before = await countAs(db, `select count(*) from role_assignments where org_id = $1`, [ACORNS]);
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
                  values ($1, $2, $3, $4, 'teacher', 'support visit', now(), now() + interval '1 hour', 'SUP-9')`, [ACORNS, ACORNS_SITE, PLATFORM, PAT])),
    { commit: true });
    expect(state).toBe('TC005');
    expect(await countAs(db, `select count(*) from role_assignments where org_id = $1`, [ACORNS])).toBe(before);
  });
});
