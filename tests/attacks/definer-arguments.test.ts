// Reviewed SECURITY DEFINER functions called with psql by an operator in an
// open session, with arguments the CLI never passes. Each case is one a SQL
// mutant survived (docs/testing.md, Mutation testing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK } from '../support/demo-ids.js';
import { asOperatorInSession, countAs, sqlstate } from '../support/attacker.js';
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
