// The bundle's index.html is what a parent opens. Rendered in a real
// browser (headless Chromium, Debian's `chromium`): hostile names and notes
// show as text, no script runs, nothing is fetched, and it prints. The
// screenshot and PDF stay in test-output/ for a person to look at (a CI
// artifact).
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';
import { readZip } from '../support/zip.js';

const CHROMIUM = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version']).status === 0);
const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const CHILD = demoId('child:oak-primary:6');
const HOSTILE_NAME = `<img src=x onerror="document.title='pwned'">Ava<script>document.title='pwned'</script>`;
const HOSTILE_NOTE = `<a href="https://evil.example/steal">click</a><iframe src="https://evil.example/"></iframe>\u202eevil`;

let db: TestDatabase;
let work: string;

beforeAll(async () => {
  db = await createTestDatabase();
  work = await mkdtemp(join(tmpdir(), 'trustctl-report-'));
  await cp(inject('mediaDir'), join(work, 'media'), { recursive: true });
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

function chromium(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
    '--host-resolver-rules=MAP * ~NOTFOUND', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

describe('the report in a real browser', () => {
  it.skipIf(!CHROMIUM && !process.env.TRUSTCTL_REQUIRE_TOOLS)('shows hostile names and notes as text, runs no script, fetches nothing, and prints', async () => {
    expect(CHROMIUM, 'chromium is needed: apt-get install chromium').toBeDefined();
    await db.admin.query(`update children set preferred_name = $3 where org_id = $1 and id = $2`, [OAK, CHILD, HOSTILE_NAME]);
    await db.admin.query(`insert into notes (org_id, site_id, child_id, kind, body) values ($1, $2, $3, 'general', $4)`, [OAK, OAK_PRIMARY, CHILD, HOSTILE_NOTE]);
    const op = db.url('trustctl_test_op');
    expect((await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-BROWSER-1'])).code).toBe(0);
    const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-BROWSER-1',
      '--out', join(work, 'out'), '--media-dir', join(work, 'media')]);
    expect(r.code, r.stderr).toBe(0);
    const html = (await readZip(JSON.parse(r.stdout).path as string)).get('index.html')!.toString('utf8');

    // Static: a policy that forbids every fetch and script, and no live element from the data.
    expect(html).toContain(`http-equiv="Content-Security-Policy" content="default-src 'none'`);
    expect(html).not.toMatch(/<(script|iframe|img|object|embed|link|base|form)\b/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(?!#)[a-z]+:/i);

    const page = join(work, 'index.html');
    await writeFile(page, html);
    // After load: the title is the report's, the hostile markup is text.
    const dom = chromium(['--virtual-time-budget=2000', '--dump-dom', `file://${page}`]);
    expect(dom.status, dom.stderr).toBe(0);
    expect(dom.stdout).toMatch(/<title>Information held about /);
    expect(dom.stdout).not.toContain('pwned</title>');
    expect(dom.stdout).toContain('&lt;script&gt;document.title=');
    expect(dom.stdout).not.toMatch(/<(img|iframe|script)\b/i);
    // A right-to-left override shows as an escape, not as reversed text.
    expect(html).not.toContain('\u202e');
    expect(dom.stdout).toContain('\\u202eevil');

    // A person looks at it: a screenshot and a printout, kept for CI.
    await mkdir(OUTPUT, { recursive: true });
    const png = join(OUTPUT, 'dsar-report.png');
    const pdf = join(OUTPUT, 'dsar-report.pdf');
    expect(chromium(['--window-size=1200,2400', `--screenshot=${png}`, `file://${page}`]).status).toBe(0);
    expect(chromium([`--print-to-pdf=${pdf}`, '--no-pdf-header-footer', `file://${page}`]).status).toBe(0);
    const shot = await readFile(png);
    expect(shot.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(shot.length).toBeGreaterThan(20_000);
    const printed = await readFile(pdf);
    expect(printed.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(printed.length).toBeGreaterThan(10_000);
  }, 180_000);
});
