// Hostile files (issue 16). Outputs go to folders other people can write to:
// a symlink or a pre-created world-writable file planted at an output path,
// or at a temp name trustctl could be expected to use, must never be written
// through or reused. Every output is a new regular file, mode 0600 (folders
// 0700), and the symlink's target keeps its bytes. And a bundle handed to
// `dsar verify` may be a zip bomb: it fails with exit 3 and one line, fast and
// in little memory.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { strykerChild } from '../support/stryker-bridge.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK } from '../support/demo-ids.js';
import { deflatedZeros, stored, zipOf, type CraftedEntry } from '../support/zip-craft.js';

const BIN = fileURLToPath(new URL('../../bin/trustctl.js', import.meta.url));
const VICTIM_BYTES = 'root-only: do not overwrite\n';

let work: string;
let victim: string;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function expectVictimUntouched(): Promise<void> {
  expect(await readFile(victim, 'utf8')).toBe(VICTIM_BYTES);
  expect((await lstat(victim)).mode & 0o777).toBe(0o644);
}

async function expectPrivateFile(path: string): Promise<void> {
  const info = await lstat(path);
  expect({ path, file: info.isFile(), mode: (info.mode & 0o777).toString(8) }).toEqual({ path, file: true, mode: '600' });
}

async function expectPrivateDir(path: string): Promise<void> {
  const info = await lstat(path);
  expect({ path, dir: info.isDirectory(), mode: (info.mode & 0o777).toString(8) }).toEqual({ path, dir: true, mode: '700' });
}

/** A planted symlink is left as it was: still a link to the victim. */
async function expectStillPlanted(path: string): Promise<void> {
  expect((await lstat(path)).isSymbolicLink()).toBe(true);
  expect(await readlink(path)).toBe(victim);
}

