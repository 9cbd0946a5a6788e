// DSAR export, verify and request tracking, end to end through the built
// binary, checked against the database independently of the data map: every
// uuid column of every table is searched for the subject's id
// (tests/support/subject-rows.ts).
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { pino } from 'pino';
import { withOperatorSession } from '../../src/db/operator-session.js';
import { withOperatorDb } from '../../src/db/with-db.js';
import { exportSubjectBundle } from '../../src/dsar/export.js';
import { VERSION } from '../../src/version.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, PLATFORM } from '../support/demo-ids.js';
import { rowsNaming } from '../support/subject-rows.js';
import { readZip, tool } from '../support/zip.js';

let db: TestDatabase;
let opUrl: string;
let work: string;
const mediaDir = inject('mediaDir');
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

interface Subjects {
  child: string;
  guardianEmail: string;
  guardian: string;
  staff: string;
}
let s: Subjects;

const cli = (args: string[], input?: string) =>
  runCli(['--database-url', opUrl, ...args], input === undefined ? {} : { input });

async function openRequest(subject: string, ref: string, received = daysAgo(3)) {
  const r = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject, '--request', ref, '--received', received, '--json']);
  expect(r.stderr).not.toMatch(/trustctl:/);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

async function exportBundle(subject: string, ref: string, extra: string[] = [], env: Record<string, string> = {}) {
  const out = await mkdtemp(join(work, 'out-'));
  const r = await runCli([
    '--database-url', opUrl, 'dsar', 'export', '--org', 'oak-trust', '--subject', subject, '--request', ref,
    '--out', out, '--media-dir', mediaDir, '--json', ...extra,
  ], { env });
  if (r.code !== 0) throw new Error(`export failed (${r.code}): ${r.stderr}`);
  const result = JSON.parse(r.stdout);
  return { ...result, out, zip: await readFile(result.path) };
}

