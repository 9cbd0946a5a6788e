// Time-boxed, ticketed access and role grants, against the real clock: the
// database stops honouring a grant the second it expires, with no command
// run in between; pending grants give nothing until a different operator
// approves, and the database refuses self-approval even by direct SQL;
// `access who` agrees with what app users actually see.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, ASH_PRIMARY, OAK, OAK_PRIMARY, PLATFORM, demoId } from '../support/demo-ids.js';
import type { TestRoleName } from '../support/roles.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const PAT = demoId('support:1'); // pat.support@platform.example.com
const LEE = demoId('support:2');
const cli = (op: 'trustctl_test_op' | 'trustctl_test_op2', args: string[]) => runCli(['--database-url', db.url(op), '--json', ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Children of a site visible to an app user (org, id) right now. */
async function childrenSeen(userOrg: string, user: string, org: string, site: string): Promise<number> {
  return db.inTransaction('trustctl_test_app', { 'app.user_org_id': userOrg, 'app.user_id': user }, async (c) =>
    Number((await c.query(`select count(*) as n from children where org_id = $1 and site_id = $2`, [org, site])).rows[0].n),
  );
}
const truthChildren = async (org: string, site: string) =>
  Number((await db.admin.query(`select count(*) as n from children where org_id = $1 and site_id = $2`, [org, site])).rows[0].n);
const dbNow = async () => (await db.admin.query(`select clock_timestamp() as t`)).rows[0].t as Date;

async function grant(op: 'trustctl_test_op' | 'trustctl_test_op2', extra: string[], ticket = 'SUP-100', reason = 'Fix the register import') {
  return cli(op, ['--ticket', ticket, '--reason', reason, 'access', 'grant', '--org', 'oak-trust', ...extra]);
}

/** Runs fn as an operator login inside an operator session over oak-trust (committing). */
async function asOperator<T>(login: TestRoleName, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return db.withClient(login, async (c) => {
    const s = (await c.query(`select session_id from app.begin_operator_session('access test', 'SUP-1', array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
    await c.query('begin');
    await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
    try {
      const out = await fn(c);
      await c.query('commit');
      return out;
    } catch (e) {
      await c.query('rollback');
      throw e;
    }
  });
}

describe('time-boxed access, with the real clock', () => {
  it('a grant of a few seconds gives the site’s rows, then none once it has expired, with no command run in between', async () => {
    const all = await truthChildren(OAK, ASH_PRIMARY);
    expect(all).toBeGreaterThan(0);
    const before = await dbNow();
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBe(0);

    const res = await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'site_admin', '--for', '4s']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const g = JSON.parse(res.stdout);
    expect(g).toMatchObject({ state: 'active', role: 'site_admin', site: 'ash-primary', ticket: 'SUP-100', requestedBy: 'trustctl_test_op' });

    const during = await dbNow();
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBe(all);
    // Exactly that site: nothing at Oak Primary, nothing in another organisation.
    expect(await childrenSeen(PLATFORM, PAT, OAK, OAK_PRIMARY)).toBe(0);
    expect(await childrenSeen(PLATFORM, PAT, ACORNS, demoId('site:little-acorns-nursery'))).toBe(0);

    const wait = Date.parse(g.expiresAt) - (await dbNow()).getTime() + 150;
    await sleep(Math.max(0, wait));
    const after = await dbNow();
    expect(after.getTime()).toBeGreaterThan(Date.parse(g.expiresAt));
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBe(0);

    // access who, asked afterwards about those moments, agrees.
    const who = async (at: Date) => {
      const r = await cli('trustctl_test_op', ['access', 'who', '--org', 'oak-trust', '--site', 'ash-primary', '--at', at.toISOString()]);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout).users as Array<{ user: { id: string }; grantId: string }>).filter((u) => u.user.id === PAT).map((u) => u.grantId);
    };
    expect(await who(before)).toEqual([]);
    expect(await who(during)).toEqual([g.id]);
    expect(await who(after)).toEqual([]);
  });

  it('a revoked grant stops at once', async () => {
    const res = await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', PAT, '--role', 'office', '--for', '1h']);
    const g = JSON.parse(res.stdout);
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBeGreaterThan(0);
    const rev = await cli('trustctl_test_op2', ['--reason', 'Ticket closed', 'access', 'revoke', g.id, '--org', 'oak-trust']);
    expect(rev.code).toBe(0);
    expect(JSON.parse(rev.stdout)).toMatchObject({ state: 'revoked', revokedBy: 'trustctl_test_op2', revokeReason: 'Ticket closed' });
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBe(0);
    // Final: a second revocation is refused, and so is un-revoking by SQL.
    expect((await cli('trustctl_test_op', ['--reason', 'again', 'access', 'revoke', g.id, '--org', 'oak-trust'])).code).toBe(2);
    await expect(asOperator('trustctl_test_op', (c) => c.query(`update role_assignments set revoked_at = null, revoked_by = null where id = $1`, [g.id]))).rejects.toMatchObject({ code: 'TC024' });
  });

  it('a pending grant gives nothing until a different operator approves it', async () => {
    const seenConcerns = () =>
      db.inTransaction('trustctl_test_app', { 'app.user_org_id': PLATFORM, 'app.user_id': LEE }, async (c) =>
        Number((await c.query(`select count(*) as n from safeguarding_concerns where org_id = $1 and site_id = $2`, [OAK, OAK_PRIMARY])).rows[0].n),
      );
    const concerns = Number((await db.admin.query(`select count(*) as n from safeguarding_concerns where org_id = $1 and site_id = $2`, [OAK, OAK_PRIMARY])).rows[0].n);
    expect(concerns).toBeGreaterThan(0);

    const res = await grant('trustctl_test_op', ['--site', 'oak-primary', '--user', 'lee.support@platform.example.com', '--role', 'safeguarding_lead', '--for', '30m'], 'SUP-200', 'Investigate a missing concern');
    expect(res.code).toBe(0);
    const g = JSON.parse(res.stdout);
    expect(g.state).toBe('pending');
    expect(await seenConcerns()).toBe(0);

    const self = await cli('trustctl_test_op', ['--reason', 'looks fine', 'access', 'approve', g.id, '--org', 'oak-trust']);
    expect(self.code).toBe(2);
    expect(self.stderr).toMatch(/a different operator must approve it/);
    // Even by direct SQL as the operator role that asked.
    await expect(asOperator('trustctl_test_op', (c) => c.query(`update role_assignments set approval_state = 'approved' where id = $1`, [g.id]))).rejects.toMatchObject({ code: 'TC025' });
    expect(await seenConcerns()).toBe(0);

    const ok = await cli('trustctl_test_op2', ['--reason', 'Checked SUP-200 with the school', 'access', 'approve', g.id, '--org', 'oak-trust']);
    expect(ok.code).toBe(0);
    const approved = JSON.parse(ok.stdout);
    expect(approved).toMatchObject({ state: 'active', approvedBy: 'trustctl_test_op2', requestedBy: 'trustctl_test_op' });
    // The 30 minutes start at approval.
    expect(Date.parse(approved.expiresAt) - Date.parse(approved.startsAt)).toBe(30 * 60 * 1000);
    expect(await seenConcerns()).toBe(concerns);
  });

  it('refuses what the policy forbids, with exit 2 and nothing written', async () => {
    const count = async () => Number((await db.admin.query(`select count(*) as n from role_assignments`)).rows[0].n);
    const n = await count();
    const cases: Array<[string[], string | undefined, RegExp]> = [
      [['--site', 'ash-primary', '--user', PAT, '--role', 'site_admin', '--for', '9h'], undefined, /over the maximum of 08:00:00/],
      [['--site', 'ash-primary', '--user', PAT, '--role', 'site_admin', '--for', '1h'], 'TICKET-9', /does not match/],
      [['--site', 'ash-primary', '--user', PAT, '--role', 'guardian', '--for', '1h'], undefined, /guardianships/],
      [['--site', 'ash-primary', '--user', PAT, '--role', 'org_admin', '--for', '1h'], undefined, /organisation-wide/],
      [['--site', 'little-acorns-nursery', '--user', PAT, '--role', 'office', '--for', '1h'], undefined, /no site "little-acorns-nursery" in oak-trust/],
      [['--site', 'ash-primary', '--user', 'nobody@example.org', '--role', 'office', '--for', '1h'], undefined, /no user of oak-trust/],
      [['--site', 'ash-primary', '--user', PAT, '--role', 'office', '--for', 'an hour'], undefined, /is not a duration/],
      [['--site', 'ash-primary', '--user', PAT, '--role', 'office', '--for', '1h', '--starts', '2020-01-01T00:00:00Z'], undefined, /cannot start in the past/],
    ];
    for (const [args, ticket, message] of cases) {
      const r = await grant('trustctl_test_op', args, ticket);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(r.stderr.includes('\n  ') ? 2 : 1);
      expect(r.stderr).toMatch(message);
    }
    const noTicket = await runCli(['--database-url', db.url('trustctl_test_op'), '--reason', 'x', 'access', 'grant', '--org', 'oak-trust', '--site', 'ash-primary', '--user', PAT, '--role', 'office', '--for', '1h']);
    expect(noTicket.code).toBe(2);
    expect(noTicket.stderr).toMatch(/a ticket is required/);
    expect(await count()).toBe(n);
  });

  it('holds operators to the rules by direct SQL too, and keeps grants as history', async () => {
    const insert = (extra: string, vals: unknown[]) =>
      asOperator('trustctl_test_op', (c) =>
        c.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, ticket, expires_at${extra ? ', approval_state' : ''})
          values ($1, $2, $3, $4, $5, 'direct', 'SUP-7', now() + interval '1 hour'${extra}) returning approval_state`, vals).then((r) => r.rows[0].approval_state),
      );
    // A sensitive role inserted as not needing approval is made pending.
    expect(await insert('', [OAK, OAK_PRIMARY, PLATFORM, PAT, 'safeguarding_lead'])).toBe('pending');
    await expect(insert(", 'approved'", [OAK, OAK_PRIMARY, PLATFORM, PAT, 'site_admin'])).rejects.toMatchObject({ code: 'TC024' });
    // A support user only gets time-boxed access.
    await expect(asOperator('trustctl_test_op', (c) => c.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason) values ($1, $2, $3, $4, 'office', 'forever')`, [OAK, OAK_PRIMARY, PLATFORM, PAT]))).rejects.toMatchObject({ code: 'TC022' });
    // Grants are not deleted or lengthened.
    const id = (await db.admin.query(`select id from role_assignments where org_id = $1 and reason = 'direct' limit 1`, [OAK])).rows[0].id;
    await expect(asOperator('trustctl_test_op', (c) => c.query(`delete from role_assignments where id = $1`, [id]))).rejects.toMatchObject({ code: 'TC024' });
    await expect(asOperator('trustctl_test_op2', (c) => c.query(`update role_assignments set expires_at = expires_at + interval '1 day' where id = $1`, [id]))).rejects.toMatchObject({ code: 'TC024' });
    // Outside the session's organisations: the grant guard refuses (TC005) before row-level security would.
    await expect(asOperator('trustctl_test_op', (c) => c.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, ticket, expires_at) values ($1, $2, $3, $4, 'office', 'x', 'SUP-1', now() + interval '1 hour')`, [ACORNS, demoId('site:little-acorns-nursery'), PLATFORM, PAT]))).rejects.toMatchObject({ code: 'TC005' });
  });

  it('audits every grant, approval, denial and revocation with its ticket and reason', async () => {
    const g = JSON.parse((await grant('trustctl_test_op', ['--site', 'oak-primary', '--user', PAT, '--role', 'safeguarding_lead', '--for', '10m'], 'SUP-300', 'Audit test')).stdout);
    const d = await cli('trustctl_test_op2', ['--ticket', 'SUP-300', '--reason', 'Not needed after all', 'access', 'deny', g.id, '--org', 'oak-trust']);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ state: 'denied', deniedBy: 'trustctl_test_op2' });
    // The reason is on the operator session the event names (free text stays out of the sealed trail, migration 0022).
    const events = await db.admin.query(
      `select e.action, e.actor_id, e.ticket, s.reason, e.reason as event_reason, e.subject_ids, e.context
         from audit_events e join operator_sessions s on s.id = e.operator_session_id
        where e.target_id = $1 and e.action like 'access.%' order by e.id`,
      [g.id],
    );
    expect(events.rows.map((e) => e.event_reason)).toEqual([null, null]);
    expect(events.rows.map((e) => [e.action, e.actor_id, e.ticket, e.reason])).toEqual([
      ['access.grant', 'trustctl_test_op', 'SUP-300', 'Audit test'],
      ['access.deny', 'trustctl_test_op2', 'SUP-300', 'Not needed after all'],
    ]);
    expect(events.rows[0].subject_ids).toEqual([PAT]);
    expect(events.rows[1].context).toMatchObject({ state: 'denied', because: 'Not needed after all' });
    // The row changes themselves are captured too.
    const captured = await db.admin.query(`select count(*)::int as n from audit_events where target_id = $1 and action like 'role_assignments.%'`, [g.id]);
    expect(captured.rows[0].n).toBe(2);
  });

  it('extends by a new grant from the old one’s end', async () => {
    const g = JSON.parse((await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', PAT, '--role', 'teacher', '--for', '1h'])).stdout);
    const e = await cli('trustctl_test_op', ['--reason', 'Needs another hour', 'access', 'extend', g.id, '--org', 'oak-trust', '--for', '2h']);
    expect(e.code).toBe(0);
    const x = JSON.parse(e.stdout);
    expect(x).toMatchObject({ state: 'scheduled', role: 'teacher', ticket: 'SUP-100', user: { id: PAT } });
    expect(x.startsAt).toBe(g.expiresAt);
    expect(Date.parse(x.expiresAt) - Date.parse(x.startsAt)).toBe(2 * 3600 * 1000);
    const list = JSON.parse((await cli('trustctl_test_op', ['access', 'list', '--org', 'oak-trust', '--active'])).stdout) as Array<{ id: string; state: string }>;
    expect(list.filter((l) => [g.id, x.id].includes(l.id)).map((l) => l.state).sort()).toEqual(['active', 'scheduled']);
  });
});