async function plantedFile(path: string): Promise<void> {
  await writeFile(path, 'planted by another user\n');
  await chmod(path, 0o666);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'trustctl-hostile-files-'));
  victim = join(work, 'victim.txt');
  await writeFile(victim, VICTIM_BYTES);
  await chmod(victim, 0o644);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('output files in a folder someone else can write to', () => {
  let db: TestDatabase;
  let opUrl: string;
  const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);
  beforeAll(async () => {
    db = await createTestDatabase();
    opUrl = db.url('trustctl_test_op');
    expect((await cli(['audit', 'seal', '--org', 'oak-trust'])).code).toBe(0);
  });
  afterAll(() => db?.drop());

  it('audit export neither writes through a planted symlink nor keeps a planted 0666 file', async () => {
    const dir = await mkdtemp(join(work, 'audit-'));
    const out = join(dir, 'trail.csv');
    await symlink(victim, join(dir, '.trail.csv.partial'));
    await symlink(victim, out);
    await plantedFile(`${out}.manifest.json`);
    const r = await cli(['audit', 'export', '--org', 'oak-trust', '--action', 'audit.*', '--out', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expectVictimUntouched();
    await expectPrivateFile(out);
    await expectPrivateFile(`${out}.manifest.json`);
    const result = JSON.parse(r.stdout);
    expect(result.file.sha256).toBe(sha256(await readFile(out)));
    expect(JSON.parse(await readFile(`${out}.manifest.json`, 'utf8')).file.sha256).toBe(result.file.sha256);
    await expectStillPlanted(join(dir, '.trail.csv.partial'));
    expect((await readdir(dir)).sort()).toEqual(['.trail.csv.partial', 'trail.csv', 'trail.csv.manifest.json']);
  });

  it('audit checkpoint export replaces a symlink at --out instead of writing through it', async () => {
    const dir = await mkdtemp(join(work, 'checkpoints-'));
    const out = join(dir, 'checkpoints.jsonl');
    await symlink(victim, out);
    await symlink(victim, join(dir, '.checkpoints.jsonl.partial'));
    const r = await cli(['audit', 'checkpoint', 'export', '--org', 'oak-trust', '--out', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expectVictimUntouched();
    await expectPrivateFile(out);
    expect(JSON.parse(r.stdout).count).toBeGreaterThan(0);
    expect((await readFile(out, 'utf8')).split('\n').filter(Boolean).length).toBe(JSON.parse(r.stdout).count);
  });

  it('audit keygen never writes a key through a symlink, and both keys are 0600', async () => {
    const dir = await mkdtemp(join(work, 'keys-'));
    await symlink(victim, join(dir, 'a.key'));
    const refused = await cli(['audit', 'keygen', '--out', join(dir, 'a')]);
    expect(refused.code).toBe(2);
    await expectVictimUntouched();
    await expectStillPlanted(join(dir, 'a.key'));

    await symlink(victim, join(dir, 'b.pub'));
    await plantedFile(join(dir, '.b.key.partial'));
    const r = await cli(['audit', 'keygen', '--out', join(dir, 'b')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expectVictimUntouched();
    await expectPrivateFile(join(dir, 'b.key'));
    await expectPrivateFile(join(dir, 'b.pub'));
    expect(await readFile(join(dir, 'b.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await readFile(join(dir, 'b.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  });

  it('retention archive export writes a 0700 folder of 0600 files, past symlinks planted at its temp names', async () => {
    await db.admin.query(`delete from retention_policies`);
    await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action)
      values ($1, null, 'attendance', '22 months', 'session_date', 'archive')`, [OAK]);
    const sweep = await cli(['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--json']);
    expect(sweep.stderr).toBe('');
    expect(sweep.code).toBe(0);

    const out = await mkdtemp(join(work, 'archive-'));
    // The folder's name is the time to the second: plant its old .partial name for the next minute.
    const planted: string[] = [];
    const now = Date.now();
    for (let s = 0; s < 60; s++) {
      const stamp = new Date(now + s * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const name = `archive-oak-trust-${stamp}.partial`;
      await symlink(work, join(out, name));
      planted.push(name);
    }
    const before = (await readdir(work)).sort();
    const r = await cli(['retention', 'archive', 'export', '--org', 'oak-trust', '--out', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.files.length).toBeGreaterThan(0);
    expect((await readdir(work)).sort()).toEqual(before);
    await expectVictimUntouched();
    await expectPrivateDir(res.dir);
    for (const name of ['manifest.json', ...res.files.map((f: { name: string }) => f.name)]) await expectPrivateFile(join(res.dir, name));
    expect((await readdir(out)).sort()).toEqual([...planted, res.dir.split('/').pop()].sort());
  });

  it('dsar export makes its folder 0700, and replaces symlinks at the bundle and DPO record paths', async () => {
    const child = (await db.admin.query(`select id from children where org_id = $1 order by id limit 1`, [OAK])).rows[0].id;
    const received = new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 10);
    const open = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', child, '--request', 'HOSTILE-1', '--received', received]);
    expect(open.code, open.stderr).toBe(0);
    const out = join(await mkdtemp(join(work, 'dsar-')), 'new-folder');
    const exportTo = (extra: string[] = []) =>
      cli(['dsar', 'export', '--org', 'oak-trust', '--subject', child, '--request', 'HOSTILE-1', '--out', out,
        '--media-dir', inject('mediaDir'), '--json', ...extra]);
    const first = await exportTo();
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    await expectPrivateDir(out);
    await expectPrivateFile(join(out, 'HOSTILE-1.zip'));
    await expectPrivateFile(join(out, 'HOSTILE-1.dpo-record.json'));

    await rm(join(out, 'HOSTILE-1.zip'));
    await rm(join(out, 'HOSTILE-1.dpo-record.json'));
    await symlink(victim, join(out, 'HOSTILE-1.zip'));
    await symlink(victim, join(out, 'HOSTILE-1.dpo-record.json'));
    const second = await exportTo(['--force']);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    await expectVictimUntouched();
    await expectPrivateFile(join(out, 'HOSTILE-1.zip'));
    await expectPrivateFile(join(out, 'HOSTILE-1.dpo-record.json'));
    expect(sha256(await readFile(join(out, 'HOSTILE-1.zip')))).toBe(JSON.parse(second.stdout).sha256);
  });
});

// ---- zip bombs -------------------------------------------------------------

/** A bundle whose manifest is true for README.txt and index.html as given. */
function bundleEntries(readme: Buffer | string, declaredReadme?: Buffer | string): CraftedEntry[] {
  const index = '<!doctype html><title>bundle</title>\n';
  const listed = Buffer.from(declaredReadme ?? readme);
  const manifest = JSON.stringify({
    format: 'trustctl-dsar-bundle/1',
    request: { reference: 'BOMB-1' },
    files: [
      { path: 'README.txt', bytes: listed.length, sha256: sha256(listed) },
      { path: 'index.html', bytes: Buffer.byteLength(index), sha256: sha256(index) },
    ],
  });
  return [stored('manifest.json', manifest), stored('index.html', index)];
}

/** Runs `dsar verify --json` under /usr/bin/time when there is one; peak RSS in KiB, or null. */
function verifyMeasured(zip: string): Promise<{ code: number | null; stdout: string; stderr: string; maxRssKiB: number | null; ms: number }> {
  const started = Date.now();
  const timed = existsSync('/usr/bin/time');
  const stryker = strykerChild();
  const args = [...stryker.nodeArgs, BIN, 'dsar', 'verify', zip, '--json'];
  const env = { ...process.env, ...stryker.env };
  const child = timed
    ? spawn('/usr/bin/time', ['-f', 'maxrss_kib=%M', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      stryker.collect();
      const m = /maxrss_kib=(\d+)\s*$/.exec(stderr);
      resolve({
        code,
        stdout,
        stderr: stderr.replace(/(Command exited with non-zero status \d+\n)?maxrss_kib=\d+\s*$/, ''),
        maxRssKiB: m ? Number(m[1]) : null,
        ms: Date.now() - started,
      });
    });
  });
}

describe('dsar verify of a zip bomb', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(work, 'bombs');
    await mkdir(dir);
  });

  it('a manifest.sig that inflates to 1 GiB: exit 3, one line, in little memory', async () => {
    const readme = 'Your data.\n';
    const zip = join(dir, 'sig-bomb.zip');
    await writeFile(zip, zipOf([...bundleEntries(readme), stored('README.txt', readme), await deflatedZeros('manifest.sig', 1024)]));
    const r = await verifyMeasured(zip);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.problems).toEqual([expect.stringMatching(/^manifest\.sig: larger than any signature \(4096 bytes\); reading stopped$/)]);
    if (r.maxRssKiB !== null) expect(r.maxRssKiB).toBeLessThan(256 * 1024);
    expect(r.ms).toBeLessThan(15_000);
  });

  it('a data entry that inflates to 3 GiB where the manifest says 11 bytes: reading stops there, one line', async () => {
    const zip = join(dir, 'data-bomb.zip');
    await writeFile(zip, zipOf([...bundleEntries('Your data.\n'), await deflatedZeros('README.txt', 3 * 1024)]));
    const r = await verifyMeasured(zip);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.problems).toEqual(['README.txt: more than the 11 bytes manifest.json lists; reading stopped']);
    if (r.maxRssKiB !== null) expect(r.maxRssKiB).toBeLessThan(256 * 1024);
    // Reading 3 GiB of zeros and hashing it takes seconds even on a fast machine.
    expect(r.ms).toBeLessThan(5_000);
  });
});