async function exportInProcess(subject: string, reference: string, extra: { memoryBudget: number }): Promise<Buffer> {
  const logger = pino({ level: 'silent' });
  const settings = { databaseUrl: opUrl, skipTlsVerify: false, logger, notice: () => undefined };
  const outDir = await mkdtemp(join(work, 'inproc-'));
  const result = await withOperatorDb(settings, (odb) =>
    withOperatorSession(
      odb.kysely,
      { reason: 'test: in-process export', orgSlugs: ['oak-trust'], command: 'vitest' },
      (session) =>
        exportSubjectBundle(
          session,
          {
            orgSlug: 'oak-trust', subject: { id: subject }, reference, outDir, include: [], reviewer: null,
            mediaDir, encrypt: false, force: false, toolVersion: VERSION, ...extra,
          },
          { logger },
        ),
      { logger },
    ),
  );
  return readFile(result.path);
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-dsar-'));
  const q = async (text: string, values: unknown[] = []) => (await db.admin.query(text, values)).rows[0];
  // A child with a safeguarding concern, one of their guardians, and a member
  // of staff who recorded attendance.
  const child = await q(
    `select c.id from children c where c.org_id = $1
      and exists (select 1 from safeguarding_concerns x where x.org_id = c.org_id and x.child_id = c.id)
      and exists (select 1 from media_files m where m.org_id = c.org_id and m.child_id = c.id)
     order by c.id limit 1`,
    [OAK],
  );
  const guardian = await q(
    `select u.id, u.email from guardianships g join users u on u.org_id = g.org_id and u.id = g.guardian_id
     where g.org_id = $1 and g.child_id = $2 order by u.id limit 1`,
    [OAK, child.id],
  );
  const staff = await q(
    `select u.id from users u where u.org_id = $1 and u.kind = 'staff'
      and exists (select 1 from attendance_records a where a.org_id = u.org_id and a.recorded_by = u.id)
      and exists (select 1 from notes n where n.org_id = u.org_id and n.author_id = u.id)
     order by u.id limit 1`,
    [OAK],
  );
  s = { child: child.id, guardian: guardian.id, guardianEmail: guardian.email, staff: staff.id };
  // A sensitive note about the child, so that withholding by row is exercised.
  await db.admin.query(
    `insert into notes (org_id, site_id, child_id, author_id, kind, body)
     select org_id, site_id, id, $3, 'sensitive', 'Disclosed worry about an older sibling.' from children where org_id = $1 and id = $2`,
    [OAK, s.child, s.staff],
  );
  // The member of staff wrote a sensitive note too (withheld even when their
  // third-party records are released).
  await db.admin.query(
    `insert into notes (org_id, site_id, child_id, author_id, kind, body)
     select org_id, site_id, id, $3, 'sensitive', 'Staff member''s sensitive note.' from children where org_id = $1 and id <> $2 order by id limit 1`,
    [OAK, s.child, s.staff],
  );
  // The guardian volunteers: a rota shift of their own, and a check-in they
  // recorded about a child (a record BY them about someone else).
  await db.admin.query(
    `insert into rota_shifts (org_id, site_id, staff_id, starts_at, ends_at, duty)
     values ($1, $2, $3, now() - interval '3 days', now() - interval '3 days' + interval '2 hours', 'Library volunteer')`,
    [OAK, OAK_PRIMARY, s.guardian],
  );
  await db.admin.query(
    `insert into wellbeing_checkins (org_id, site_id, child_id, mood, recorded_by)
     select org_id, site_id, id, 4, $2 from children where org_id = $1 and site_id = $3 order by id limit 1`,
    [OAK, s.guardian, OAK_PRIMARY],
  );
  // A platform support user whose id happens to equal the guardian's (ids
  // are unique per organisation), with a grant at an Oak school: not the
  // guardian's record.
  await db.admin.query(
    `insert into users (org_id, id, kind, email, full_name) values ($1, $2, 'support', 'same-id@platform.example', 'Support Person')`,
    [PLATFORM, s.guardian],
  );
  await db.admin.query(
    `insert into role_assignments (org_id, site_id, user_org_id, user_id, role, expires_at, ticket, reason)
     values ($1, $2, $3, $4, 'site_admin', now() + interval '1 hour', 'SUP-4411', 'Support ticket 4411')`,
    [OAK, OAK_PRIMARY, PLATFORM, s.guardian],
  );
  await openRequest(s.child, 'T-CHILD');
  await openRequest(s.guardianEmail.toUpperCase(), 'T-GUARDIAN');
  await openRequest(s.staff, 'T-STAFF');
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

function csvText(v: unknown): string {
  return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** The checks every bundle must pass, whatever the subject. */
async function checkBundle(subjectId: string, bundle: { path: string; zip: Buffer; dpo_record: string }, opts: { released?: string[] } = {}) {
  const files = await readZip(bundle.path);
  const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
  expect(manifest.subject.id).toBe(subjectId);
  const record = JSON.parse(await readFile(bundle.dpo_record, 'utf8'));
  expect(record.bundle.sha256).toBe(createHash('sha256').update(bundle.zip).digest('hex'));
  expect(record.subject.id).toBe(subjectId);
  // Whether anything was withheld is the DPO's to know: the bundle says the same either way.
  expect(manifest).not.toHaveProperty('withheld_pending_review');
  expect(manifest).not.toHaveProperty('withheld');

  // Manifest and zip agree, file by file.
  const listed = new Map<string, { bytes: number; sha256: string }>(manifest.files.map((f: { path: string }) => [f.path, f]));
  expect([...files.keys()].filter((n) => n !== 'manifest.json').sort()).toEqual([...listed.keys()].sort());
  for (const [name, f] of listed) {
    expect(files.get(name)!.length, name).toBe(f.bytes);
    expect(createHash('sha256').update(files.get(name)!).digest('hex'), name).toBe(f.sha256);
  }
  for (const required of ['README.txt', 'index.html', 'manifest.json']) expect(files.has(required)).toBe(true);

  // Completeness, independently of the data map: each row naming the subject
  // is in the bundle, or listed by id as withheld in the DPO record, or its
  // table is listed as excluded with a reason.
  const hits = await rowsNaming(db.admin, subjectId, OAK);
  expect(hits.size).toBeGreaterThan(1);
  const excluded = new Set(manifest.excluded.map((e: { table: string; reason: string }) => (expect(e.reason).not.toBe(''), e.table)));
  for (const [table, keys] of hits) {
    const data = files.get(`data/${table}.json`);
    const inBundle = new Set<string>(data ? JSON.parse(data.toString('utf8')).map((r: { id: string }) => r.id) : []);
    const missing = [...keys].filter((k) => !inBundle.has(k));
    if (missing.length === 0) continue;
    if (excluded.has(table)) continue;
    const withheld = record.withheld
      .filter((w: { table: string }) => w.table === table)
      .flatMap((w: { rows: number; reason: string; ids: string[] }) => (expect(w.reason).not.toBe(''), expect(w.ids.length).toBe(w.rows), w.ids));
    expect(withheld.sort(), `${table}: rows naming the subject are neither in the bundle nor withheld`).toEqual(missing.sort());
  }
  // And nothing is listed as withheld that is not about the subject.
  for (const w of record.withheld) {
    for (const id of w.ids) expect(hits.get(w.table)?.has(id), `${w.table} ${id}`).toBe(true);
  }

  // Nothing about anyone else: every exported row names the subject (unless
  // its category was released after review), and the CSV holds the same rows.
  const releasedTables = new Set(
    manifest.released.filter((r: { category: string }) => (opts.released ?? []).includes(r.category)).map((r: { table: string }) => r.table),
  );
  for (const [name, buf] of files) {
    const m = /^data\/(.+)\.json$/.exec(name);
    if (!m) continue;
    const table = m[1]!;
    const rows: Array<Record<string, unknown>> = JSON.parse(buf.toString('utf8'));
    const csv: Array<Record<string, string>> = parse(files.get(`data/${table}.csv`)!, { columns: true });
    expect(csv.length, table).toBe(rows.length);
    rows.forEach((row, i) => {
      expect(Object.keys(csv[i]!)).toEqual(Object.keys(row));
      for (const [k, v] of Object.entries(row)) expect(csv[i]![k], `${table}.${k}`).toBe(csvText(v));
      if (!releasedTables.has(table)) {
        expect(hits.get(table)?.has(String(row.id)), `${table} row ${row.id} does not name the subject`).toBe(true);
      }
    });
  }

  // A real archive tool accepts it.
  const unzip = tool('unzip', ['-t', bundle.path]);
  expect(unzip.status, unzip.output).toBe(0);
  return { files, manifest, record };
}

describe('dsar export: a child', () => {
  it('holds every row that names the child, withholds safeguarding and sensitive notes, and is audited', async () => {
    const b = await exportBundle(s.child, 'T-CHILD');
    const { files, record } = await checkBundle(s.child, b);
    const withheld = Object.fromEntries(record.withheld.map((w: { table: string; category: string; rows: number }) => [`${w.table}/${w.category}`, w.rows]));
    const safeguarding = Number((await db.admin.query('select count(*) from safeguarding_concerns where org_id = $1 and child_id = $2', [OAK, s.child])).rows[0].count);
    expect(safeguarding).toBeGreaterThan(0);
    expect(withheld['safeguarding_concerns/safeguarding']).toBe(safeguarding);
    const sensitive = Number((await db.admin.query(`select count(*) from notes where org_id = $1 and child_id = $2 and kind = 'sensitive'`, [OAK, s.child])).rows[0].count);
    expect(sensitive).toBeGreaterThan(0);
    expect(withheld['notes/sensitive_notes']).toBe(sensitive);
    expect(files.has('data/safeguarding_concerns.json')).toBe(false);
    const notes = JSON.parse(files.get('data/notes.json')!.toString('utf8'));
    expect(notes.some((n: { kind: string }) => n.kind === 'sensitive')).toBe(false);
    expect(files.get('index.html')!.toString('utf8')).not.toContain('older sibling');

    // A shared class lists the group, not its other members.
    const memberships = JSON.parse(files.get('data/group_memberships.json')!.toString('utf8'));
    expect(memberships.length).toBeGreaterThan(0);
    for (const m of memberships) expect(m.child_id).toBe(s.child);

    // Media: the child's files, byte for byte as stored.
    const media = await db.admin.query('select id, storage_key, sha256 from media_files where org_id = $1 and child_id = $2', [OAK, s.child]);
    expect(media.rows.length).toBeGreaterThan(0);
    for (const m of media.rows) {
      const inZip = [...files.keys()].find((n) => n.startsWith(`media/${m.id}`));
      expect(inZip, m.storage_key).toBeDefined();
      expect(files.get(inZip!)!.equals(await readFile(join(mediaDir, m.storage_key)))).toBe(true);
    }

    // The Article 15 information a parent needs.
    const html = files.get('index.html')!.toString('utf8');
    for (const needle of ['Why we hold it', 'Who it is shared with', 'How long we keep it', 'Where it came from', 'Your rights', 'ico.org.uk', 'Information that may not be included']) {
      expect(html).toContain(needle);
    }
    // The requester is not told which kinds of record were withheld, or how many.
    // Nor in the summary a parent reads first, which counts only what the bundle holds.
    const notice = html.slice(html.indexOf('id="withheld"'), html.indexOf('id="your-rights"'));
    const summaryNotice = html.slice(html.indexOf('<h3>Information that may be left out'), html.indexOf('<h3>Your rights, and how to complain'));
    for (const text of [notice, summaryNotice]) {
      expect(text).toMatch(/withheld/);
      expect(text).not.toMatch(/safeguarding|sensitive|\b\d+ (record|item|note|concern)/i);
    }
    const summary = html.slice(html.indexOf('id="summary"'), html.indexOf('id="contents"'));
    expect(summary).toContain('href="#notes">Notes</a></th><td class="n">' + notes.length + '</td>');
    expect(summary).not.toMatch(/safeguarding/i);
    expect(files.get('README.txt')!.toString('utf8')).not.toMatch(/safeguarding|sensitive_notes/);

    // Audited with the bundle's hash; the request moves to exported.
    const event = (
      await db.admin.query(
        `select e.* from audit_events e join dsar_requests r on r.org_id = e.org_id and r.id::text = e.target_id
         where e.org_id = $1 and e.action = 'dsar.export' and r.reference = 'T-CHILD' order by e.id desc limit 1`,
        [OAK],
      )
    ).rows[0];
    expect(event.outcome).toBe('success');
    expect(event.actor_type).toBe('operator');
    expect(event.subject_ids).toEqual([s.child]);
    expect(event.context.bundle_sha256).toBe(createHash('sha256').update(b.zip).digest('hex'));
    expect(event.context.withheld.map((w: { table: string }) => w.table).sort()).toEqual(['notes', 'safeguarding_concerns']);
    const request = (await db.admin.query(`select * from dsar_requests where org_id = $1 and reference = 'T-CHILD'`, [OAK])).rows[0];
    expect(request.status).toBe('exported');
    expect(request.last_bundle_sha256).toBe(b.sha256);
  });

  it('is byte-identical for the same data, and changes when one row changes', async () => {
    const first = await exportBundle(s.child, 'T-CHILD');
    const second = await exportBundle(s.child, 'T-CHILD');
    expect(second.zip.equals(first.zip)).toBe(true);
    // In-process, with every file spilled to disk instead of kept in memory:
    // still the same bytes.
    const spilled = await exportInProcess(s.child, 'T-CHILD', { memoryBudget: 0 });
    expect(spilled.equals(first.zip)).toBe(true);
    // And in another time zone.
    const elsewhere = await exportBundle(s.child, 'T-CHILD', [], { TZ: 'America/New_York' });
    expect(elsewhere.zip.equals(first.zip)).toBe(true);
    const listing = tool('zipinfo', ['-T', first.path, 'README.txt']);
    expect(listing.output).toContain(first.as_of.slice(0, 10).replace(/-/g, ''));
    await db.admin.query(
      `update wellbeing_checkins set mood = case when mood = 5 then 4 else mood + 1 end
       where org_id = $1 and id = (select id from wellbeing_checkins where org_id = $1 and child_id = $2 order by id limit 1)`,
      [OAK, s.child],
    );
    const third = await exportBundle(s.child, 'T-CHILD');
    expect(third.zip.equals(first.zip)).toBe(false);
    const changed = (await readZip(third.path)).get('data/wellbeing_checkins.json')!;
    expect(changed.equals((await readZip(first.path)).get('data/wellbeing_checkins.json')!)).toBe(false);
    expect(third.as_of > first.as_of).toBe(true);
  });

  it('releases a withheld category only with a reviewer, and records who', async () => {
    const noReviewer = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.child, '--request', 'T-CHILD', '--out', work, '--include', 'safeguarding']);
    expect(noReviewer.code).toBe(2);
    expect(noReviewer.stderr).toMatch(/needs --reviewer/);
    const unknown = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.child, '--request', 'T-CHILD', '--out', work, '--include', 'everything', '--reviewer', 'x']);
    expect(unknown.code).toBe(2);

    const b = await exportBundle(s.child, 'T-CHILD', ['--include', 'safeguarding', '--reviewer', 'J. Patel (DSL)']);
    const { files, manifest, record } = await checkBundle(s.child, b, { released: ['safeguarding'] });
    expect(manifest.released).toEqual([expect.objectContaining({ table: 'safeguarding_concerns', category: 'safeguarding', reviewer: 'J. Patel (DSL)' })]);
    expect(record.withheld.map((w: { category: string }) => w.category)).toEqual(['sensitive_notes']);
    const rows = JSON.parse(files.get('data/safeguarding_concerns.json')!.toString('utf8'));
    expect(rows.length).toBe(manifest.released[0].rows);
  });
});

