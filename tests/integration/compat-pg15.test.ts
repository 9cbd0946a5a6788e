// trustctl against PostgreSQL 15, the oldest server it supports (the rest of
// the suite runs on the embedded PostgreSQL 18): its own cluster from
// Debian's postgresql-15 binaries, migrated and seeded with trustctl, then
// the doctor (clean, then with a defect), an audit seal and verify, and a
// DSAR export. Skipped without the binaries, except in CI
// (TRUSTCTL_REQUIRE_TOOLS=1, .ci/run installs them).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.js';
import { runCli } from '../support/cli.js';

const BIN = '/usr/lib/postgresql/15/bin';
const available = existsSync(join(BIN, 'postgres'));
const required = Boolean(process.env.TRUSTCTL_REQUIRE_TOOLS);

/** Runs a PostgreSQL tool; as root, as the postgres system user (initdb refuses root). */
function pgTool(tool: string, args: string[]): void {
  const asRoot = userInfo().uid === 0;
  const r = asRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', join(BIN, tool), ...args], { encoding: 'utf8' })
    : spawnSync(join(BIN, tool), args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.error ?? ''}${r.stdout}${r.stderr}`);
}

describe.skipIf(!available && !required)('PostgreSQL 15', () => {
  let work: string;
  let port: number;
  let data: string;
  const admin = () => `postgres://postgres@127.0.0.1:${port}/trustctl`;
  const operator = () => `postgres://compat_op:compat-op-password@127.0.0.1:${port}/trustctl`;

  beforeAll(async () => {
    if (!available) throw new Error(`PostgreSQL 15 server binaries are missing (${BIN}): apt-get install postgresql-15`);
    work = await mkdtemp(join(tmpdir(), 'trustctl-pg15-'));
    await chmod(work, 0o777);
    data = join(work, 'data');
    port = await freePort();
    pgTool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
    pgTool('pg_ctl', ['-D', data, '-w', '-l', join(work, 'log'), '-o', `-p ${port} -k ${work} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('create database trustctl');
    await c.end();
    for (const args of [['db', 'migrate'], ['db', 'seed', '--demo', '--media-dir', join(work, 'media')]]) {
      const res = await runCli(['--database-url', admin(), ...args]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
    }
    const a = new pg.Client(admin());
    await a.connect();
    await a.query(`create role compat_op login password 'compat-op-password' in role trustctl_operator`);
    await a.end();
  }, 180_000);

  afterAll(async () => {
    if (data && existsSync(data)) pgTool('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs the migrations, and the doctor finds the reference schema clean and a defect', async () => {
    const clean = await runCli(['--database-url', operator(), '--json', 'doctor']);
    expect(clean.code).toBe(0);
    const report = JSON.parse(clean.stdout);
    expect(report.serverVersion).toMatch(/^15\./);
    expect(report.summary).toMatchObject({ error: 0, warn: 0 });
    // Every info finding is an exception accepted in the catalog, or tables the probe had nothing to aim at.
    expect(report.findings.every((f: { problem: string; code: string }) => f.problem.includes('— accepted (') || f.code === 'probe-skipped')).toBe(true);
    expect(report.probe.crossed).toBe(0);

    const a = new pg.Client(admin());
    await a.connect();
    await a.query(`alter policy children_app_select on children using (org_id = (select current_setting('app.org_id', true))::uuid)`);
    await a.query(`alter policy notes_app_select on notes using (org_id is not null)`);
    await a.end();
    const broken = await runCli(['--database-url', operator(), '--json', 'doctor']);
    expect(broken.code).toBe(3);
    const errors = JSON.parse(broken.stdout).findings.filter((f: { severity: string }) => f.severity === 'error');
    expect([...new Set(errors.map((f: { code: string; object: string }) => `${f.code} ${f.object}`))]).toEqual([
      'probe-visible-rows table public.notes',
      'setting-without-nullif policy children_app_select on public.children',
    ]);
  });

  it('seals and verifies the audit trail, and exports a DSAR bundle that verifies', async () => {
    const seal = await runCli(['--database-url', operator(), '--reason', 'compat', 'audit', 'seal']);
    expect(seal.code).toBe(0);
    const verify = await runCli(['--database-url', operator(), '--reason', 'compat', 'audit', 'verify']);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^OK: /);
    const a = new pg.Client(admin());
    await a.connect();
    const subject = (await a.query(`select subject_id from dsar_requests where reference = 'DSAR-2026-001'`)).rows[0].subject_id;
    await a.end();
    const out = join(work, 'bundles');
    const exp = await runCli([
      '--database-url', operator(), '--reason', 'compat', 'dsar', 'export',
      '--org', 'oak-trust', '--subject', subject, '--request', 'DSAR-2026-001', '--out', out, '--media-dir', join(work, 'media'),
    ]);
    expect(exp.stderr).not.toMatch(/error/i);
    expect(exp.code).toBe(0);
    const { readdirSync } = await import('node:fs');
    const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
    expect(zips).toHaveLength(1);
    const check = await runCli(['dsar', 'verify', join(out, zips[0]!)]);
    expect(check.code).toBe(0);
  });
});
