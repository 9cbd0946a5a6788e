// The bundle's index.html is what a parent opens. Rendered in a real
// browser (headless Chromium, Debian's `chromium`): hostile names and notes
// show as text, no script runs, nothing is fetched, and it prints; it opens
// with a summary and contents, long lists are summarised by term with every
// row in a closed list, and it is built to be read by assistive technology.
// The page, screenshot and PDF stay in test-output/ for a person to look at
// (a CI artifact).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
const needsChromium = !CHROMIUM && !process.env.TRUSTCTL_REQUIRE_TOOLS;

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

/** The demo child, with a hostile name and note, exported once; its report written to a file for the browser. */
let exported: Promise<{ files: Map<string, Buffer>; html: string; page: string }> | undefined;
function demoBundle(): Promise<{ files: Map<string, Buffer>; html: string; page: string }> {
  exported ??= (async () => {
    await db.admin.query(`update children set preferred_name = $3 where org_id = $1 and id = $2`, [OAK, CHILD, HOSTILE_NAME]);
    await db.admin.query(`insert into notes (org_id, site_id, child_id, kind, body) values ($1, $2, $3, 'general', $4)`, [OAK, OAK_PRIMARY, CHILD, HOSTILE_NOTE]);
    const op = db.url('trustctl_test_op');
    expect((await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-BROWSER-1'])).code).toBe(0);
    const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-BROWSER-1',
      '--out', join(work, 'out'), '--media-dir', join(work, 'media')]);
    expect(r.code, r.stderr).toBe(0);
    const files = await readZip(JSON.parse(r.stdout).path as string);
    const html = files.get('index.html')!.toString('utf8');
    const page = join(work, 'index.html');
    await writeFile(page, html);
    await mkdir(OUTPUT, { recursive: true });
    await writeFile(join(OUTPUT, 'dsar-report.html'), html);
    return { files, html, page };
  })();
  return exported;
}

/** The page as the browser built it, after load. */
function dumpDom(page: string): string {
  const dom = chromium(['--virtual-time-budget=2000', '--dump-dom', `file://${page}`]);
  expect(dom.status, dom.stderr).toBe(0);
  return dom.stdout;
}

/** Pages of a PDF Chromium wrote (its page objects are not compressed). */
function pdfPages(pdf: Buffer): number {
  return (pdf.toString('latin1').match(/\/Type\s*\/Page\b/g) ?? []).length;
}

const TERMS = [[9, 'Autumn', 'Sep–Dec'], [4, 'Summer', 'Apr–Aug'], [1, 'Spring', 'Jan–Mar']] as const;

/** The report's rule for terms, written again: autumn Sep–Dec, spring Jan–Mar, summer Apr–Aug. */
function termOf(date: string): string {
  const [name, months] = TERMS.find(([first]) => Number(date.slice(5, 7)) >= first)!.slice(1);
  return `${name} ${date.slice(0, 4)} (${months})`;
}

/**
 * The register by term, from the bundle's data file: each session (date and
 * am/pm) counted once, by the mark recorded last.
 */
function attendanceByTerm(rows: Array<{ id: string; session_date: string; session: string; status: string; recorded_at: string }>) {
  const sessions = new Map<string, typeof rows>();
  for (const r of rows) sessions.set(`${r.session_date}/${r.session}`, [...(sessions.get(`${r.session_date}/${r.session}`) ?? []), r]);
  const terms = new Map<string, Record<string, number>>();
  for (const marks of sessions.values()) {
    const latest = [...marks].sort((a, b) => Date.parse(a.recorded_at) - Date.parse(b.recorded_at) || (a.id < b.id ? -1 : 1)).at(-1)!;
    const term = termOf(latest.session_date);
    const t = terms.get(term) ?? { sessions: 0, present: 0, late: 0, authorised_absence: 0, unauthorised_absence: 0, closed: 0, corrected: 0 };
    t.sessions! += 1;
    t[latest.status] = (t[latest.status] ?? 0) + 1;
    if (marks.length > 1) t.corrected! += 1;
    terms.set(term, t);
  }
  const count = (n: number) => n.toLocaleString('en-GB');
  const line = (label: string, t: Record<string, number>) => {
    const open = t.sessions! - t.closed!;
    return [label, ...[t.sessions!, t.present!, t.late!, t.authorised_absence!, t.unauthorised_absence!, t.closed!].map(count),
      open === 0 ? '–' : `${(Math.round(((t.present! + t.late!) * 1000) / open) / 10).toFixed(1)}%`, count(t.corrected!)];
  };
  const total: Record<string, number> = {};
  for (const t of terms.values()) for (const [k, v] of Object.entries(t)) total[k] = (total[k] ?? 0) + v;
  return { terms: [...terms].map(([label, t]) => line(label, t)), total: line('All terms', total), sessions: sessions.size };
}