describe('dsar export: a guardian and a member of staff', () => {
  it('finds a guardian by email and exports only their own records', async () => {
    const b = await exportBundle(s.guardianEmail, 'T-GUARDIAN');
    const { files } = await checkBundle(s.guardian, b);
    const users = JSON.parse(files.get('data/users.json')!.toString('utf8'));
    expect(users.map((u: { id: string }) => u.id)).toEqual([s.guardian]);
    expect(files.has('data/children.json')).toBe(false);
  });

  it('withholds records a member of staff made about children', async () => {
    const b = await exportBundle(s.staff, 'T-STAFF');
    const { files, record } = await checkBundle(s.staff, b);
    const thirdParty = record.withheld.filter((w: { category: string }) => w.category === 'third_party_records');
    expect(thirdParty.map((w: { table: string }) => w.table)).toEqual(expect.arrayContaining(['attendance_records', 'notes']));
    expect(files.has('data/attendance_records.json')).toBe(true);
    expect(JSON.parse(files.get('data/attendance_records.json')!.toString('utf8'))).toEqual([]);
  });
});

describe('dsar export: who is whose', () => {
  it('includes a guardian’s own rota shift, withholds what they recorded about a child, and not a same-id user of another organisation', async () => {
    const b = await exportBundle(s.guardian, 'T-GUARDIAN', ['--force']);
    const { files, record } = await checkBundle(s.guardian, b);
    const rota = JSON.parse(files.get('data/rota_shifts.json')!.toString('utf8'));
    expect(rota.map((r: { duty: string }) => r.duty)).toEqual(['Library volunteer']);
    expect(record.withheld).toEqual(
      expect.arrayContaining([expect.objectContaining({ table: 'wellbeing_checkins', category: 'third_party_records', rows: 1 })]),
    );
    const grants = JSON.parse(files.get('data/role_assignments.json')!.toString('utf8'));
    expect(grants.some((g: { reason: string }) => g.reason === 'Support ticket 4411')).toBe(false);
    for (const g of grants) expect(g.user_org_id).toBe(OAK);
  });

  it('releasing third-party records does not release sensitive notes', async () => {
    const b = await exportBundle(s.staff, 'T-STAFF', ['--force', '--include', 'third_party_records', '--reviewer', 'DPO']);
    const { files, record } = await checkBundle(s.staff, b, { released: ['third_party_records'] });
    const notes = JSON.parse(files.get('data/notes.json')!.toString('utf8'));
    expect(notes.length).toBeGreaterThan(0);
    expect(notes.some((n: { kind: string }) => n.kind === 'sensitive')).toBe(false);
    const sensitive = Number(
      (await db.admin.query(`select count(*) from notes where org_id = $1 and author_id = $2 and kind = 'sensitive'`, [OAK, s.staff])).rows[0].count,
    );
    expect(sensitive).toBeGreaterThan(0);
    expect(record.withheld).toEqual([expect.objectContaining({ table: 'notes', category: 'sensitive_notes', rows: sensitive })]);
  });
});

