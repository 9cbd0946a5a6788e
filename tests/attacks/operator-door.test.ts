// Attacks on the operator's door, each done as the attacker would: an
// operator login with raw SQL (psql), or the platform's request path. Every
// one worked before migration 0016 (docs/threat-model.md lists them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, PLATFORM, demoId } from '../support/demo-ids.js';
import { asAppUser, asOperatorInSession, countAs, openSession, sqlstate } from '../support/attacker.js';
import { runCli } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { randomUUID } from 'node:crypto';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const ACORNS_OWNER = demoId('staff:little-acorns:owner');
const OAK_CEO = demoId('staff:oak-trust:ceo');
const SITE_ADMIN = demoId('staff:oak-primary:site_admin:1');
const TEACHER = demoId('staff:oak-primary:teacher:1');
const CHILD = demoId('child:oak-primary:1');
const PAT = demoId('support:1');

describe('the actor is bound once per transaction (context changed inside a statement)', () => {
  it('a second VALUES row that clears the session cannot slip a forged grant past the guard', async () => {
    const before = await countAs(db, `select count(*) from role_assignments where user_id = $1`, [ACORNS_OWNER]);
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(
        `insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
         values ($1, $2, $3, $4, 'teacher', 'row one', now(), now() + interval '1 hour', 'SUP-1'),
                ($1, null, $5, $6, 'org_admin', 'row two' || set_config('app.operator_session', '', true), now() - interval '30 days', null, null)`,
        [OAK, OAK_PRIMARY, PLATFORM, PAT, ACORNS, ACORNS_OWNER])),
    { commit: true }).catch((e: { code?: string }) => e.code);
    expect(state).toBe('TC030');
    expect(await countAs(db, `select count(*) from role_assignments where user_id = $1`, [ACORNS_OWNER])).toBe(before);
  });

  it('RETURNING that switches to a teacher cannot make an operator’s change look like the teacher’s', async () => {
    const events = () => countAs(db, `select count(*) from audit_events where actor_id = $1 and target_id = $2::text`, [TEACHER, CHILD]);
    const before = await events();
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(
        `update children set preferred_name = 'Changed' where org_id = $1 and id = $2
         returning set_config('app.operator_session', '', true), set_config('app.user_org_id', $1::text, true),
                   set_config('app.user_id', $3::text, true)`, [OAK, CHILD, TEACHER])), { commit: true });
    expect(state).toBe('TC030');
    expect((await db.admin.query(`select preferred_name from children where id = $1`, [CHILD])).rows[0].preferred_name).not.toBe('Changed');
    expect(await events()).toBe(before);
  });

  it('a data-modifying CTE that sets another user is refused', async () => {
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(
        `with x as (select set_config('app.user_id', $3::text, true) as v)
         update children c set preferred_name = x.v from x where c.org_id = $1 and c.id = $2`, [OAK, CHILD, TEACHER])));
    expect(state).toBe('TC030');
  });

  // Operators may add notes (captured); changing them needs a purpose (tests/attacks/personal-data.test.ts).
  const addNote = (q: (s: string, p?: unknown[]) => Promise<unknown>) =>
    q(`insert into notes (org_id, site_id, child_id, kind, body) values ($1, $2, $3, 'general', 'operator note')`, [OAK, OAK_PRIMARY, CHILD]);

  it('switching to another of one’s own sessions between statements is refused once the transaction has acted', async () => {
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q, _s, c) => {
      await addNote(q);
      const second = await openSessionOnSameLogin(c);
      await q(`select set_config('app.operator_session', $1, true)`, [second]);
      return sqlstate(addNote(q));
    });
    expect(state).toBe('TC030');
  });

  // Found by the red team: bind as one actor, pass row-level security as another (FROM), switch back (RETURNING).
  it('an operator bound as a teacher cannot borrow its session for row-level security in FROM and switch back', async () => {
    const forged = () => countAs(db, `select count(*) from notes where body = 'forged by an operator'`);
    const state = await db.withClient('trustctl_test_op', async (c) => {
      const session = await openSession(c, ['oak-trust']);
      await c.query('begin');
      try {
        await c.query(`select set_config('app.operator_session', '', true), set_config('app.user_id', $1, true), set_config('app.user_org_id', $2, true)`, [TEACHER, OAK]);
        return await sqlstate(c.query(
          `insert into notes (org_id, site_id, child_id, author_id, kind, body)
           select $1, $2, $3, $4, 'sensitive', 'forged by an operator' from (select set_config('app.operator_session', $5, true)) x
           returning set_config('app.operator_session', '', true)`, [OAK, OAK_PRIMARY, CHILD, TEACHER, session]));
      } finally {
        await c.query('commit').catch(() => undefined);
      }
    });
    expect(state).toBe('TC030');
    expect(await forged()).toBe(0);
  });

  it('an app user bound as one user cannot pass row-level security as another organisation’s admin in FROM', async () => {
    const ACORNS_ADMIN = ACORNS_OWNER;
    const before = await countAs(db, `select count(*) from notes where org_id = $1 and body like '%[edited]'`, [ACORNS]);
    const state = await asAppUser(db, TEACHER, (q) => sqlstate(q(
      `update notes n set body = n.body || ' [edited]'
         from (select set_config('app.user_id', $2::text, true), set_config('app.user_org_id', $1::text, true)) x
        where n.org_id = $1::uuid
       returning set_config('app.user_id', $3::text, true), set_config('app.user_org_id', $4::text, true)`, [ACORNS, ACORNS_ADMIN, TEACHER, OAK])), { commit: true })
      .catch((e: { code?: string }) => e.code);
    expect(state).toBe('TC030');
    expect(await countAs(db, `select count(*) from notes where org_id = $1 and body like '%[edited]'`, [ACORNS])).toBe(before);
  });

  it('the platform’s request path cannot switch user in RETURNING either', async () => {
    const state = await asAppUser(db, SITE_ADMIN, (q) =>
      sqlstate(q(`update children set preferred_name = preferred_name where org_id = $1 and id = $2
                  returning set_config('app.user_id', $3::text, true)`, [OAK, CHILD, TEACHER])), { commit: true }).catch((e: { code?: string }) => e.code);
    expect(state).toBe('TC030');
  });

  it('a transaction that keeps its context acts and is recorded as its session (control)', async () => {
    const session = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q, s) => {
      await addNote(q);
      await addNote(q);
      return s;
    }, { commit: true });
    const r = await db.admin.query(`select count(*)::int as n, min(actor_type) as t from audit_events where operator_session_id = $1 and action = 'notes.insert'`, [session]);
    expect(r.rows[0]).toEqual({ n: 2, t: 'operator' });
  });
});

