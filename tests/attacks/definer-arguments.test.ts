// Reviewed SECURITY DEFINER functions called with psql by an operator in an
// open session, with arguments the CLI never passes. Each case is one a SQL
// mutant survived (docs/testing.md, Mutation testing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK } from '../support/demo-ids.js';
import { asOperatorInSession, countAs, openSession, sqlstate } from '../support/attacker.js';
import { runCli } from '../support/cli.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  const sealed = await runCli(['--database-url', db.url('trustctl_test_op'), 'audit', 'seal', '--org', 'oak-trust']);
  expect(sealed.code, sealed.stderr).toBe(0);
});
afterAll(() => db?.drop());

describe('app.audit_checkpoint', () => {
  const checkpoints = () => countAs(db, `select count(*) from audit_checkpoints where org_id = $1`, [OAK]);

  it('refuses a head that is not the chain’s: a forged hash, or an entry before the head', async () => {
    const before = await checkpoints();
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const head = (await q(`select chain_seq, hash from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
      const earlier = (await q(`select chain_seq, hash from audit_chain where org_id = $1 and chain_seq < $2 order by chain_seq desc limit 1`, [OAK, head.chain_seq])).rows[0];
      // The seal's own horizon: every event below it is sealed, so only the head check stands in the way.
      const horizon = (await q(`select horizon::text as h from audit_checkpoints where org_id = $1 order by id desc limit 1`, [OAK])).rows[0].h;
      const attempt = async (seq: string, hash: Buffer) => {
        await q('savepoint s');
        const state = await sqlstate(q(`select app.audit_checkpoint($1, $2, $3, 1, $4::xid8, null, null)`, [OAK, seq, hash, horizon]));
        await q('rollback to savepoint s');
        return state;
      };
      return [await attempt(head.chain_seq, Buffer.alloc(32, 7)), await attempt(earlier.chain_seq, earlier.hash)];
    }, { commit: true });
    expect(states).toEqual(['TC012', 'TC012']);
    expect(await checkpoints()).toBe(before);
  });

  it('does not take another organisation’s anchor as the head of this one’s chain', async () => {
    const before = await checkpoints();
    const forged = Buffer.alloc(32, 9);
    // Another organisation has pruned up to a position this one has not reached (planted as the superuser).
    const next = String(BigInt((await db.admin.query(`select max(chain_seq)::text as s from audit_chain where org_id = $1`, [OAK])).rows[0].s) + 1n);
    await db.admin.query(`insert into audit_anchors (org_id, chain_seq, hash) values ($1, $2, $3)`, [ACORNS, next, forged]);
    try {
      const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
        const horizon = (await q(`select horizon::text as h from audit_checkpoints where org_id = $1 order by id desc limit 1`, [OAK])).rows[0].h;
        return sqlstate(q(`select app.audit_checkpoint($1, $2, $3, 1, $4::xid8, null, null)`, [OAK, next, forged, horizon]));
      }, { commit: true });
      expect(state).toBe('TC012');
      expect(await checkpoints()).toBe(before);
    } finally {
      // Append-only: taken out as a superuser with triggers off.
      await db.withClient('admin', async (c) => {
        await c.query('begin');
        await c.query('set local session_replication_role = replica');
        await c.query(`delete from audit_anchors where org_id = $1 and chain_seq = $2`, [ACORNS, next]);
        await c.query('commit');
      });
    }
  });

  it('refuses a horizon above an event not yet sealed: the checkpoint would vouch for a row the chain does not hold', async () => {
    const before = await checkpoints();
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      // The seal's own audit event came after the head it sealed.
      const unsealed = await q(`select count(*)::int as n from audit_events e where e.org_id = $1 and not exists (select 1 from audit_chain c where c.org_id = e.org_id and c.event_id = e.id)`, [OAK]);
      expect(unsealed.rows[0].n).toBeGreaterThan(0);
      const head = (await q(`select chain_seq, hash from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
      return sqlstate(q(`select app.audit_checkpoint($1, $2, $3, 1, pg_snapshot_xmin(pg_current_snapshot()), null, null)`, [OAK, head.chain_seq, head.hash]));
    }, { commit: true });
    expect(state).toBe('TC011');
    expect(await checkpoints()).toBe(before);
  });

  // Here the seal's own event is still unsealed, so the next check (TC011) would also refuse;
  // the horizon check is what refuses it on a trail sealed to the last event.
  it('refuses a horizon in the future: it would claim that events not yet written are sealed', async () => {
    const before = await checkpoints();
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const head = (await q(`select chain_seq, hash from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
      const rows = (await q(`select count(*)::bigint as n from audit_chain where org_id = $1`, [OAK])).rows[0].n;
      return sqlstate(q(
        `select app.audit_checkpoint($1, $2, $3, $4, (pg_current_xact_id()::text::bigint + 1000)::text::xid8, null, null)`,
        [OAK, head.chain_seq, head.hash, rows],
      ));
    }, { commit: true });
    expect(state).toBe('22023');
    expect(await checkpoints()).toBe(before);
  });
});

describe('app.end_operator_session', () => {
  it('ends a session once: a second call changes neither when it ended nor its outcome, and records nothing', async () => {
    const out = await db.withClient('trustctl_test_op', async (c) => {
      const session = await openSession(c, ['oak-trust']);
      const first = (await c.query(`select app.end_operator_session($1, 'failure') as ok`, [session])).rows[0].ok;
      const ended = (await db.admin.query(`select ended_at::text as at, outcome from operator_sessions where id = $1`, [session])).rows[0];
      const second = (await c.query(`select app.end_operator_session($1, 'success') as ok`, [session])).rows[0].ok;
      const after = (await db.admin.query(`select ended_at::text as at, outcome from operator_sessions where id = $1`, [session])).rows[0];
      const events = await countAs(db, `select count(*) from audit_events where action = 'operator_session.end' and target_id = $1`, [session]);
      return { first, second, ended, after, events };
    });
    expect(out.first).toBe(true);
    expect(out.second).toBe(false);
    expect(out.after).toEqual(out.ended);
    expect(out.ended.outcome).toBe('failure');
    expect(out.events).toBe(1);
  });
});