describe('dsar verify', () => {
  it('passes an untouched bundle, and names the file when a byte is flipped', async () => {
    const b = await exportBundle(s.child, 'T-CHILD', ['--force']);
    const ok = await cli(['dsar', 'verify', b.path]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: .* files match manifest.json/);

    const bytes = Buffer.from(b.zip);
    const at = bytes.indexOf('data/children.json') + 'data/children.json'.length + 40;
    bytes[at] = bytes[at]! ^ 0xff;
    const tampered = join(b.out, 'tampered.zip');
    await writeFile(tampered, bytes);
    const bad = await cli(['dsar', 'verify', tampered]);
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/^INVALID: data\/children\.json: /m);
  });

  it('reports a file missing from the zip or not in the manifest', async () => {
    const b = await exportBundle(s.child, 'T-CHILD', ['--force']);
    const files = await readZip(b.path);
    const dir = await mkdtemp(join(work, 'edit-'));
    for (const [name, buf] of files) {
      if (name === 'data/notes.csv') continue;
      await writeFile(join(dir, name.replace(/\//g, '__')), buf);
    }
    // Rebuild the zip without data/notes.csv and with one extra file, using the
    // system zip tool so the test does not reuse the code under test.
    const { mkdir, copyFile } = await import('node:fs/promises');
    const tree = join(dir, 'tree');
    for (const [name] of files) {
      if (name === 'data/notes.csv') continue;
      await mkdir(join(tree, name, '..'), { recursive: true });
      await copyFile(join(dir, name.replace(/\//g, '__')), join(tree, name));
    }
    await writeFile(join(tree, 'data', 'extra.txt'), 'not in the manifest\n');
    const zipPath = join(dir, 'rebuilt.zip');
    const zipped = tool('sh', ['-c', `cd '${tree}' && zip -qr '${zipPath}' .`]);
    expect(zipped.status, zipped.output).toBe(0);
    const r = await cli(['dsar', 'verify', zipPath, '--json']);
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.problems).toEqual(
      expect.arrayContaining([
        'data/notes.csv: listed in manifest.json but missing from the zip',
        'data/extra.txt: not listed in manifest.json',
      ]),
    );
  });

  it('signs the manifest with --sign-key; --pubkey catches a bundle whose data and manifest were both rewritten', async () => {
    const key = join(work, 'dpo');
    const other = join(work, 'other-dpo');
    expect((await cli(['audit', 'keygen', '--out', key])).code).toBe(0);
    expect((await cli(['audit', 'keygen', '--out', other])).code).toBe(0);
    const a = await exportBundle(s.child, 'T-CHILD', ['--sign-key', `${key}.key`]);
    const b = await exportBundle(s.child, 'T-CHILD', ['--sign-key', `${key}.key`]);
    expect(b.zip.equals(a.zip)).toBe(true); // Ed25519 is deterministic
    const files = await readZip(a.path);
    expect(files.has('manifest.sig')).toBe(true);
    const ok = await cli(['dsar', 'verify', a.path, '--pubkey', `${key}.pub`]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/signed by key [0-9a-f]{16}, checked against --pubkey/);
    const wrong = await cli(['dsar', 'verify', a.path, '--pubkey', `${other}.pub`]);
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toMatch(/^INVALID: manifest\.sig: signed by key /m);

    // Rewrite a data file and its manifest entry consistently, keep manifest.sig.
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    const notes = Buffer.from(files.get('data/notes.json')!.toString('utf8').replace('Settling well', 'Settling badly'));
    manifest.files = manifest.files.map((f: { path: string }) =>
      f.path === 'data/notes.json' ? { ...f, bytes: notes.length, sha256: createHash('sha256').update(notes).digest('hex') } : f,
    );
    const tree = await mkdtemp(join(work, 'resigned-'));
    const { mkdir } = await import('node:fs/promises');
    for (const [entry, buf] of files) {
      await mkdir(join(tree, entry, '..'), { recursive: true });
      await writeFile(join(tree, entry), entry === 'data/notes.json' ? notes : entry === 'manifest.json' ? `${JSON.stringify(manifest, null, 2)}\n` : buf);
    }
    const forged = join(tree, '..', 'resigned.zip');
    expect(tool('sh', ['-c', `cd '${tree}' && zip -qr '${forged}' .`]).status).toBe(0);
    expect((await cli(['dsar', 'verify', forged])).code).toBe(0); // consistent with itself: verify alone cannot tell
    const caught = await cli(['dsar', 'verify', forged, '--pubkey', `${key}.pub`]);
    expect(caught.code).toBe(3);
    expect(caught.stdout).toMatch(/^INVALID: manifest\.sig: the signature does not match manifest\.json/m);

    const unsigned = await exportBundle(s.child, 'T-CHILD', ['--force']);
    const missing = await cli(['dsar', 'verify', unsigned.path, '--pubkey', `${key}.pub`]);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/manifest\.sig: missing/);
  });

  it('fails a forged or malformed manifest with exit 3, never a crash', async () => {
    const b = await exportBundle(s.child, 'T-CHILD', ['--force']);
    const files = await readZip(b.path);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    const notes = manifest.files.find((f: { path: string }) => f.path === 'data/notes.json');
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['null', 'null', /manifest\.json: not a JSON object/],
      ['duplicate', JSON.stringify({ ...manifest, files: [...manifest.files, { ...notes, sha256: '0'.repeat(64) }] }), /lists data\/notes\.json more than once/],
      ['no-readme', JSON.stringify({ ...manifest, files: manifest.files.filter((f: { path: string }) => f.path !== 'README.txt') }), /README\.txt: every bundle has one/],
      ['wrong-format', JSON.stringify({ ...manifest, format: 'something-else' }), /format is "something-else"/],
      ['huge', Buffer.alloc(17 * 1024 * 1024, 0x20), /larger than any bundle manifest/],
    ];
    for (const [name, text, problem] of cases) {
      const tree = await mkdtemp(join(work, `forged-${name}-`));
      const { mkdir } = await import('node:fs/promises');
      for (const [entry, buf] of files) {
        await mkdir(join(tree, entry, '..'), { recursive: true });
        await writeFile(join(tree, entry), entry === 'manifest.json' ? text : buf);
      }
      const zipPath = join(tree, '..', `forged-${name}.zip`);
      const zipped = tool('sh', ['-c', `cd '${tree}' && zip -qr '${zipPath}' .`]);
      expect(zipped.status, zipped.output).toBe(0);
      const r = await cli(['dsar', 'verify', zipPath]);
      expect(r.code, `${name}: ${r.stderr}`).toBe(3);
      expect(r.stdout, name).toMatch(problem);
    }
  });

  const has7z = tool('7zz', ['i']).status === 0;
  it.skipIf(!has7z && !process.env.TRUSTCTL_REQUIRE_TOOLS)('encrypts with AES-256 that 7-Zip opens; verify needs the passphrase', async () => {
    const b = await exportBundle(s.child, 'T-CHILD', ['--encrypt']);
    expect(b.encrypted).toBe(true);
    expect(b.passphrase).toMatch(/^[a-z2-9]{6}(-[a-z2-9]{6}){3}$/);
    expect(b.path).toMatch(/T-CHILD\.encrypted\.zip$/);
    const listing = tool('7zz', ['l', '-slt', `-p${b.passphrase}`, b.path]);
    expect(listing.status, listing.output).toBe(0);
    expect(listing.output).toMatch(/Method = AES-256/);
    const tested = tool('7zz', ['t', `-p${b.passphrase}`, b.path]);
    expect(tested.status, tested.output).toBe(0);
    expect(tool('7zz', ['t', '-pwrong-passphrase', b.path]).status).not.toBe(0);

    // The manifest's hashes are of the plaintext files.
    const files = await readZip(b.path, b.passphrase);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    const readme = manifest.files.find((f: { path: string }) => f.path === 'README.txt');
    expect(createHash('sha256').update(files.get('README.txt')!).digest('hex')).toBe(readme.sha256);

    expect((await cli(['dsar', 'verify', b.path])).code).toBe(2);
    expect((await cli(['dsar', 'verify', b.path, '--passphrase-stdin'], 'wrong\n')).code).toBe(2);
    const ok = await cli(['dsar', 'verify', b.path, '--passphrase-stdin'], `${b.passphrase}\n`);
    expect(ok.stdout).toMatch(/^OK: /);
    expect(ok.code).toBe(0);
    // Never logged: the passphrase is not in the audit trail.
    const leaked = await db.admin.query(`select count(*) from audit_events where context::text like $1`, [`%${b.passphrase}%`]);
    expect(Number(leaked.rows[0].count)).toBe(0);
  });
});

describe('dsar export: refusals', () => {
  it('an operator session scoped to one organisation cannot export a subject of another (exit 2, audited)', async () => {
    const refusedBefore = Number(
      (await db.admin.query(`select count(*) from audit_events where org_id = $1 and action = 'dsar.export' and outcome = 'refused'`, [ACORNS])).rows[0].count,
    );
    const out = await mkdtemp(join(work, 'refused-'));
    const r = await cli(['dsar', 'export', '--org', 'little-acorns', '--subject', s.child, '--request', 'LA-SAR-7', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no child, guardian or staff member .* in little-acorns/);
    const refusedAfter = Number(
      (await db.admin.query(`select count(*) from audit_events where org_id = $1 and action = 'dsar.export' and outcome = 'refused'`, [ACORNS])).rows[0].count,
    );
    expect(refusedAfter).toBe(refusedBefore + 1);
    const session = (await db.admin.query(`select outcome, org_ids from operator_sessions order by started_at desc limit 1`)).rows[0];
    expect(session.outcome).toBe('refused');
    expect(session.org_ids).toEqual([ACORNS]);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(out)).toEqual([]);
  });

  it('audits refusals with a code and ids, never a name or an email', async () => {
    const r = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.guardianEmail, '--request', 'T-CHILD', '--out', work]);
    expect(r.code).toBe(2);
    const event = (
      await db.admin.query(`select * from audit_events where org_id = $1 and action = 'dsar.export' and outcome = 'refused' order by id desc limit 1`, [OAK])
    ).rows[0];
    expect(event.context).toEqual({ refused: 'subject_mismatch' });
    expect(event.subject_ids.sort()).toEqual([s.child, s.guardian].sort());
    expect(JSON.stringify(event)).not.toContain('@');
    const unknown = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.child, '--request', 'NOPE-2', '--out', work]);
    expect(unknown.code).toBe(2);
    const latest = (
      await db.admin.query(`select * from audit_events where org_id = $1 and action = 'dsar.export' order by id desc limit 1`, [OAK])
    ).rows[0];
    expect(latest).toMatchObject({ outcome: 'refused', target_id: 'NOPE-2', context: { refused: 'unknown_request' } });
  });

  it('refuses a subject the request is not about, an unknown request, and a closed request', async () => {
    const wrong = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.staff, '--request', 'T-CHILD', '--out', work]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/is about child/);
    const unknown = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.child, '--request', 'NOPE-1', '--out', work]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no request "NOPE-1" in oak-trust/);
    const bad = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', 'not-an-id', '--request', 'T-CHILD']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('dsar request: due dates and tracking', () => {
  it('computes the legal due date at month ends and in leap years, and the database enforces it', async () => {
    const leap = await openRequest(s.guardian, 'T-LEAP', '2024-01-31');
    expect(leap.dueOn).toBe('2024-02-29');
    const plain = await openRequest(s.guardian, 'T-PLAIN', '2023-01-31');
    expect(plain.dueOn).toBe('2023-02-28');
    await expect(
      db.admin.query(`update dsar_requests set due_on = due_on + 1 where org_id = $1 and reference = 'T-LEAP'`, [OAK]),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      db.admin.query(`update dsar_requests set extended_due_on = '2024-05-01', extension_reason = 'x' where org_id = $1 and reference = 'T-LEAP'`, [OAK]),
    ).rejects.toMatchObject({ code: '23514' });
  });

  it('extends by up to two further months with a reason, and refuses more', async () => {
    const tooLong = await cli(['dsar', 'request', 'extend', '--org', 'oak-trust', '--request', 'T-LEAP', '--months', '3', '--extension-reason', 'complex']);
    expect(tooLong.code).toBe(2);
    const noReason = await cli(['dsar', 'request', 'extend', '--org', 'oak-trust', '--request', 'T-LEAP', '--months', '2']);
    expect(noReason.code).toBe(2);
    const r = await cli(['dsar', 'request', 'extend', '--org', 'oak-trust', '--request', 'T-LEAP', '--months', '2', '--extension-reason', 'records at three sites', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ extendedDueOn: '2024-04-30', effectiveDueOn: '2024-04-30', extensionReason: 'records at three sites' });
    const again = await cli(['dsar', 'request', 'extend', '--org', 'oak-trust', '--request', 'T-LEAP', '--months', '1', '--extension-reason', 'x']);
    expect(again.code).toBe(2);
  });

  it('refuses a duplicate reference and a future receipt date, changing nothing', async () => {
    const count = async () => Number((await db.admin.query('select count(*) from dsar_requests')).rows[0].count);
    const before = await count();
    const dup = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', s.child, '--request', 'T-CHILD']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/already exists/);
    const future = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', s.child, '--request', 'T-FUTURE', '--received', '2999-01-01']);
    expect(future.code).toBe(2);
    const notADate = await cli(['dsar', 'request', 'open', '--org', 'oak-trust', '--subject', s.child, '--request', 'T-X', '--received', '2023-02-29']);
    expect(notADate.code).toBe(2);
    expect(await count()).toBe(before);
  });

  it('lists soonest due first, marks overdue, and closes', async () => {
    const r = await cli(['dsar', 'list', '--org', 'oak-trust', '--json']);
    expect(r.code).toBe(0);
    const rows: Array<{ reference: string; effectiveDueOn: string; overdue: boolean; daysLeft: number }> = JSON.parse(r.stdout);
    const dues = rows.map((x) => x.effectiveDueOn);
    expect(dues).toEqual([...dues].sort());
    const plain = rows.find((x) => x.reference === 'T-PLAIN')!;
    expect(plain.overdue).toBe(true);
    expect(plain.daysLeft).toBeLessThan(0);
    const child = rows.find((x) => x.reference === 'T-CHILD')!;
    expect(child.overdue).toBe(false);
    const human = await cli(['dsar', 'list', '--org', 'oak-trust']);
    expect(human.stdout).toMatch(/T-PLAIN.*OVERDUE by \d+ day/);

    const closed = await cli(['dsar', 'request', 'close', '--org', 'oak-trust', '--request', 'T-PLAIN', '--note', 'answered by post', '--json']);
    expect(closed.code).toBe(0);
    expect(JSON.parse(closed.stdout)).toMatchObject({ status: 'closed', closureNote: 'answered by post' });
    expect((await cli(['dsar', 'request', 'close', '--org', 'oak-trust', '--request', 'T-PLAIN'])).code).toBe(2);
    const after = JSON.parse((await cli(['dsar', 'list', '--org', 'oak-trust', '--json'])).stdout);
    expect(after.map((x: { reference: string }) => x.reference)).not.toContain('T-PLAIN');
    const exportClosed = await cli(['dsar', 'export', '--org', 'oak-trust', '--subject', s.guardian, '--request', 'T-PLAIN', '--out', work]);
    expect(exportClosed.code).toBe(2);
    expect(exportClosed.stderr).toMatch(/is closed/);
  });

  it('needs --org or --all-orgs to list', async () => {
    const r = await cli(['dsar', 'list']);
    expect(r.code).toBe(2);
    const all = await cli(['dsar', 'list', '--all-orgs', '--json']);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout).map((x: { org: string }) => x.org)).toEqual(expect.arrayContaining(['oak-trust', 'little-acorns']));
  });
});