async function openSessionOnSameLogin(c: import('pg').Client): Promise<string> {
  // begin_operator_session inside the open transaction: the attacker's second session.
  const r = await c.query(`select session_id from app.begin_operator_session('second', null, array['oak-trust'], false, 'psql', 'a', 'a')`);
  return r.rows[0].session_id as string;
}

describe('tenant data never decides platform identity', () => {
  it('an organisation admin cannot call their organisation the platform', async () => {
    const state = await asAppUser(db, OAK_CEO, (q) => sqlstate(q(`update organisations set kind = 'platform' where org_id = $1`, [OAK])));
    expect(state).toBe('TC026');
    expect((await db.admin.query(`select kind from organisations where org_id = $1`, [OAK])).rows[0].kind).toBe('trust');
  });

  it('a "support" user made by a tenant, even in an organisation marked platform, gets no access elsewhere', async () => {
    const fake = demoId('attack:fake-support');
    await asAppUser(db, OAK_CEO, async (q) => {
      await q(`insert into users (org_id, site_id, id, kind, email, full_name) values ($1, null, $2, 'support', 'fake@oak.example', 'Fake Support')`, [OAK, fake]);
    }, { commit: true });
    // Even if a superuser's mistake marked Oak as a platform organisation:
    await db.admin.query(`update organisations set kind = 'platform' where org_id = $1`, [OAK]);
    try {
      const state = await asOperatorInSession(db, 'trustctl_test_op', ['little-acorns'], (q) =>
        sqlstate(q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
                    values ($1, null, $2, $3, 'office', 'support visit', now(), now() + interval '1 hour', 'SUP-9')`,
        [ACORNS, OAK, fake])));
      expect(state).toBe('TC022');
      const listed = await asOperatorInSession(db, 'trustctl_test_op', ['little-acorns'], (q) =>
        q(`select id from app.support_user_directory()`));
      expect(listed.rows.map((r) => r.id)).not.toContain(fake);
      expect(listed.rows.map((r) => r.id)).toContain(PAT);
    } finally {
      await db.admin.query(`update organisations set kind = 'trust' where org_id = $1`, [OAK]);
    }
  });
});

describe('operators record only what trustctl records', () => {
  it('app.audit_record refuses actions that imitate capture, sessions or prunes', async () => {
    for (const action of ['children.update', 'audit.prune', 'operator_session.end', 'role_assignments.insert', '']) {
      const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
        sqlstate(q(`select app.audit_record($1, null, $2, 'child', 'x', null, 'success', '{}')`, [OAK, action])));
      expect({ action, state }).toEqual({ action, state: 'TC013' });
    }
    const ok = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(`select app.audit_record($1, null, 'dsar.export', 'child', 'x', null, 'success', '{}')`, [OAK])));
    expect(ok).toBe('ok');
  });
});

describe('pruning the audit trail obeys holds and the retention period', () => {
  const prune = (seq: number) =>
    asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) => sqlstate(q(`select app.audit_prune($1, $2)`, [OAK, seq])), { commit: true });
  let seq = 0;
  const events = () => countAs(db, `select count(*) from audit_events where org_id = $1`, [OAK]);

  beforeAll(async () => {
    // Little Acorns' chain first, and longer than Oak's: every Oak position is also one of
    // Acorns', stored before it, so a prune that looked a position up in any organisation's
    // chain would take Acorns' entry (a SQL mutant did, and survived).
    await db.admin.query(`insert into audit_events (org_id, actor_type, action) select $1, 'system', 'test.other-org' from generate_series(1, 70000)`, [ACORNS]);
    const acorns = await runCli(['--database-url', db.url('trustctl_test_op'), '--reason', 'attack suite', 'audit', 'seal', '--org', 'little-acorns']);
    expect(acorns.code, acorns.stderr).toBe(0);
    const sealed = await runCli(['--database-url', db.url('trustctl_test_op'), '--reason', 'attack suite', 'audit', 'seal', '--org', 'oak-trust']);
    expect(sealed.code).toBe(0);
    seq = Number((await db.admin.query(`select max(chain_seq) as s from audit_checkpoints where org_id = $1`, [OAK])).rows[0].s);
    expect(seq).toBeGreaterThan(0);
    const acornsHead = Number((await db.admin.query(`select max(chain_seq) as s from audit_chain where org_id = $1`, [ACORNS])).rows[0].s);
    expect(acornsHead).toBeGreaterThanOrEqual(seq);
  });

  it('without an audit_events policy that deletes, nothing is pruned', async () => {
    const before = await events();
    expect(await prune(seq)).toBe('TC014');
    expect(await events()).toBeGreaterThanOrEqual(before);
    expect(await countAs(db, `select count(*) from audit_anchors where org_id = $1`, [OAK])).toBe(0);
  });

  it('inside the retention period, nothing is pruned', async () => {
    await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values ($1, null, 'audit_events', '7 years', 'occurred_at', 'delete')`, [OAK]);
    expect(await prune(seq)).toBe('TC014');
    expect(await countAs(db, `select count(*) from audit_anchors where org_id = $1`, [OAK])).toBe(0);
  });

  it('an operator who just shortened the policy cannot prune under it, in one transaction or the next', async () => {
    const before = await events();
    // One transaction: set a 0-day audit_events policy, then prune (found by the red team).
    const oneShot = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`update retention_policies set keep_for = '0 days' where org_id = $1 and category = 'audit_events'`, [OAK]);
      return sqlstate(q(`select app.audit_prune($1, $2)`, [OAK, seq]));
    }, { commit: true });
    expect(oneShot).toBe('TC047');
    // Committed, then pruned by the same operator: still refused; the policy stays 7 years (the transaction rolled back).
    await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      q(`update retention_policies set keep_for = '0 days' where org_id = $1 and category = 'audit_events'`, [OAK]), { commit: true });
    expect(await prune(seq)).toBe('TC047');
    expect(await events()).toBeGreaterThanOrEqual(before);
    expect(await countAs(db, `select count(*) from audit_anchors where org_id = $1`, [OAK])).toBe(0);
    // As the superuser had set it: no author among the operators.
    await db.admin.query(`update retention_policies set keep_for = '7 years', set_by_session = null where org_id = $1 and category = 'audit_events'`, [OAK]);
  });

  it('under a legal hold on the trail, nothing is pruned; released, it is', async () => {
    await db.admin.query(`update retention_policies set keep_for = '0 days' where org_id = $1 and category = 'audit_events'`, [OAK]);
    // The demo's own holds (a child's records) cover their events in the trail too: released here, so only this hold decides.
    await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'test' where org_id = $1 and released_at is null`, [OAK]);
    const hold = (await db.admin.query(`insert into legal_holds (org_id, category, reason) values ($1, 'audit_events', 'litigation') returning id`, [OAK])).rows[0].id;
    const before = await events();
    expect(await prune(seq)).toBe('TC015');
    expect(await events()).toBeGreaterThanOrEqual(before);
    await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'settled' where id = $1`, [hold]);
    expect(await prune(seq)).toBe('ok');
    expect(await countAs(db, `select count(*) from audit_anchors where org_id = $1`, [OAK])).toBe(1);
  });

  it('a hold that covers only the last entry of the prefix still stops the prune (the bound is inclusive)', async () => {
    // One event about a subject no other event names, then a transaction left open so that the
    // seal's horizon stops right after it: the checkpoint's last entry is that event (the seal's
    // own session event comes later and is not sealed).
    const subject = randomUUID();
    const event = (await db.admin.query(`insert into audit_events (org_id, actor_type, action, subject_ids) values ($1, 'system', 'test.last-entry', array[$2::uuid]) returning id::text as id`,
      [OAK, subject])).rows[0].id as string;
    const open = await db.connect('admin');
    try {
      await open.query('begin');
      const xid = (await open.query(`select pg_current_xact_id()::text as x`)).rows[0].x as string;
      // xmin is cluster-wide: other test files' older transactions end first.
      await waitFor(`transaction ${xid} to be the horizon`, async () =>
        (await open.query(`select pg_snapshot_xmin(pg_current_snapshot())::text as x`)).rows[0].x === xid);
      const sealed = await runCli(['--database-url', db.url('trustctl_test_op'), '--reason', 'attack suite', 'audit', 'seal', '--org', 'oak-trust']);
      expect(sealed.code).toBe(0);
    } finally {
      await open.query('rollback');
      await open.end();
    }
    const head = (await db.admin.query(
      `select k.chain_seq::text as seq, c.event_id::text as event from audit_checkpoints k join audit_chain c on c.org_id = k.org_id and c.chain_seq = k.chain_seq
        where k.org_id = $1 order by k.chain_seq desc limit 1`, [OAK])).rows[0];
    expect(head.event).toBe(event);
    expect(await countAs(db, `select count(*) from audit_events where org_id = $1 and subject_ids @> array[$2::uuid]`, [OAK, subject])).toBe(1);
    const hold = (await db.admin.query(`insert into legal_holds (org_id, subject_id, category, reason) values ($1, $2, 'audit_events', 'complaint') returning id`, [OAK, subject])).rows[0].id;
    expect(await prune(Number(head.seq))).toBe('TC015');
    expect(await countAs(db, `select count(*) from audit_events where id = $1`, [event])).toBe(1);
    await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'settled' where id = $1`, [hold]);
    expect(await prune(Number(head.seq))).toBe('ok');
    expect(await countAs(db, `select count(*) from audit_events where id = $1`, [event])).toBe(0);
    expect(await countAs(db, `select count(*) from audit_anchors where org_id = $1`, [OAK])).toBe(2);
  });

  it('an organisation sealed for the first time after another pruned starts its own chain at the beginning', async () => {
    // The platform's organisation: events, never sealed, no anchor of its own; Oak has two anchors by now.
    expect(await countAs(db, `select count(*) from audit_anchors where org_id <> $1`, [OAK])).toBe(0);
    await db.admin.query(`insert into audit_events (org_id, actor_type, action) values ($1, 'system', 'test.first-seal')`, [PLATFORM]);
    expect(await countAs(db, `select count(*) from audit_chain where org_id = $1`, [PLATFORM])).toBe(0);
    const sealed = await runCli(['--database-url', db.url('trustctl_test_op'), '--reason', 'attack suite', 'audit', 'seal', '--org', 'platform']);
    expect(sealed.code, sealed.stderr).toBe(0);
    const first = (await db.admin.query(`select chain_seq::int as seq, prev_hash from audit_chain where org_id = $1 order by chain_seq limit 1`, [PLATFORM])).rows[0];
    expect(first).toEqual({ seq: 1, prev_hash: Buffer.alloc(32) });
  });
});

describe('approval is not beaten by arithmetic', () => {
  const grantAt = (startsIn: string, hours: number, q: (s: string, p?: unknown[]) => Promise<{ rows: any[] }>) =>
    q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
       values ($1, $2, $3, $4, 'teacher', 'support visit', now() + $5::interval, now() + $5::interval + make_interval(hours => $6), 'SUP-7')
       returning id, approval_state`, [OAK, OAK_PRIMARY, PLATFORM, PAT, startsIn, hours]);

  it('a grant cannot be booked days ahead', async () => {
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) => sqlstate(grantAt('2 days', 8, q)));
    expect(state).toBe('TC022');
  });

  it('thirty 8-hour grants two minutes apart: the second is refused, and an abutting one waits for a second operator', async () => {
    const out = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const first = (await grantAt('0 seconds', 8, q)).rows[0];
      const gapped = await sqlstate(q(`savepoint s`).then(() => grantAt('8 hours 2 minutes', 8, q)));
      await q(`rollback to savepoint s`);
      const abutting = (await grantAt('8 hours', 8, q)).rows[0];
      return { first: first.approval_state, gapped, abutting: abutting.approval_state };
    });
    expect(out).toEqual({ first: 'not_required', gapped: 'TC022', abutting: 'pending' });
  });

  it('rotating roles at one site is one run of access (found by the red team)', async () => {
    await db.admin.query(`update access_policies set max_duration = '5 minutes' where org_id = $1 and role in ('office', 'senco')`, [OAK]);
    try {
      const out = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
        const grant = (role: string, startsIn: string) =>
          q(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, starts_at, expires_at, ticket)
             values ($1, $2, $3, $4, $5, 'support visit', now() + $6::interval, now() + $6::interval + interval '5 minutes', 'SUP-8')
             returning approval_state`, [OAK, OAK_PRIMARY, PLATFORM, PAT, role, startsIn]);
        const office = (await grant('office', '0 seconds')).rows[0].approval_state;
        const senco = (await grant('senco', '5 minutes')).rows[0].approval_state;
        return { office, senco };
      });
      expect(out).toEqual({ office: 'not_required', senco: 'pending' });
    } finally {
      await db.admin.query(`update access_policies set max_duration = '8 hours' where org_id = $1 and role in ('office', 'senco')`, [OAK]);
    }
  });

  it('revoking and granting again within the policy’s window counts as continuous access', async () => {
    const out = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const first = (await grantAt('0 seconds', 8, q)).rows[0];
      await q(`update role_assignments set revoked_at = now(), revoke_reason = 'done early' where id = $1`, [first.id]);
      return (await grantAt('1 minute', 8, q)).rows[0].approval_state;
    });
    expect(out).toBe('pending');
  });
});
