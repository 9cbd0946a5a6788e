// A newcomer's first minutes (issue 17): the CLI works from a checkout in a
// private (0700) folder, as root too, where the postgres system user cannot
// reach node_modules: the binaries are then copied once to a root-owned,
// world-readable place keyed by version, and the one line says so.
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { copyCheckout } from '../support/checkout.js';

const asRoot = userInfo().uid === 0;

describe('a checkout in a private folder', () => {
  let secret: string;
  let system: string;
  let bin: string;

  beforeAll(async () => {
    secret = await mkdtemp(join(tmpdir(), 'trustctl-private-'));
    expect(statSync(secret).mode & 0o777).toBe(0o700);
    system = await mkdtemp(join(tmpdir(), 'trustctl-system-'));
    await chmod(system, 0o755);
    bin = await copyCheckout(join(secret, 'checkout'));
  }, 120_000);

  afterAll(async () => {
    await rm(secret, { recursive: true, force: true });
    await rm(system, { recursive: true, force: true });
  });

  it('runs the demo, as root from a copy of the binaries the postgres user can reach', async () => {
    const env = { TRUSTCTL_HOME: join(secret, 'home', '.local', 'state', 'trustctl'), TRUSTCTL_SYSTEM_DIR: system, PATH: '/usr/bin:/bin' };
    const first = await runCli(['demo'], { bin, env, cwd: join(secret, 'checkout') });
    expect(first.stderr.split('\n')[0]).toMatch(/^Using the embedded PostgreSQL database in /);
    expect(first.stderr + first.stdout.slice(-300)).not.toMatch(/trustctl:/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/little-acorns: 14 children there, 0 from any other organisation/);
    expect(first.stdout).toMatch(/Verified offline: \d+ files match its manifest/);
    expect(first.stdout).toMatch(/0 errors, 0 warnings/);
    // trustctl is not on this PATH: the next steps say npx, and how to install it.
    expect(first.stdout).toMatch(/^Next: npx trustctl doctor/m);
    expect(first.stdout).toContain('npm install -g .');
    const copy = join(system, 'postgresql-');
    if (asRoot) {
      // The cluster and the binaries live where the postgres user can reach them, and the line says both.
      expect(first.stderr).toContain(`${system}/`);
      expect(first.stderr).toContain(`run from ${copy}`);
      const installed = first.stderr.match(/run from (\S+?)\)/)![1]!;
      const info = statSync(join(installed, 'bin', 'postgres'));
      expect(info.uid).toBe(0);
      expect(info.mode & 0o777).toBe(0o755);
      expect(statSync(installed).mode & 0o777).toBe(0o755);
    } else {
      // As any other user nothing is copied and the cluster stays in the home.
      expect(first.stderr).not.toContain('run from');
      expect(first.stderr).toContain(join(secret, 'home'));
      expect(existsSync(system) && statSync(system).nlink).toBe(2);
    }
    // The next command reuses the cluster (and the copy).
    const list = await runCli(['--json', 'org', 'list'], { bin, env });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((o: { slug: string }) => o.slug)).toContain('oak-trust');
  }, 240_000);
});
