// What a DSAR bundle may leave out is pinned here, with why (issue 25): the
// data map's exclusions and whole-table or by-row withholding must be
// exactly these, so marking a table excluded (media_files, say) fails here
// even though "excluded, with a reason" would count as accounted for. And,
// independently of the map (every uuid column of every table searched for
// the person's id, tests/support/subject-rows.ts), every table that holds
// rows about the person and is not pinned as excluded is in the bundle with
// exactly those rows, once every withheld category is released.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataMap } from '../../src/datamap/index.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK } from '../support/demo-ids.js';
import { rowsNaming } from '../support/subject-rows.js';
import { readZip } from '../support/zip.js';

const NOT_PERSONAL = 'Not personal data.';

/** The only tables a bundle leaves out, and why. Those "not personal" must never name the person. */
const EXCLUDED: Readonly<Record<string, string>> = {
  organisations: NOT_PERSONAL,
  sites: NOT_PERSONAL,
  groups: 'Not personal data; a subject’s memberships are exported instead.',
  audit_events: 'Security records; the subject’s id in them is kept so the trail stays verifiable.',
  audit_chain: 'Not personal data: sequence numbers and hashes.',
  audit_checkpoints: NOT_PERSONAL,
  audit_anchors: NOT_PERSONAL,
  retention_policies: NOT_PERSONAL,
  access_policies: NOT_PERSONAL,
  legal_holds: 'Legal proceedings; disclosed, where required, by the DPO.',
  retention_runs: NOT_PERSONAL,
  dsar_requests: 'Request-handling record; this request’s reference and dates are in the bundle’s manifest.',
  erasures: 'Holds only the subject’s id, kept to re-apply the erasure.',
  operator_sessions: 'Platform staff records, not about tenants’ data subjects.',
  platform_settings: NOT_PERSONAL,
  trustctl_migrations: NOT_PERSONAL,
};

/** What is withheld pending review (released with --include after review): whole tables, or rows. */
const WITHHELD: Readonly<Record<string, string>> = {
  safeguarding_concerns: 'safeguarding: every row',
  notes: 'sensitive_notes: rows with kind = sensitive',
};

const ALL_CATEGORIES = ['--include', 'safeguarding', '--include', 'sensitive_notes', '--include', 'third_party_records', '--reviewer', 'Test DPO'];

describe('dsar export: what a bundle may leave out', () => {
  it('excludes exactly the pinned tables, for the pinned reasons, and withholds only the pinned records', () => {
    const excluded = Object.fromEntries(dataMap.flatMap((m) => (m.dsar.kind === 'exclude' ? [[m.table, m.dsar.reason]] : [])));
    expect(excluded).toEqual(EXCLUDED);
    const withheld = Object.fromEntries(dataMap.flatMap((m) => {
      if (m.dsar.kind === 'withheld_pending_review') return [[m.table, `${m.dsar.category}: every row`]];
      if (m.dsar.kind === 'include' && m.dsar.withhold) {
        const w = m.dsar.withhold;
        return [[m.table, `${w.category}: rows with ${w.column} = ${w.equals}`]];
      }
      return [];
    }));
    expect(withheld).toEqual(WITHHELD);
    // A table excluded as not personal cannot name a person.
    for (const m of dataMap) {
      if (EXCLUDED[m.table] === NOT_PERSONAL) expect(m.subjects, m.table).toEqual([]);
    }
  });
});

