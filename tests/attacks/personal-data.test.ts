// An operator with psql changes personal data only for a purpose the
// database has checked (a sweep run the policy allows, an erasure request,
// an archive purge), never a row a legal hold covers; and the archive is
// audited and written only from live rows. Each worked before migration 0017.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';
import { asOperatorInSession, countAs, openSession, sqlstate } from '../support/attacker.js';
import { runCli } from '../support/cli.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const CHILD = demoId('child:oak-primary:1');
const OTHER_CHILD = demoId('child:oak-primary:2');
const notesOf = (child: string) => countAs(db, `select count(*) from notes where org_id = $1 and child_id = $2`, [OAK, child]);
const erasureRequest = async (ref: string, child: string) =>
  db.admin.query(`insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on, kind)
                  values ($1, $2, $3, 'child', $4, current_date, (current_date + interval '1 month')::date, 'erasure')`, [OAK, OAK_PRIMARY, ref, child]);

describe('deleting or changing personal rows directly', () => {
  it('a DELETE with no purpose is refused and nothing goes', async () => {
    const before = await notesOf(CHILD);
    expect(before).toBeGreaterThan(0);
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(`delete from notes where org_id = $1 and child_id = $2`, [OAK, CHILD])), { commit: true });
    expect(state).toBe('TC040');
    expect(await notesOf(CHILD)).toBe(before);
  });

  it('an UPDATE that rewrites a child’s record with no purpose is refused', async () => {
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(`update children set full_name = 'Someone Else' where org_id = $1 and id = $2`, [OAK, CHILD])), { commit: true });
    expect(state).toBe('TC040');
    expect((await db.admin.query(`select full_name from children where id = $1`, [CHILD])).rows[0].full_name).not.toBe('Someone Else');
  });

  it('an erasure purpose reaches only the named person, and never a held row', async () => {
    await erasureRequest('ER-ATTACK-1', CHILD);
    const other = await notesOf(OTHER_CHILD);
    const wrongPerson = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`select app.begin_erasure($1, 'ER-ATTACK-1', $2)`, [OAK, CHILD]);
      return sqlstate(q(`delete from notes where org_id = $1 and child_id = $2`, [OAK, OTHER_CHILD]));
    }, { commit: true });
    expect(wrongPerson).toBe('TC040');
    expect(await notesOf(OTHER_CHILD)).toBe(other);

    const hold = (await db.admin.query(`insert into legal_holds (org_id, subject_id, reason) values ($1, $2, 'tribunal') returning id`, [OAK, CHILD])).rows[0].id;
    const before = await notesOf(CHILD);
    const held = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`select app.begin_erasure($1, 'ER-ATTACK-1', $2)`, [OAK, CHILD]);
      return sqlstate(q(`delete from notes where org_id = $1 and child_id = $2`, [OAK, CHILD]));
    }, { commit: true });
    expect(held).toBe('TC041');
    expect(await notesOf(CHILD)).toBe(before);
    await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'closed' where id = $1`, [hold]);
  });

  // Found by the red team: an UPDATE under a purpose may only anonymise, as the data map says.
  it('under an erasure, moving a child’s birth date (to end a statutory period) or rewriting notes onto another child is refused', async () => {
    // A child with a safeguarding concern, kept until their 25th birthday whatever they ask.
    const kid = (await db.admin.query(`select s.child_id from safeguarding_concerns s join notes n on n.org_id = s.org_id and n.child_id = s.child_id
      where s.org_id = $1 and not exists (select 1 from legal_holds h where h.org_id = s.org_id and h.subject_id = s.child_id)
      order by s.child_id limit 1`, [OAK])).rows[0].child_id as string;
    await erasureRequest('ER-ATTACK-3', kid);
    const concerns = await countAs(db, `select count(*) from safeguarding_concerns where org_id = $1 and child_id = $2`, [OAK, kid]);
    expect(concerns).toBeGreaterThan(0);
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`select app.begin_erasure($1, 'ER-ATTACK-3', $2)`, [OAK, kid]);
      const out: string[] = [];
      for (const stmt of [
        `delete from safeguarding_concerns where org_id = $1 and child_id = $2`,
        `update children set date_of_birth = '1900-01-01' where org_id = $1 and id = $2`,
        `update notes n set child_id = (select c.id from children c where c.org_id = n.org_id and c.site_id = n.site_id and c.id <> n.child_id
           order by c.id limit 1), body = 'FABRICATED' where n.org_id = $1 and n.child_id = $2`,
        `update notes set guardian_visible = not guardian_visible where org_id = $1 and child_id = $2 and kind <> 'sensitive'`,
        `update safeguarding_concerns set description = 'erased' where org_id = $1 and child_id = $2`,
      ]) {
        await q('savepoint s');
        out.push(await sqlstate(q(stmt, [OAK, kid])));
        await q('rollback to savepoint s');
      }
      // The red team's sequence: move the birth date, then delete the concern. Both refused.
      await q('savepoint s');
      out.push(await sqlstate(q(`update children set date_of_birth = '1900-01-01' where org_id = $1 and id = $2`, [OAK, kid])
        .then(() => q(`delete from safeguarding_concerns where org_id = $1 and child_id = $2`, [OAK, kid]))));
      await q('rollback to savepoint s');
      // What erasure really does: redact a note's body, generalise a birth date to its year's last day. Allowed.
      out.push(await sqlstate(q(`update notes set body = '[redacted]' where org_id = $1 and child_id = $2`, [OAK, kid])));
      out.push(await sqlstate(q(`update children set date_of_birth = (date_trunc('year', date_of_birth) + interval '1 year - 1 day')::date
        where org_id = $1 and id = $2`, [OAK, kid])));
      return out;
    });
    expect(states).toEqual(['TC040', 'TC040', 'TC040', 'TC040', 'TC040', 'TC040', 'ok', 'ok']);
    expect(await countAs(db, `select count(*) from safeguarding_concerns where org_id = $1 and child_id = $2`, [OAK, kid])).toBe(concerns);
  });

  it('an erasure ledger row is written only by the erasure of its person', async () => {
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const insert = () => q(`insert into erasures (org_id, id, subject_id, subject_type, counts, certificate_sha256, request_reference, account)
        values ($1, gen_random_uuid(), $2, 'child', '{"notes": 999}', repeat('0', 64), 'ER-ATTACK-1', '{}')`, [OAK, CHILD]);
      await q('savepoint s');
      const bare = await sqlstate(insert());
      await q('rollback to savepoint s');
      await q(`select app.begin_erasure($1, 'ER-ATTACK-1', $2)`, [OAK, CHILD]);
      await q('savepoint t');
      const other = await sqlstate(q(`insert into erasures (org_id, id, subject_id, subject_type, counts, certificate_sha256, request_reference, account)
        values ($1, gen_random_uuid(), $2, 'child', '{}', repeat('0', 64), 'ER-ATTACK-1', '{}')`, [OAK, OTHER_CHILD]));
      await q('rollback to savepoint t');
      return [bare, other];
    });
    expect(states).toEqual(['TC044', 'TC044']);
  });

  it('an erasure purpose needs an open erasure request for that person', async () => {
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => [
      await sqlstate(q(`savepoint a`).then(() => q(`select app.begin_erasure($1, 'ER-ATTACK-1', $2)`, [OAK, OTHER_CHILD]))),
      await sqlstate(q(`rollback to savepoint a`).then(() => q(`select app.begin_erasure($1, 'NO-SUCH-REF', $2)`, [OAK, CHILD]))),
    ]);
    expect(states).toEqual(['TC044', 'TC044']);
  });

  it('a request’s kind and person cannot be rewritten into an erasure of someone else', async () => {
    const req = (await db.admin.query(`insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on)
      values ($1, $2, 'SAR-ATTACK-2', 'child', $3, current_date, (current_date + interval '1 month')::date) returning id`, [OAK, OAK_PRIMARY, CHILD])).rows[0].id;
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) =>
      sqlstate(q(`update dsar_requests set kind = 'erasure', subject_id = $2 where id = $1`, [req, OTHER_CHILD])), { commit: true });
    expect(state).toBe('TC044');
    expect((await db.admin.query(`select kind, subject_id from dsar_requests where id = $1`, [req])).rows[0]).toEqual({ kind: 'access', subject_id: CHILD });
  });
});

describe('legal holds', () => {
  it('cannot be deleted, moved to someone else, or released without a reason', async () => {
    const hold = (await db.admin.query(`insert into legal_holds (org_id, subject_id, reason) values ($1, $2, 'claim') returning id`, [OAK, CHILD])).rows[0].id;
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const out: string[] = [];
      for (const stmt of [
        `delete from legal_holds where id = $1`,
        `update legal_holds set subject_id = '${OTHER_CHILD}' where id = $1`,
        `update legal_holds set category = 'attendance' where id = $1`,
        `update legal_holds set released_at = now() where id = $1`,
      ]) {
        await q('savepoint s');
        out.push(await sqlstate(q(stmt, [hold])));
        await q('rollback to savepoint s');
      }
      return out;
    });
    expect(states).toEqual(['TC041', 'TC041', 'TC041', '23514']);
    expect((await db.admin.query(`select subject_id, released_at from legal_holds where id = $1`, [hold])).rows[0]).toEqual({ subject_id: CHILD, released_at: null });
    // A release is stamped by the database: now, by this session, whatever the statement says (found by the red team).
    const other = await db.withClient('trustctl_test_op2', (c) => openSession(c, ['oak-trust']));
    const mine = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q, session) => {
      await q(`update legal_holds set released_at = '2020-01-01', release_reason = 'settled', released_by_session = $2 where id = $1`, [hold, other]);
      return session;
    }, { commit: true });
    const released = (await db.admin.query(`select released_at > now() - interval '1 minute' as recent, released_by_session from legal_holds where id = $1`, [hold])).rows[0];
    expect(released).toEqual({ recent: true, released_by_session: mine });
    // Released once: an update that writes the same values again, by another operator later, neither fails nor re-stamps it.
    const before = (await db.admin.query(`select released_at, released_by_session, release_reason from legal_holds where id = $1`, [hold])).rows[0];
    const again = await asOperatorInSession(db, 'trustctl_test_op2', ['oak-trust'], (q) =>
      sqlstate(q(`update legal_holds set release_reason = release_reason where id = $1`, [hold])), { commit: true });
    expect(again).toBe('ok');
    expect((await db.admin.query(`select released_at, released_by_session, release_reason from legal_holds where id = $1`, [hold])).rows[0]).toEqual(before);
  });
});

describe('retention runs', () => {
  const run = async (cutoff: string, action = 'delete') =>
    (await db.admin.query(`insert into retention_runs (org_id, site_id, category, table_name, action, status, cutoff)
       values ($1, $2, 'notes', 'notes', $3, 'running', $4::timestamptz) returning id`, [OAK, OAK_PRIMARY, action, cutoff])).rows[0].id as string;

  beforeAll(async () => {
    await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values ($1, null, 'notes', '7 years', 'created_at', 'delete')`, [OAK]);
  });

  it('a run whose cut-off the policy in force does not allow gives no purpose', async () => {
    const id = await run(new Date().toISOString());
    const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], (q) => sqlstate(q(`select app.begin_retention_batch($1)`, [id])));
    expect(state).toBe('TC043');
    await db.admin.query(`update retention_runs set status = 'failed' where id = $1`, [id]);
  });

  it('a valid run deletes nothing newer than its cut-off, and an archive run nothing it did not archive', async () => {
    const before = await notesOf(CHILD);
    const id = await run('2000-01-01T00:00:00Z');
    const tooNew = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`select app.begin_retention_batch($1)`, [id]);
      return sqlstate(q(`delete from notes where org_id = $1 and child_id = $2`, [OAK, CHILD]));
    }, { commit: true });
    expect(tooNew).toBe('TC040');
    await db.admin.query(`update retention_runs set status = 'failed' where id = $1`, [id]);

    await db.admin.query(`update retention_policies set keep_for = '0 days', action = 'archive' where org_id = $1 and category = 'notes'`, [OAK]);
    const arch = await run(new Date(Date.now() - 60_000).toISOString(), 'archive');
    const unarchived = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      await q(`select app.begin_retention_batch($1)`, [arch]);
      return sqlstate(q(`delete from notes where org_id = $1 and child_id = $2`, [OAK, CHILD]));
    }, { commit: true });
    expect(unarchived).toBe('TC040');
    expect(await notesOf(CHILD)).toBe(before);
    await db.admin.query(`update retention_runs set status = 'failed' where id = $1`, [arch]);
    await db.admin.query(`delete from retention_policies where org_id = $1 and category = 'notes'`, [OAK]);
  });
});