describe('what an independent review tried (regression tests)', () => {
  it('an approver cannot rewrite the time box, and nobody can end a grant in the past', async () => {
    const g = JSON.parse((await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'lee.support@platform.example.com', '--role', 'safeguarding_lead', '--for', '1h', '--starts', new Date(Date.now() + 600_000).toISOString()], 'SUP-400', 'Review')).stdout);
    expect(g.state).toBe('pending');
    await expect(asOperator('trustctl_test_op2', (c) => c.query(
      `update role_assignments set approval_state = 'approved', starts_at = '2020-01-01', expires_at = null where id = $1`, [g.id]))).rejects.toMatchObject({ code: 'TC024' });
    const standing = (await db.admin.query(`select id from role_assignments where org_id = $1 and expires_at is null and role = 'senco' limit 1`, [OAK])).rows[0].id;
    await expect(asOperator('trustctl_test_op', (c) => c.query(
      `update role_assignments set expires_at = starts_at + interval '1 microsecond' where id = $1`, [standing]))).rejects.toMatchObject({ code: 'TC024' });
    // Ending it later today is fine.
    await asOperator('trustctl_test_op', (c) => c.query(`update role_assignments set expires_at = now() + interval '1 hour' where id = $1`, [standing]));
  });

  it('only the organisation’s own users and platform support staff get access', async () => {
    const acornsStaff = (await db.admin.query(`select id from users where org_id = $1 and kind = 'staff' limit 1`, [ACORNS])).rows[0].id;
    await expect(asOperator('trustctl_test_op', (c) => c.query(
      `insert into role_assignments (org_id, site_id, user_org_id, user_id, role, reason, ticket, expires_at)
       values ($1, $2, $3, $4, 'office', 'x', 'SUP-1', now() + interval '1 hour')`, [OAK, ASH_PRIMARY, ACORNS, acornsStaff]))).rejects.toMatchObject({ code: 'TC022' });
  });

  it('the platform’s request path cannot forge, backdate, rewrite or delete grant history', async () => {
    const admin = demoId('staff:oak-primary:site_admin:1');
    const colleague = demoId('staff:oak-primary:office:1');
    const asAdmin = <T>(fn: (c: pg.Client) => Promise<T>) => db.inTransaction('trustctl_test_app', { 'app.user_id': admin }, fn);
    const ins = (extra: string, vals: unknown[]) => asAdmin((c) =>
      c.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role${extra}) values ($1, $2, $1, $3, 'teacher'${vals.length ? ', $4' : ''})`, [OAK, OAK_PRIMARY, colleague, ...vals]));
    await expect(ins(', approved_by', ['trustctl_test_op2'])).rejects.toMatchObject({ code: 'TC024' });
    await expect(ins(', starts_at', ['2020-01-01'])).rejects.toMatchObject({ code: 'TC022' });
    const made = await db.inTransaction('trustctl_test_app', { 'app.user_id': admin }, (c) =>
      c.query(`insert into role_assignments (org_id, site_id, user_org_id, user_id, role, granted_by_session, created_at)
               values ($1, $2, $1, $3, 'teacher', gen_random_uuid(), '2020-01-01') returning granted_by_session, created_at > now() - interval '1 minute' as fresh`, [OAK, OAK_PRIMARY, colleague]));
    expect(made.rows[0]).toEqual({ granted_by_session: null, fresh: true });
    const teacherGrant = (await db.admin.query(`select id from role_assignments where org_id = $1 and site_id = $2 and role = 'teacher' limit 1`, [OAK, OAK_PRIMARY])).rows[0].id;
    await expect(asAdmin((c) => c.query(`delete from role_assignments where id = $1`, [teacherGrant]))).rejects.toMatchObject({ code: 'TC024' });
    await expect(asAdmin((c) => c.query(`update role_assignments set role = 'office' where id = $1`, [teacherGrant]))).rejects.toMatchObject({ code: 'TC024' });
  });

  it('a second operator must agree after the grantor loosened the policy, or when access would run past the maximum', async () => {
    const loosen = await cli('trustctl_test_op', ['--reason', 'Loosen', 'access', 'policy', 'set', '--org', 'oak-trust', '--role', 'senco', '--max-duration', '90d', '--ticket-pattern', '.*']);
    expect(loosen.code).toBe(0);
    const mine = JSON.parse((await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'senco', '--for', '30d'], 'anything')).stdout);
    expect(mine.state).toBe('pending');
    const theirs = JSON.parse((await grant('trustctl_test_op2', ['--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'senco', '--for', '1h'], 'anything')).stdout);
    expect(theirs.state).toBe('active');
    // Chained: 8h of office, then 8h more, is past the 8h maximum: the extension waits for approval.
    // (At a site where Lee has had no access yet: time in any role at a site counts towards the maximum.)
    const first = JSON.parse((await grant('trustctl_test_op', ['--site', 'elm-academy', '--user', 'lee.support@platform.example.com', '--role', 'office', '--for', '8h'])).stdout);
    expect(first.state).toBe('active');
    const more = await cli('trustctl_test_op', ['--reason', 'More time', 'access', 'extend', first.id, '--org', 'oak-trust', '--for', '8h']);
    expect(JSON.parse(more.stdout).state).toBe('pending');
  });

  it('a class taught by a same-id user of another organisation opens nothing to the support person', async () => {
    const copy = demoId('doctor-test:copycat');
    await db.admin.query(`insert into users (org_id, site_id, id, kind, email, full_name) values ($1, $2, $3, 'staff', 'copy2@oak.example', 'Copy')`, [OAK, ASH_PRIMARY, LEE]);
    await db.admin.query(`insert into groups (org_id, site_id, id, name, kind) values ($1, $2, $3, 'Copy class', 'class')`, [OAK, ASH_PRIMARY, copy]);
    await db.admin.query(`insert into group_memberships (org_id, site_id, group_id, staff_id, role) values ($1, $2, $3, $4, 'teacher')`, [OAK, ASH_PRIMARY, copy, LEE]);
    await db.admin.query(`insert into group_memberships (org_id, site_id, group_id, child_id, role) select org_id, site_id, $3, id, 'member' from children where org_id = $1 and site_id = $2 limit 3`, [OAK, ASH_PRIMARY, copy]);
    const t = await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'lee.support@platform.example.com', '--role', 'teacher', '--for', '1h']);
    expect(JSON.parse(t.stdout).state).toBe('active');
    expect(await childrenSeen(PLATFORM, LEE, OAK, ASH_PRIMARY)).toBe(0);
  });
});

describe('who could see a child', () => {
  it('agrees with what each user sees as app_user, for every user with a grant in the organisation', async () => {
    // A live support grant, an expired one, and a teacher: who must match observation exactly.
    await grant('trustctl_test_op2', ['--site', 'oak-primary', '--user', 'pat.support@platform.example.com', '--role', 'senco', '--for', '1h']);
    const child = (await db.admin.query(
      `select c.child_id from group_memberships c where c.org_id = $1 and c.site_id = $2 and c.child_id is not null
       and exists (select 1 from guardianships g where g.org_id = c.org_id and g.child_id = c.child_id) order by c.child_id limit 1`,
      [OAK, OAK_PRIMARY],
    )).rows[0].child_id as string;
    const r = await cli('trustctl_test_op', ['access', 'who', '--org', 'oak-trust', '--site', 'oak-primary', '--child', child]);
    expect(r.code).toBe(0);
    const listed = new Set((JSON.parse(r.stdout).users as Array<{ user: { orgId: string; id: string } }>).map((u) => `${u.user.orgId}/${u.user.id}`));
    const candidates = await db.admin.query(`select distinct user_org_id, user_id from role_assignments where org_id = $1`, [OAK]);
    expect(candidates.rows.length).toBeGreaterThan(20);
    const seeing = new Set<string>();
    for (const u of candidates.rows) {
      const n = await db.inTransaction('trustctl_test_app', { 'app.user_org_id': u.user_org_id, 'app.user_id': u.user_id }, async (c) =>
        Number((await c.query(`select count(*) as n from children where org_id = $1 and id = $2`, [OAK, child])).rows[0].n),
      );
      if (n > 0) seeing.add(`${u.user_org_id}/${u.user_id}`);
    }
    expect([...listed].sort()).toEqual([...seeing].sort());
    // Not vacuous: a guardian, a teacher, whole-site staff and the support grant are among them.
    const roles = new Set((JSON.parse(r.stdout).users as Array<{ role: string }>).map((u) => u.role));
    for (const role of ['guardian', 'teacher', 'senco', 'site_admin', 'org_admin']) expect(roles).toContain(role);
    expect(listed).toContain(`${PLATFORM}/${PAT}`);
  });
});

describe('operators who could see an organisation', () => {
  it('are the sessions that covered it, never one over another organisation only', async () => {
    // Another operator's open sessions, one over each organisation alone, with words the other organisation's operators must not read.
    for (const [reason, ticket, org] of [['oak only: register fix', 'OAK-7', 'oak-trust'], ['acorns only: nursery register fix', 'ACORN-9', 'little-acorns']]) {
      await db.withClient('trustctl_test_op2', (c) =>
        c.query(`select app.begin_operator_session($1, $2, array[$3], false, 'psql', 'x', 'x')`, [reason, ticket, org]));
    }
    const tickets = async (org: string, site: string) => {
      const r = await cli('trustctl_test_op', ['access', 'who', '--org', org, '--site', site]);
      expect(r.code, r.stderr).toBe(0);
      const ops = JSON.parse(r.stdout).operators as Array<{ dbUser: string; reason: string; ticket: string | null }>;
      return ops.filter((o) => o.dbUser === 'trustctl_test_op2' && ['OAK-7', 'ACORN-9'].includes(o.ticket ?? '')).map((o) => [o.ticket, o.reason]);
    };
    expect(await tickets('oak-trust', 'oak-primary')).toEqual([['OAK-7', 'oak only: register fix']]);
    expect(await tickets('little-acorns', 'little-acorns-nursery')).toEqual([['ACORN-9', 'acorns only: nursery register fix']]);
  });
});

describe('a user is an organisation and an id', () => {
  it('a user of another organisation with a support person’s id gets none of their access', async () => {
    await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', PAT, '--role', 'site_admin', '--for', '1h']);
    expect(await childrenSeen(PLATFORM, PAT, OAK, ASH_PRIMARY)).toBeGreaterThan(0);
    // A site admin could create a user with an id they saw in role_assignments at their site.
    await db.admin.query(`insert into users (org_id, site_id, id, kind, email, full_name) values ($1, $2, $3, 'staff', 'copycat@oak.example', 'Copy Cat')`, [OAK, OAK_PRIMARY, PAT]);
    expect(await childrenSeen(OAK, PAT, OAK, ASH_PRIMARY)).toBe(0);
    const ownRows = await db.inTransaction('trustctl_test_app', { 'app.user_org_id': OAK, 'app.user_id': PAT }, async (c) =>
      (await c.query(`select count(*)::int as n from role_assignments where user_id = $1`, [PAT])).rows[0].n,
    );
    expect(ownRows).toBe(0);
    // Without app.user_org_id nobody has any role.
    const noOrg = await db.withClient('trustctl_test_app', async (c) => {
      await c.query('begin');
      await c.query(`select set_config('app.user_id', $1, true)`, [PAT]);
      const n = (await c.query(`select count(*)::int as n from children`)).rows[0].n;
      await c.query('rollback');
      return n;
    });
    expect(noOrg).toBe(0);
  });
});

describe('standing roles and access policies', () => {
  it('grants, lists and revokes a standing role, and refuses guardian roles and standing support roles', async () => {
    const user = 'orla.morgan.1@oak-primary.example.org';
    const g = await cli('trustctl_test_op', ['--reason', 'Covering Year 3', 'roles', 'grant', '--org', 'oak-trust', '--site', 'ash-primary', '--user', user, '--role', 'teacher']);
    expect(g.code).toBe(0);
    const granted = JSON.parse(g.stdout);
    expect(granted).toMatchObject({ kind: 'role', state: 'active', expiresAt: null });
    const listed = async (args: string[]) => (JSON.parse((await cli('trustctl_test_op', ['roles', 'list', '--org', 'oak-trust', '--user', user, ...args])).stdout) as Array<{ id: string }>).map((x) => x.id);
    expect(await listed([])).toContain(granted.id);
    expect((await cli('trustctl_test_op', ['--reason', 'Cover ended', 'roles', 'revoke', granted.id, '--org', 'oak-trust'])).code).toBe(0);
    expect(await listed([])).not.toContain(granted.id);
    expect(await listed(['--all'])).toContain(granted.id);
    const guardian = await cli('trustctl_test_op', ['--reason', 'x', 'roles', 'grant', '--org', 'oak-trust', '--site', 'ash-primary', '--user', user, '--role', 'guardian']);
    expect(guardian.code).toBe(2);
    const support = await cli('trustctl_test_op', ['--reason', 'x', 'roles', 'grant', '--org', 'oak-trust', '--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'teacher']);
    expect(support.code).toBe(2);
    expect(support.stderr).toMatch(/only be given time-boxed access/);
  });

  it('a policy change takes effect for the next grant, and bad policies are refused', async () => {
    const set = (args: string[]) => cli('trustctl_test_op', ['--reason', 'Tighter support access', 'access', 'policy', 'set', '--org', 'oak-trust', ...args]);
    const r = await set(['--role', 'office', '--max-duration', '30m']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ role: 'office', maxDurationSeconds: 1800, sensitive: false });
    expect((await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'office', '--for', '1h'])).code).toBe(2);
    expect((await grant('trustctl_test_op', ['--site', 'ash-primary', '--user', 'pat.support@platform.example.com', '--role', 'office', '--for', '20m'])).code).toBe(0);
    expect((await set(['--role', 'office', '--ticket-pattern', '(['])).code).toBe(2);
    expect((await set(['--role', 'safeguarding_lead', '--no-sensitive'])).code).toBe(2);
    expect((await set(['--role', 'office', '--max-duration', '200d'])).code).toBe(2);
    const events = await db.admin.query(`select count(*)::int as n from audit_events where action = 'access_policies.update' and org_id = $1 and target_id = 'office'`, [OAK]);
    expect(events.rows[0].n).toBe(1);
  });
});
