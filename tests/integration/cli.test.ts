// The built binary, end to end: exit codes, one-line errors, and that a
// refused command changes nothing.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let opUrl: string;
beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
});
afterAll(() => db?.drop());

const sessions = async () => Number((await db.admin.query('select count(*) from operator_sessions')).rows[0].count);
const oneLine = (s: string) => s.trim().split('\n').length === 1;

describe('help', () => {
  it('lists the commands that exist, exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['db', 'operator', 'org', 'dsar', 'audit', 'session', 'demo']) expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 done, 1 failed, 2 refused');
    const db = await runCli(['db', '--help']);
    expect(db.code).toBe(0);
    for (const verb of ['migrate', 'status', 'seed']) expect(db.stdout).toMatch(new RegExp(`^  ${verb}\\b`, 'm'));
  });
});

describe('bad input: one line on stderr, exit 2, nothing changed', () => {
  it.each([
    [['no-such-command'], /unknown command/],
    [['org', 'list', '--bogus'], /unknown option '--bogus'/],
    [['org', 'show', 'Not A Slug', '--reason', 'x'], /not a valid organisation slug/],
    [['session', 'show', '1234'], /not a valid operator session id/],
    [['db', 'seed'], /Pass --demo/],
    [['org', 'list', '--log-level', 'loud'], /--log-level must be one of/],
  ])('%j', async (args, message) => {
    const before = await sessions();
    const r = await runCli(args as string[], { env: { DATABASE_URL: opUrl } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stdout).toBe('');
    expect(await sessions()).toBe(before);
  });

  it('refuses a command that needs a reason when there is none and no TTY', async () => {
    const before = await sessions();
    const r = await runCli(['org', 'show', 'oak-trust'], { env: { DATABASE_URL: opUrl } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a reason is required/);
    expect(oneLine(r.stderr)).toBe(true);
    expect(await sessions()).toBe(before);
  });

  it('refuses an unknown organisation without opening a session', async () => {
    const before = await sessions();
    const r = await runCli(['org', 'show', 'no-such-org', '--reason', 'x'], { env: { DATABASE_URL: opUrl } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('trustctl: unknown organisation: no-such-org (List organisations with: trustctl org list)');
    expect(await sessions()).toBe(before);
  });

  it('refuses to run as a superuser', async () => {
    const r = await runCli(['org', 'list'], { env: { DATABASE_URL: db.url('admin') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to run as superuser "postgres"/);
    expect(oneLine(r.stderr)).toBe(true);
  });

  it('refuses a role that is not an operator', async () => {
    const r = await runCli(['org', 'list'], { env: { DATABASE_URL: db.url('trustctl_test_app') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a member of trustctl_operator/);
  });

  it('refuses a remote database without verified TLS, never printing the password', async () => {
    const r = await runCli(['org', 'list', '--database-url', 'postgres://alice:hunter2secret@db.example.com/x?sslmode=require']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sslmode=require is not allowed for remote host db.example.com/);
    expect(r.stderr).not.toContain('hunter2secret');
  });
});

describe('failures', () => {
  it('an unreachable database: one line, exit 1, no stack trace, no password', async () => {
    const r = await runCli(['org', 'list'], { env: { DATABASE_URL: 'postgres://op:pw-not-shown@127.0.0.1:1/x' } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'trustctl: cannot connect to op@127.0.0.1:1/x: connection refused (Check --database-url / DATABASE_URL, or omit both to use the embedded database)',
    );
  });

  it('--verbose adds the stack', async () => {
    const r = await runCli(['org', 'list', '--verbose'], { env: { DATABASE_URL: 'postgres://op@127.0.0.1:1/x' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('working commands', () => {
  it('org show opens a session with the reason and ticket, prints JSON, and records success', async () => {
    const r = await runCli(['org', 'show', 'oak-trust', '--reason', 'checking counts', '--ticket', 'T-77', '--json'], {
      env: { DATABASE_URL: opUrl },
    });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.slug).toBe('oak-trust');
    expect(out.sites.map((s: { slug: string }) => s.slug)).toEqual(['ash-primary', 'elm-academy', 'oak-primary']);
    const truth = await db.admin.query(`select count(*)::int as n from children c join sites s using (org_id, site_id) where s.slug = 'oak-primary'`);
    expect(out.sites[2].children).toBe(truth.rows[0].n);
    const row = (await db.admin.query('select * from operator_sessions where id = $1', [out.operatorSessionId])).rows[0];
    expect(row).toMatchObject({ db_user: 'trustctl_test_op', reason: 'checking counts', ticket: 'T-77', outcome: 'success' });
    expect(row.command).toBe('trustctl org show oak-trust --reason checking counts --ticket T-77 --json');
    expect(row.ended_at).not.toBeNull();
  });

  it('operator add refuses an existing non-operator role without --adopt, and reserved roles even with it (exit 2, role unchanged)', async () => {
    const suffix = Date.now().toString(36);
    const webapp = `webapp_${suffix}`;
    const plain = `plain_${suffix}`;
    await db.admin.query(`create role ${webapp} login password 'the-apps-own-password' in role app_user`);
    await db.admin.query(`create role ${plain} login password 'a-plain-role-password'`);
    const snapshot = async (name: string) => (await db.admin.query(
      `select a.rolpassword, a.rolcanlogin, a.rolsuper, array(select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
         where m.member = a.oid order by 1)::text[] as groups from pg_authid a where a.rolname = $1`, [name])).rows[0];
    const add = (args: string[]) => runCli(['operator', 'add', ...args, '--password-stdin'], {
      env: { DATABASE_URL: db.url('admin') },
      input: 'an-operator-password\n',
    });
    try {
      for (const name of [webapp, 'trustctl_probe', 'app_user', 'trustctl_definer']) {
        const before = await snapshot(name);
        for (const args of [[name], [name, '--adopt']]) {
          const r = await add(args);
          expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
          expect(oneLine(r.stderr)).toBe(true);
          expect(await snapshot(name)).toEqual(before);
        }
      }
      expect((await snapshot(webapp)).groups).toEqual(['app_user']);

      const before = await snapshot(plain);
      const refused = await add([plain]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--adopt');
      expect(await snapshot(plain)).toEqual(before);
      const adopted = await add([plain, '--adopt']);
      expect(adopted.code, adopted.stderr).toBe(0);
      const after = await snapshot(plain);
      expect(after.groups).toEqual(['trustctl_operator']);
      expect(after.rolpassword).not.toBe(before.rolpassword);
      // Already an operator: a password reset needs no --adopt.
      const again = await add([plain]);
      expect(again.code, again.stderr).toBe(0);
    } finally {
      await db.admin.query(`drop role if exists ${webapp}`);
      await db.admin.query(`drop role if exists ${plain}`);
    }
  });

  it('operator add creates a plain operator role from --password-stdin, which can then work', async () => {
    const name = `op_${Date.now().toString(36)}`;
    const r = await runCli(['operator', 'add', name, '--password-stdin'], {
      env: { DATABASE_URL: db.url('admin') },
      input: 'a-long-enough-password\n',
    });
    expect(r.code).toBe(0);
    const role = (await db.admin.query(`select rolsuper, rolbypassrls, rolcanlogin, pg_has_role(oid, 'trustctl_operator', 'USAGE') as op from pg_roles where rolname = $1`, [name])).rows[0];
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: true, op: true });
    const url = `postgres://${name}:a-long-enough-password@127.0.0.1:${new URL(db.url('admin')).port}/${db.name}`;
    const list = await runCli(['org', 'list', '--json'], { env: { DATABASE_URL: url } });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((o: { slug: string }) => o.slug)).toEqual(['little-acorns', 'oak-trust', 'platform']);
    const short = await runCli(['operator', 'add', `${name}_b`, '--password-stdin'], { env: { DATABASE_URL: db.url('admin') }, input: 'short' });
    expect(short.code).toBe(2);
    const c = new pg.Client({ connectionString: db.url('admin') });
    await c.connect();
    try {
      expect((await c.query('select 1 from pg_roles where rolname = $1', [`${name}_b`])).rowCount).toBe(0);
      await c.query(`drop role ${name}`);
    } finally {
      await c.end();
    }
  });
});

describe('interruption', () => {
  it('Ctrl-C closes the operator session as interrupted and exits 130', async () => {
    // Hold a lock so the command is caught mid-work, inside its session.
    const locker = await db.connect('admin');
    await locker.query('begin');
    await locker.query('lock table children in access exclusive mode');
    const before = await sessions();
    try {
      const result = await runCli(['org', 'show', 'oak-trust', '--reason', 'will be interrupted'], {
        env: { DATABASE_URL: opUrl },
        onSpawn: (child) => {
          const poll = setInterval(async () => {
            if ((await sessions()) > before) {
              clearInterval(poll);
              child.kill('SIGINT');
            }
          }, 100);
        },
      });
      expect(result.code).toBe(130);
      expect(result.stderr).toMatch(/interrupted \(SIGINT\)/);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
    const row = (await db.admin.query(`select outcome, ended_at from operator_sessions where reason = 'will be interrupted'`)).rows;
    expect(row).toHaveLength(1);
    expect(row[0].outcome).toBe('interrupted');
    expect(row[0].ended_at).not.toBeNull();
  });
});

describe('demo', () => {
  it('runs end to end on a fresh embedded database, and a second run changes nothing', async () => {
    const home = await mkdtemp(join(tmpdir(), 'trustctl-demo-'));
    // Traversable by the postgres user (when root), so the cluster lives in home and goes with it.
    await chmod(home, 0o711);
    try {
      const first = await runCli(['demo'], { env: { TRUSTCTL_HOME: home } });
      expect(first.stderr).toMatch(/^Using the embedded PostgreSQL database in /);
      expect(first.stderr).toContain(join(home, 'pg'));
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/1\. Seeded the demo dataset/);
      expect(first.stdout).toMatch(/Without an operator session you see 0 children/);
      expect(first.stdout).toMatch(/little-acorns: 14 children there, 0 from any other organisation/);
      const second = await runCli(['demo', '--json'], { env: { TRUSTCTL_HOME: home } });
      expect(second.code).toBe(0);
      const out = JSON.parse(second.stdout);
      expect(out.seed.seeded).toBe(false);
      expect(out.tour.organisations.find((o: { slug: string }) => o.slug === 'oak-trust').children).toBe(78);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 240_000);

  it('refuses to run against a database URL', async () => {
    const r = await runCli(['demo'], { env: { DATABASE_URL: opUrl } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/only runs on the embedded database/);
  });
});