describe('dsar export: every table about the person is in the bundle', () => {
  let db: TestDatabase;
  let opUrl: string;
  let work: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    opUrl = db.url('trustctl_test_op');
    work = await mkdtemp(join(tmpdir(), 'trustctl-dsar-completeness-'));
  });
  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Exports everything about the person (every category released) and compares it with the rows that name them. */
  async function exportAndCompare(subject: string, ref: string) {
    const open = await runCli(['--database-url', opUrl, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject, '--request', ref]);
    expect(open.code, open.stderr).toBe(0);
    const r = await runCli(['--database-url', opUrl, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', subject, '--request', ref,
      '--out', work, '--media-dir', inject('mediaDir'), ...ALL_CATEGORIES]);
    expect(r.code, r.stderr).toBe(0);
    const files = await readZip(JSON.parse(r.stdout).path);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    const hits = await rowsNaming(db.admin, subject, OAK);
    const problems: string[] = [];
    for (const [table, keys] of hits) {
      const base = table.replace(/^archive\./, '');
      if (base in EXCLUDED) {
        if (EXCLUDED[base] === NOT_PERSONAL) problems.push(`${table}: excluded as not personal, but ${keys.size} rows name the person`);
        continue;
      }
      const data = files.get(`data/${table}.json`);
      if (!data) {
        problems.push(`${table}: ${keys.size} rows about the person, and not in the bundle`);
        continue;
      }
      const ids = (JSON.parse(data.toString('utf8')) as Array<{ id: string }>).map((x) => String(x.id)).sort();
      if (ids.join() !== [...keys].sort().join()) problems.push(`${table}: the bundle has ${ids.length} rows, ${keys.size} name the person`);
    }
    const listed = Object.fromEntries(manifest.excluded.map((e: { table: string; reason: string }) => [e.table, e.reason]));
    for (const [table, reason] of Object.entries(listed)) {
      if (EXCLUDED[table] !== reason) problems.push(`${table}: excluded by the bundle (${String(reason)}), not by the pinned list`);
    }
    return { files, hits, problems };
  }

  it('a child: every table naming them, archived rows and media files included', async () => {
    const child = (await db.admin.query(
      `select c.id from children c where c.org_id = $1
         and exists (select 1 from safeguarding_concerns x where x.org_id = c.org_id and x.child_id = c.id)
         and exists (select 1 from media_files m where m.org_id = c.org_id and m.child_id = c.id)
       order by c.id limit 1`, [OAK])).rows[0].id as string;
    // A sweep archived some of their notes: still theirs, so still in the bundle.
    await db.admin.query(
      `with moved as (delete from notes t where t.org_id = $1 and t.id in
         (select x.id from notes x where x.org_id = $1 and x.child_id = $2 order by x.id limit 2) returning t.*)
       insert into archive.notes select moved.*, now(), gen_random_uuid() from moved`, [OAK, child]);
    const { files, hits, problems } = await exportAndCompare(child, 'DC-CHILD');
    expect(problems).toEqual([]);
    expect([...hits.keys()]).toEqual(expect.arrayContaining(['children', 'archive.notes', 'media_files', 'safeguarding_concerns', 'attendance_records']));
    const media = (await db.admin.query(`select id from media_files where org_id = $1 and child_id = $2`, [OAK, child])).rows;
    for (const m of media) expect([...files.keys()].some((n) => n.startsWith(`media/${m.id}.`)), `media file ${m.id}`).toBe(true);
  });

  it('a guardian and a member of staff: every table naming them, records they made included', async () => {
    const guardian = (await db.admin.query(`select guardian_id from guardianships where org_id = $1 order by guardian_id limit 1`, [OAK])).rows[0].guardian_id as string;
    const staff = (await db.admin.query(
      `select u.id from users u where u.org_id = $1 and u.kind = 'staff'
         and exists (select 1 from rota_shifts r where r.org_id = u.org_id and r.staff_id = u.id)
         and exists (select 1 from attendance_records a where a.org_id = u.org_id and a.recorded_by = u.id)
         and exists (select 1 from media_files m where m.org_id = u.org_id and m.uploaded_by = u.id)
       order by u.id limit 1`, [OAK])).rows[0].id as string;
    const g = await exportAndCompare(guardian, 'DC-GUARDIAN');
    expect(g.problems).toEqual([]);
    expect([...g.hits.keys()]).toEqual(expect.arrayContaining(['users', 'guardianships']));
    const s = await exportAndCompare(staff, 'DC-STAFF');
    expect(s.problems).toEqual([]);
    expect([...s.hits.keys()]).toEqual(expect.arrayContaining(['users', 'rota_shifts', 'attendance_records', 'media_files', 'staff_activity']));
  });
});
