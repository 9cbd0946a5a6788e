// No stack trace, ever, without --verbose (issue 17 item 2): each kind of
// failure planted for real (an unexecutable PostgreSQL binary, a read-only
// output folder, a full disk, the server killed mid-command, a connection
// ended mid-stream) reaches the one error boundary and prints one line with
// the exit code of its class, and leaves nothing half-written behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosingCursor } from '../../src/db/cursor.js';
import { freePort } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { postgresServer, type PostgresServer } from '../../src/db/postgres-server.js';
import { pino } from 'pino';
import { BINARIES_PACKAGE, copyCheckout } from '../support/checkout.js';
import { runCli, type CliResult } from '../support/cli.js';
import { strykerChild } from '../support/stryker-bridge.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/wait.js';

const asRoot = userInfo().uid === 0;
const BIN = new URL('../../bin/trustctl.js', import.meta.url).pathname;

/** Exactly one line on stderr, in the boundary's form, and no stack frame. */
function expectOneLine(r: CliResult, code: number, pattern: RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^trustctl: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.code).toBe(code);
}

/**
 * A folder nobody may write in, root included: immutable (chattr +i) or a
 * read-only mount as root, mode 0555 otherwise. Returns the undo.
 */
async function readOnlyFolder(dir: string): Promise<() => void> {
  await mkdir(dir, { recursive: true });
  if (!asRoot) {
    await chmod(dir, 0o555);
    return () => spawnSync('chmod', ['755', dir]);
  }
  if (spawnSync('chattr', ['+i', dir]).status === 0) return () => spawnSync('chattr', ['-i', dir]);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir]).status === 0) return () => spawnSync('umount', [dir]);
  throw new Error(`cannot make ${dir} read-only as root (no chattr +i, no mount)`);
}

let db: TestDatabase;
let work: string;
beforeAll(async () => {
  db = await createTestDatabase();
  work = await mkdtemp(join(tmpdir(), 'trustctl-errors-'));
  await chmod(work, 0o755);
});
afterAll(async () => {
  await db.drop();
  await rm(work, { recursive: true, force: true });
});

const sessions = async (): Promise<number> => Number((await db.admin.query('select count(*) from operator_sessions')).rows[0].count);

describe('one line, whatever fails', () => {
  it('a PostgreSQL binary that cannot be run: one line naming it, exit 1', async () => {
    const checkout = join(work, 'spoiled');
    const bin = await copyCheckout(checkout);
    const binDir = join(checkout, 'node_modules', BINARIES_PACKAGE, 'native', 'bin');
    for (const tool of ['initdb', 'postgres']) await chmod(join(binDir, tool), 0o644);
    const home = join(work, 'spoiled-home');
    await mkdir(home, { mode: 0o711 });
    const system = join(work, 'spoiled-system');
    const r = await runCli(['org', 'list'], { bin, env: { TRUSTCTL_HOME: home, TRUSTCTL_SYSTEM_DIR: system } });
    expectOneLine(r, 1, /cannot run \S+\/initdb: permission denied/);
    expect(existsSync(join(home, 'pg', 'PG_VERSION'))).toBe(false);
  }, 120_000);

  it('a read-only output folder: refused before connecting, exit 2, nothing written, no session', async () => {
    const ro = join(work, 'read-only');
    const undo = await readOnlyFolder(ro);
    try {
      const before = await sessions();
      const audit = await runCli(['--database-url', db.url('trustctl_test_op'), 'audit', 'export', '--org', 'oak-trust', '--reason', 'test', '--out', join(ro, 'trail.csv')]);
      expectOneLine(audit, 2, /--out: cannot write in \S+: (permission denied|operation not permitted|read-only file system)/);
      const dsar = await runCli(['--database-url', db.url('trustctl_test_op'), 'dsar', 'export', '--org', 'oak-trust', '--subject', 'someone@example.org', '--request', 'DSAR-RO-1', '--out', join(ro, 'bundles')]);
      expectOneLine(dsar, 2, /--out: cannot write in \S+: (permission denied|operation not permitted|read-only file system)/);
      expect(await sessions()).toBe(before);
      expect(await readdir(ro)).toEqual([]);
    } finally {
      undo();
    }
  });

  it('a full disk (a file-size limit) mid-export: one line, exit 1, no partial file, the session closed as failed', async () => {
    const out = join(work, 'full');
    await mkdir(out);
    const args = ['--database-url', db.url('trustctl_test_op'), 'audit', 'export', '--org', 'oak-trust', '--reason', 'full disk', '--out', join(out, 'trail.csv')];
    // ulimit -f (in KiB): writes past 64 KiB fail with EFBIG, as a full disk fails them with ENOSPC.
    const r = await new Promise<CliResult>((resolve) => {
      const stryker = strykerChild();
      const child = spawn('bash', ['-c', 'ulimit -f 64; exec "$0" "$@"', process.execPath, ...stryker.nodeArgs, BIN, ...args], {
        env: { ...process.env, ...stryker.env, DATABASE_URL: undefined, CI: 'true', FORCE_COLOR: '0' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => {
        stryker.collect();
        resolve({ code, stdout, stderr });
      });
    });
    expectOneLine(r, 1, /EFBIG|file too large/);
    expect(await readdir(out)).toEqual([]);
    const s = await db.admin.query(`select outcome from operator_sessions where reason = 'full disk'`);
    expect(s.rows).toEqual([{ outcome: 'failure' }]);
  });

  it('a cursor whose connection the server ends mid-stream closes at once, with the read failing', async () => {
    const client = await db.connect('admin');
    const victim = await db.connect('admin');
    try {
      const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid;
      const cursor = victim.query(new ClosingCursor('select g from generate_series(1, 100000) g'));
      expect(await cursor.read(10)).toHaveLength(10);
      await client.query('select pg_terminate_backend($1)', [pid]);
      // The server's goodbye, or, when the socket is already closed as the read is sent, the write failing.
      await expect(cursor.read(10)).rejects.toThrow(/terminating connection|Connection terminated|EPIPE|ECONNRESET/);
      // pg-cursor's own close() would wait for an answer that never comes.
      const closed = await Promise.race([cursor.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 5000))]);
      expect(closed).toBe('closed');
    } finally {
      await client.end();
      await victim.end().catch(() => undefined);
    }
  });
});