describe('the archive', () => {
  it('a hold, a request or a run records the session that made it, never one the statement names', async () => {
    const other = await db.withClient('trustctl_test_op2', (c) => openSession(c, ['oak-trust']));
    const { session, rows } = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q, s) => {
      const hold = await q(`insert into legal_holds (org_id, subject_id, reason, created_by_session) values ($1, $2, 'x', $3) returning created_by_session as s`, [OAK, OTHER_CHILD, other]);
      const req = await q(`insert into dsar_requests (org_id, reference, subject_type, subject_id, received_on, due_on, created_by_session)
        values ($1, 'SAR-STAMP-1', 'child', $2, current_date, (current_date + interval '1 month')::date, $3) returning created_by_session as s`, [OAK, OTHER_CHILD, other]);
      return { session: s, rows: [hold.rows[0].s, req.rows[0].s] };
    });
    expect(rows).toEqual([session, session]);
  });

  it('archive_rows refuses once the session has ended, even inside the batch', async () => {
    await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values ($1, null, 'notes', '0 days', 'created_at', 'archive')`, [OAK]);
    const run = (await db.admin.query(`insert into retention_runs (org_id, site_id, category, table_name, action, status, cutoff)
      values ($1, $2, 'notes', 'notes', 'archive', 'running', now() - interval '1 minute') returning id`, [OAK, OAK_PRIMARY])).rows[0].id;
    try {
      const state = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q, session) => {
        await q(`select app.begin_retention_batch($1)`, [run]);
        await q(`select app.end_operator_session($1, 'success')`, [session]);
        return sqlstate(q(`select app.archive_rows(array(select id from notes where org_id = $1 limit 5))`, [OAK]));
      });
      expect(state).toBe('TC005');
    } finally {
      await db.admin.query(`update retention_runs set status = 'failed' where id = $1`, [run]);
      await db.admin.query(`delete from retention_policies where org_id = $1 and category = 'notes'`, [OAK]);
    }
  });

  it('operators cannot forge archived rows, delete them without a purpose, or archive outside a sweep batch', async () => {
    // An archived note to aim at (as a past sweep would have left it).
    await db.admin.query(`insert into archive.notes select n.*, now(), gen_random_uuid() from notes n where n.org_id = $1 order by n.id limit 1`, [OAK]);
    expect(await countAs(db, `select count(*) from archive.notes where org_id = $1`, [OAK])).toBe(1);
    const states = await asOperatorInSession(db, 'trustctl_test_op', ['oak-trust'], async (q) => {
      const out: string[] = [];
      for (const stmt of [
        `insert into archive.safeguarding_concerns (org_id, site_id, id, child_id, reported_by, category, description, status, occurred_at, created_at, run_id)
           select org_id, site_id, gen_random_uuid(), child_id, reported_by, category, 'forged', status, occurred_at, created_at, gen_random_uuid()
           from safeguarding_concerns where org_id = '${OAK}' limit 1`,
        `delete from archive.notes where org_id = '${OAK}'`,
        `select app.archive_rows(array['${CHILD}'::uuid])`,
      ]) {
        await q('savepoint s');
        out.push(await sqlstate(q(stmt)));
        await q('rollback to savepoint s');
      }
      return out;
    });
    expect(states).toEqual(['42501', 'TC040', 'TC040']);
    expect(await countAs(db, `select count(*) from archive.notes where org_id = $1`, [OAK])).toBe(1);
    expect(await countAs(db, `select count(*) from archive.safeguarding_concerns where description = 'forged'`)).toBe(0);
    await db.admin.query(`delete from archive.notes where org_id = $1`, [OAK]);
  });

  it('a sweep that archives is captured row by row in the audit trail, in archive and in public', async () => {
    const oakNotes = await countAs(db, `select count(*) from notes where org_id = $1`, [OAK]);
    expect(oakNotes).toBeGreaterThan(0);
    const op = db.url('trustctl_test_op');
    // Set by a second operator: the one who sets a policy does not apply it for 24 hours (operator-door.test.ts).
    const set = await runCli(['--database-url', db.url('trustctl_test_op2'), '--reason', 'attack suite', 'retention', 'policy', 'set', '--org', 'oak-trust', '--category', 'notes', '--keep', '0d', '--action', 'archive']);
    expect(set.code, set.stderr).toBe(0);
    const sweep = await runCli(['--database-url', op, '--reason', 'attack suite', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'notes', '--yes']);
    expect(sweep.code, sweep.stderr).toBe(0);
    const archived = await countAs(db, `select count(*) from archive.notes where org_id = $1`, [OAK]);
    const held = await countAs(db, `select count(*) from notes n where org_id = $1 and exists (select 1 from legal_holds h
      where h.org_id = n.org_id and h.released_at is null and (h.subject_id in (n.child_id, n.author_id)))`, [OAK]);
    expect(archived).toBeGreaterThan(0);
    expect(archived + held).toBe(oakNotes);
    expect(await countAs(db, `select count(*) from audit_events where org_id = $1 and action = 'archive.notes.insert' and actor_type = 'operator'`, [OAK])).toBe(archived);
    expect(await countAs(db, `select count(*) from audit_events where org_id = $1 and action = 'notes.delete' and actor_type = 'operator'`, [OAK])).toBe(archived);
  });
});

describe('free text about a person', () => {
  it('a session reason naming a child stays out of the audit trail, and the child’s erasure redacts it on the session', async () => {
    const kid = demoId('child:oak-primary:7');
    const name = (await db.admin.query(`select full_name from children where org_id = $1 and id = $2`, [OAK, kid])).rows[0].full_name as string;
    // An operator writes the child's name into a session's reason, and acts in it.
    const session = await db.withClient('trustctl_test_op', async (c) => {
      const s = (await c.query(`select session_id from app.begin_operator_session($1, null, array['oak-trust'], false, 'psql', 'x', 'x')`,
        [`Call with the school about ${name}`])).rows[0].session_id as string;
      await c.query('begin');
      await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
      await c.query(`insert into notes (org_id, site_id, child_id, kind, body) values ($1, $2, $3, 'general', 'called')`, [OAK, OAK_PRIMARY, kid]);
      await c.query('commit');
      return s;
    });
    const inTrail = () => countAs(db, `select count(*) from audit_events where operator_session_id = $1 and (reason ilike $2 or context::text ilike $2)`, [session, `%${name}%`]);
    expect(await countAs(db, `select count(*) from audit_events where operator_session_id = $1`, [session])).toBeGreaterThan(0);
    expect(await inTrail()).toBe(0);

    await erasureRequest('ER-NAMED-1', kid);
    const work = await mkdtemp(join(tmpdir(), 'trustctl-named-'));
    try {
      await cp(inject('mediaDir'), join(work, 'media'), { recursive: true });
      const r = await runCli(['--database-url', db.url('trustctl_test_op2'), '--reason', 'erasure request', 'dsar', 'erase', '--org', 'oak-trust', '--subject', kid,
        '--request', 'ER-NAMED-1', '--yes', '--out', join(work, 'certs'), '--media-dir', join(work, 'media')]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const reason = (await db.admin.query(`select reason from operator_sessions where id = $1`, [session])).rows[0].reason as string;
    expect(reason).toBe('Call with the school about [redacted]');
    expect(await countAs(db, `select count(*) from operator_sessions where reason ilike $1 or command ilike $1`, [`%${name}%`])).toBe(0);
  });
});