/** A table's rows as cell texts (th and td), from its HTML. */
function tableRows(table: string): string[][] {
  return [...table.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<t[hd]\b[^>]*>([\s\S]*?)<\/t[hd]>/g)].map((c) => c[1]!));
}

describe('the report in a real browser', () => {
  it.skipIf(needsChromium)('shows hostile names and notes as text, runs no script, fetches nothing, and prints', async () => {
    expect(CHROMIUM, 'chromium is needed: apt-get install chromium').toBeDefined();
    const { html, page } = await demoBundle();

    // Static: a policy that forbids every fetch and script, and no live element from the data.
    expect(html).toContain(`http-equiv="Content-Security-Policy" content="default-src 'none'`);
    expect(html).not.toMatch(/<(script|iframe|img|object|embed|link|base|form)\b/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(?!#)[a-z]+:/i);

    // After load: the title is the report's, the hostile markup is text.
    const dom = dumpDom(page);
    expect(dom).toMatch(/<title>Information held about /);
    expect(dom).not.toContain('pwned</title>');
    expect(dom).toContain('&lt;script&gt;document.title=');
    expect(dom).not.toMatch(/<(img|iframe|script)\b/i);
    // A right-to-left override shows as an escape, not as reversed text.
    expect(html).not.toContain('\u202e');
    expect(dom).toContain('\\u202eevil');

    // A person looks at it: a screenshot and a printout, kept for CI.
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

  it.skipIf(needsChromium)('opens with a summary and contents, summarises attendance by term with every row in a closed list, and reads in order', async () => {
    expect(CHROMIUM, 'chromium is needed: apt-get install chromium').toBeDefined();
    const { files, html, page } = await demoBundle();
    const dom = dumpDom(page);
    expect(dom).toMatch(/^<!DOCTYPE html>\s*<html lang="en-GB">/);

    // Headings: one h1, then levels that never skip one.
    const levels = [...dom.matchAll(/<h([1-6])\b/g)].map((m) => Number(m[1]));
    expect(levels[0]).toBe(1);
    expect(levels.filter((l) => l === 1)).toHaveLength(1);
    levels.forEach((l, i) => i > 0 && expect(l, `heading ${i + 1} is h${l} after h${levels[i - 1]}`).toBeLessThanOrEqual(levels[i - 1]! + 1));
    // The summary is the first section, the contents the second, both before any record.
    const h2 = [...dom.matchAll(/<h2 id="([^"]+)"/g)].map((m) => m[1]);
    expect(h2.slice(0, 2)).toEqual(['summary', 'contents']);
    const tables = JSON.parse(files.get('manifest.json')!.toString('utf8')).files
      .filter((f: { path: string }) => /^data\/.+\.json$/.test(f.path))
      .map((f: { path: string; rows: number }) => ({ table: f.path.slice('data/'.length, -'.json'.length), rows: f.rows }));
    expect(tables.length).toBeGreaterThan(3);
    const nav = dom.indexOf('<nav');
    const firstRecords = Math.min(...tables.map((t: { table: string }) => dom.indexOf(`<h2 id="${t.table}"`)).filter((i: number) => i >= 0));
    expect(nav).toBeGreaterThan(dom.indexOf('<h2 id="summary"'));
    expect(nav).toBeLessThan(firstRecords);
    expect(dom.slice(0, nav)).not.toContain('<details');
    // The summary counts each kind of record as the data files do; the contents link to every section.
    const summary = dom.slice(dom.indexOf('<h2 id="summary"'), nav);
    const contents = dom.slice(nav, dom.indexOf('</nav>'));
    // (A kind with none says so in a line; an empty archive only in its data files.)
    const none = /We hold no records of these kinds: ([^.<]*)\./.exec(summary)?.[1]?.split(', ') ?? [];
    for (const t of tables) {
      const row = tableRows(summary).find((r) => r[0]!.includes(`href="#${t.table}"`));
      const archive = t.table.startsWith('archive.');
      expect(row?.[1], t.table).toBe(t.rows === 0 ? undefined : t.rows.toLocaleString('en-GB'));
      expect(none.some((n) => t.table.replace(/_/g, ' ').toLowerCase() === n.toLowerCase()), t.table).toBe(t.rows === 0 && !archive);
      expect(contents.includes(`href="#${t.table}"`), t.table).toBe(t.rows > 0 || !archive);
    }
    expect(tables.some((t: { rows: number }) => t.rows === 0)).toBe(true);
    for (const [, id] of contents.matchAll(/href="#([^"]+)"/g)) expect(dom, `#${id}`).toContain(`id="${id}"`);
    // Rights and how to complain, early: in the summary.
    expect(summary).toContain('href="#complain"');
    expect(summary).toContain('0303 123 1113');

    // Attendance: a summary by term that the data file bears out, then every row in a closed list.
    const rows = JSON.parse(files.get('data/attendance_records.json')!.toString('utf8'));
    expect(rows.length).toBeGreaterThan(500);
    const start = dom.indexOf('<h2 id="attendance_records"');
    const section = dom.slice(start, dom.indexOf('</section>', start));
    const [before = '', inside = '', after = ''] = section.split(/<details>|<\/details>/);
    expect(section).not.toMatch(/<details[^>]* open/);
    expect(tableRows(inside).filter((r) => r.length > 0 && !inside.includes(`<th scope="col">${r[0]}`))).toHaveLength(rows.length);
    expect(before + after).not.toContain('<td>');
    const expected = attendanceByTerm(rows);
    expect(expected.terms.length).toBeGreaterThan(4);
    const byTerm = tableRows(before.slice(before.indexOf('<table'), before.indexOf('</table>'))).slice(1);
    expect(byTerm).toEqual([...expected.terms, expected.total]);
    expect(expected.total[1]).toBe(expected.sessions.toLocaleString('en-GB'));
    expect(Number(expected.total.at(-1)), 'the demo register has corrections').toBeGreaterThan(0);

    // Every table has a caption and its header cells say what they head.
    const allTables = [...dom.matchAll(/<table>([\s\S]*?)<\/table>/g)].map((m) => m[1]!);
    expect(allTables.length).toBeGreaterThan(tables.filter((t: { rows: number }) => t.rows > 0).length);
    for (const t of allTables) {
      expect(t).toMatch(/^\s*<caption>[^<]*\S/);
      expect(t).toMatch(/<thead><tr>(<th scope="col">[^<]+<\/th>)+<\/tr><\/thead>/);
    }
    expect(dom.match(/<th\b/g)!.length).toBe(dom.match(/<th scope="(col|row)"/g)!.length);

    // The one stylesheet is allowed by its hash, and nothing else inline is.
    const csp = /content="(default-src 'none';[^"]*)"/.exec(html)![1]!;
    expect(csp).not.toContain('unsafe-inline');
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(style).toMatch(/@media print\{[\s\S]*details:not\(\[open\]\)\{display:none\}/);

    // Printed, with the print stylesheet: a few pages, not one per forty register rows.
    const pdf = join(OUTPUT, 'dsar-report-print.pdf');
    expect(chromium([`--print-to-pdf=${pdf}`, '--no-pdf-header-footer', `file://${page}`]).status).toBe(0);
    const pages = pdfPages(await readFile(pdf));
    expect(pages).toBeGreaterThan(2);
    expect(pages).toBeLessThan(rows.length / 40);
  }, 180_000);
});