describe('the server killed mid-command', () => {
  let server: PostgresServer;
  let port: number;
  let dataDir: string;
  const password = 'kill-test-admin';
  const admin = (): pg.ClientConfig => ({ host: '127.0.0.1', port, user: 'postgres', password, database: 'trustctl' });

  beforeAll(async () => {
    port = await freePort();
    dataDir = join(work, 'killed', 'pg');
    server = await postgresServer({ dataDir, port, superuser: 'postgres', password, settings: { fsync: 'off' } });
    await server.initialise();
    await server.start();
    const boot = new pg.Client({ ...admin(), database: 'postgres' });
    await boot.connect();
    await boot.query('create database trustctl');
    await boot.end();
    const c = new pg.Client(admin());
    await c.connect();
    await migrate(c, { logger: pino({ level: 'silent' }) });
    await c.query(`create role kill_op login password 'kill-op-password' in role trustctl_operator`);
    await c.query(`insert into organisations (slug, name, kind) values ('kill-org', 'Kill Org', 'trust')`);
    await c.end();
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('one line saying the connection was lost, exit 1', async () => {
    const locker = new pg.Client(admin());
    locker.on('error', () => undefined);
    await locker.connect();
    // The command waits on this lock (opening its operator session), so the kill lands mid-command.
    await locker.query('begin');
    await locker.query('lock table operator_sessions in access exclusive mode');
    const running = runCli(['--database-url', `postgres://kill_op:kill-op-password@127.0.0.1:${port}/trustctl`, 'audit', 'verify', '--org', 'kill-org', '--reason', 'killed']);
    let finished: CliResult | undefined;
    void running.then((r) => (finished = r));
    await waitFor('the command to wait on the lock (or end)', async () => {
      // pg_stat_activity is a snapshot per transaction: clear it to see the command arrive.
      await locker.query('select pg_stat_clear_snapshot()');
      const n = Number((await locker.query(`select count(*) from pg_stat_activity where usename = 'kill_op' and wait_event_type = 'Lock'`)).rows[0].count);
      return n > 0 || finished !== undefined;
    });
    expect(finished?.stderr).toBeUndefined();
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(postmaster, 'SIGKILL');
    const r = await running;
    expectOneLine(r, 1, /the connection to the database was lost/);
  }, 120_000);
});
