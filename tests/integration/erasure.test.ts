// dsar erase against real data, checked independently of the data map:
// every row of every table (public and archive) is hashed before and after,
// rows are searched as text for the subject's id and personal values, and
// the kept rows are computed here from the holds and the statutory rule.
// Then a restore: a copy of the database taken before the erasure is
// brought back and the erasure replayed from its certificate, and a crash
// after the commit is finished by the next run.
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withOperatorSession } from '../../src/db/operator-session.js';
import { withOperatorDb } from '../../src/db/with-db.js';
import { eraseSubject } from '../../src/dsar/erase.js';
import { VERSION } from '../../src/version.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';
import { TEST_ROLES } from '../support/roles.js';
import { readZip } from '../support/zip.js';

/** Tables that record that something happened to the subject, by id: they keep the id by design. */
const RECORD_TABLES = new Set(['public.audit_events', 'public.dsar_requests', 'public.erasures', 'public.legal_holds', 'public.operator_sessions']);
const HELD_CHILD = demoId('child:elm-academy:8');
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

interface Snapshot {
  /** Per table, hashes of rows that do not mention the subject (multiset). */
  readonly other: Map<string, Map<string, number>>;
  /** Per table, rows that mention the subject: hash -> row text. */
  readonly about: Map<string, Map<string, string>>;
}

async function tablesOf(pool: pg.Pool): Promise<string[]> {
  const r = await pool.query<{ t: string }>(`select n.nspname || '.' || c.relname as t from pg_class c
    join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('public', 'archive') and c.relkind = 'r' order by 1`);
  return r.rows.map((x) => x.t);
}

/** Every row of every table, hashed, split by whether its text mentions the id. */
async function snapshot(pool: pg.Pool, subjectId: string): Promise<Snapshot> {
  const other = new Map<string, Map<string, number>>();
  const about = new Map<string, Map<string, string>>();
  for (const t of await tablesOf(pool)) {
    const r = await pool.query<{ h: string; j: string | null }>(
      `select md5(to_jsonb(t)::text) as h, case when to_jsonb(t)::text like '%' || $1 || '%' then to_jsonb(t)::text end as j from ${t} t`,
      [subjectId],
    );
    const o = new Map<string, number>();
    const a = new Map<string, string>();
    for (const row of r.rows) {
      if (row.j !== null) a.set(row.h, row.j);
      else o.set(row.h, (o.get(row.h) ?? 0) + 1);
    }
    other.set(t, o);
    about.set(t, a);
  }
  return { other, about };
}

/** Rows not about the subject that differ between two snapshots (record tables may only gain rows). */
function otherChanges(before: Snapshot, after: Snapshot): string[] {
  const problems: string[] = [];
  for (const [t, rows] of before.other) {
    const now = after.other.get(t) ?? new Map<string, number>();
    for (const [h, n] of rows) if ((now.get(h) ?? 0) < n) problems.push(`${t}: row ${h} changed or gone`);
    if (RECORD_TABLES.has(t)) continue;
    for (const [h, n] of now) if ((rows.get(h) ?? 0) < n) problems.push(`${t}: new row ${h}`);
  }
  return problems;
}

/** Hashes of rows anywhere whose text contains the value. */
async function rowsContaining(pool: pg.Pool, value: string): Promise<Array<{ t: string; h: string }>> {
  const out: Array<{ t: string; h: string }> = [];
  for (const t of await tablesOf(pool)) {
    const r = await pool.query<{ h: string }>(`select md5(to_jsonb(t)::text) as h from ${t} t where strpos(to_jsonb(t)::text, $1) > 0`, [value]);
    for (const row of r.rows) out.push({ t, h: row.h });
  }
  return out;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('dsar erase', () => {
  let db: TestDatabase;
  let opUrl: string;
  let work: string;
  let mediaDir: string;
  let certs: string;
  /** A child with a safeguarding record (kept by statute), the one DSAR-2026-001 is about. */
  let statutoryChild: string;
  /** A child with nothing kept: media, notes, attendance, guardians. */
  let plainChild: string;
  let guardian: string;

  const cli = (args: string[], url = opUrl) =>
    runCli(['--database-url', url, ...args, ...(args.includes('erase') ? ['--media-dir', mediaDir] : [])], {});
  const erase = (subject: string, ref: string, extra: string[] = [], url = opUrl) =>
    cli(['--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', subject, '--request', ref, '--out', certs, ...extra], url);
  const openRequest = async (subject: string, ref: string, kind = 'erasure') => {
    const r = await runCli(['--database-url', opUrl, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject,
      '--request', ref, '--received', daysAgo(2), '--kind', kind]);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(r.code).toBe(0);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    opUrl = db.url('trustctl_test_op');
    work = await mkdtemp(join(tmpdir(), 'trustctl-erase-'));
    // A private copy of the media store: erasure removes files.
    mediaDir = join(work, 'media');
    await cp(inject('mediaDir'), mediaDir, { recursive: true });
    certs = join(work, 'certificates');
    statutoryChild = (await db.admin.query(`select subject_id from dsar_requests where reference = 'DSAR-2026-001'`)).rows[0].subject_id;
    plainChild = (
      await db.admin.query(
        `select c.id from children c where c.org_id = $1 and c.site_id = $2
           and not exists (select 1 from safeguarding_concerns s where s.org_id = c.org_id and s.child_id = c.id)
           and exists (select 1 from notes n where n.org_id = c.org_id and n.child_id = c.id)
           and exists (select 1 from media_files m where m.org_id = c.org_id and m.child_id = c.id)
           and exists (select 1 from guardianships g where g.org_id = c.org_id and g.child_id = c.id)
         order by c.id limit 1`,
        [OAK, OAK_PRIMARY],
      )
    ).rows[0].id;
    guardian = (
      await db.admin.query(
        `select g.guardian_id from guardianships g where g.org_id = $1 and g.child_id <> $2
           and not exists (select 1 from guardianships x where x.org_id = g.org_id and x.guardian_id = g.guardian_id and x.child_id = $2)
         order by g.guardian_id limit 1`,
        [OAK, plainChild],
      )
    ).rows[0].guardian_id;
    // Some of the plain child's records were archived by an earlier sweep: erasure covers the archive too.
    for (const t of ['attendance_records', 'notes']) {
      const standalone = t === 'attendance_records'
        ? `and x.corrects_id is null and not exists (select 1 from attendance_records y where y.org_id = x.org_id and y.corrects_id = x.id)`
        : '';
      await db.admin.query(
        `with moved as (delete from ${t} t where t.org_id = $1 and t.id in
           (select x.id from ${t} x where x.org_id = $1 and x.child_id = $2 ${standalone} order by x.id limit 3) returning t.*)
         insert into archive.${t} select moved.*, now(), gen_random_uuid() from moved`,
        [OAK, plainChild],
      );
    }
    await openRequest(plainChild, 'ER-PLAIN');
    await openRequest(guardian, 'ER-GUARDIAN');
    await openRequest(HELD_CHILD, 'ER-HELD');
    await openRequest(statutoryChild, 'ER-STAT');
    // Something for erasure to remove from the record it keeps.
    await db.admin.query(`update children set medical_notes = 'Asthma: inhaler in the office', preferred_name = 'Gigi'
      where org_id = $1 and id = $2`, [OAK, statutoryChild]);
    await openRequest(plainChild, 'SAR-PLAIN', 'access');
  });
  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses bad input with exit 2 and changes nothing; a dry run and a run without --yes change nothing', async () => {
    const before = await snapshot(db.admin, plainChild);
    const refusals: Array<[string[], RegExp]> = [
      [['--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', plainChild, '--request', 'NO-SUCH'], /no request "NO-SUCH"/],
      [['--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', statutoryChild, '--request', 'ER-PLAIN', '--yes'], /is about child/],
      [['--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', statutoryChild, '--request', 'DSAR-2026-001', '--yes'], /is an access request, not an erasure request/],
      [['--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', 'not-an-id', '--request', 'ER-PLAIN'], /neither an id nor an email/],
      [['--json', 'dsar', 'erase', '--org', 'oak-trust', '--request', 'ER-PLAIN'], /--subject is required/],
      [['--json', 'dsar', 'erase', '--org', 'no-such-org', '--subject', plainChild, '--request', 'ER-PLAIN'], /unknown organisation: no-such-org/],
      [['--json', 'dsar', 'erase', '--replay', '--yes'], /--replay needs --since/],
      [['--json', 'dsar', 'erase', '--replay', '--since', 'yesterday', '--yes'], /is not a time/],
      [['--json', 'dsar', 'erase', '--replay', '--since', '2026-01-01T00:00:00Z'], /pass --yes/],
    ];
    for (const [args, message] of refusals) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('trustctl:'))).toHaveLength(1);
    }
    // A certificate of that name already in --out, or no media store: refused before anything changes.
    await mkdir(certs, { recursive: true });
    await writeFile(join(certs, 'oak-trust-ER-PLAIN.erasure.json'), '{}');
    const taken = await erase(plainChild, 'ER-PLAIN', ['--yes']);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/oak-trust-ER-PLAIN\.erasure\.json already exists/);
    await rm(join(certs, 'oak-trust-ER-PLAIN.erasure.json'));
    const noStore = await runCli(['--database-url', opUrl, 'dsar', 'erase', '--org', 'oak-trust', '--subject', plainChild,
      '--request', 'ER-PLAIN', '--out', certs, '--yes', '--media-dir', join(work, 'no-such-store')]);
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toMatch(/media store .*no-such-store not found/);
    const dry = await erase(plainChild, 'ER-PLAIN', ['--dry-run']);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.status).toBe('planned');
    expect(plan.plan.totals.deleted).toBeGreaterThan(0);
    const noYes = await erase(plainChild, 'ER-PLAIN');
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toMatch(/pass --yes to erase/);
    expect(noYes.stderr).toMatch(/attendance_records/);
    const after = await snapshot(db.admin, plainChild);
    expect(otherChanges(before, after)).toEqual([]);
    for (const [t, rows] of before.about) {
      if (t !== 'public.audit_events' && t !== 'public.operator_sessions') expect([...after.about.get(t)!.keys()].sort(), t).toEqual([...rows.keys()].sort());
    }
  });

  it('erases a child: no row anywhere still holds their data, other people’s rows are untouched, media leave the store', async () => {
    const child = (await db.admin.query(`select * from children where org_id = $1 and id = $2`, [OAK, plainChild])).rows[0];
    const before = await snapshot(db.admin, plainChild);
    const values = [child.full_name, child.upn, child.medical_notes, child.preferred_name].filter((v): v is string => typeof v === 'string' && v.length > 3);
    expect(values.length).toBeGreaterThanOrEqual(2);
    const media = (await db.admin.query(`select storage_key from media_files where org_id = $1 and child_id = $2`, [OAK, plainChild])).rows;
    const otherMedia = (await db.admin.query(`select storage_key from media_files where org_id = $1 and child_id <> $2 limit 5`, [OAK, plainChild])).rows;
    expect(media.length).toBeGreaterThan(0);
    // A hold on the audit trail (kept anyway) must not keep the child's record.
    await db.admin.query(`insert into legal_holds (org_id, category, reason) values ($1, 'audit_events', 'Regulator inspection: keep the trail')`, [OAK]);
    // Two media records whose keys point at files that are not the child's: another child's (through '..')
    // and another organisation's. Their rows go with the child; the files must stay.
    const acornsFile = (await db.admin.query(`select storage_key from media_files where org_id = $1 order by 1 limit 1`, [ACORNS])).rows[0].storage_key;
    const sideways = `${OAK}/${OAK_PRIMARY}/${plainChild}/../../${otherMedia[0].storage_key.split('/').slice(2).join('/')}`;
    for (const [n, key] of [[1, sideways], [2, acornsFile]] as const) {
      await db.admin.query(`insert into media_files (org_id, site_id, child_id, storage_key, content_type, size_bytes, sha256, caption)
        select org_id, site_id, child_id, $3, content_type, size_bytes, sha256, 'Attack ' || $4::text from media_files where org_id = $1 and child_id = $2 limit 1`,
        [OAK, plainChild, key, n]);
    }
    const before2 = await snapshot(db.admin, plainChild);
    const aboutBefore = new Map([...before2.about].map(([t, rows]) => [t, rows.size]));

    const r = await erase(plainChild, 'ER-PLAIN', ['--yes']);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('erased');

    const after = await snapshot(db.admin, plainChild);
    // Other people's rows: exactly as they were (the hold just added aside).
    expect(otherChanges(before2, after)).toEqual([]);
    // Rows that still mention the child: their own (anonymised) record and the record-keeping tables only.
    const left = [...after.about].filter(([t, rows]) => rows.size > 0 && !RECORD_TABLES.has(t)).map(([t, rows]) => [t, rows.size]);
    expect(left).toEqual([['public.children', 1]]);
    const row = (await db.admin.query(`select * from children where org_id = $1 and id = $2`, [OAK, plainChild])).rows[0];
    expect(row.full_name).toBe('[redacted]');
    expect([row.preferred_name, row.upn, row.medical_notes]).toEqual([null, null, null]);
    expect(row.date_of_birth.getMonth()).toBe(11);
    expect(row.date_of_birth.getDate()).toBe(31);
    expect(row.date_of_birth.getFullYear()).toBe(child.date_of_birth.getFullYear());
    // No personal value of theirs anywhere, except in rows that held it before and are not about them (a namesake).
    for (const v of values) {
      for (const hit of await rowsContaining(db.admin, v)) {
        expect(before.other.get(hit.t)?.has(hit.h), `${v} still in ${hit.t}`).toBe(true);
      }
    }
    // The archive was erased too.
    expect(aboutBefore.get('archive.attendance_records')).toBe(3);
    expect(after.about.get('archive.attendance_records')!.size).toBe(0);
    expect(after.about.get('archive.notes')!.size).toBe(0);
    // The audit events that named the child before are all still there, unchanged.
    for (const h of before.about.get('public.audit_events')!.keys()) expect(after.about.get('public.audit_events')!.has(h)).toBe(true);
    // Media: the child's files are gone from the store, others' are not.
    for (const m of media) await expect(stat(join(mediaDir, m.storage_key))).rejects.toThrow();
    for (const m of otherMedia) expect((await stat(join(mediaDir, m.storage_key))).isFile()).toBe(true);
    expect((await stat(join(mediaDir, acornsFile))).isFile()).toBe(true);
    const refused = out.media.flatMap((m: { failed: Array<{ key: string; problem: string }> }) => m.failed);
    expect(refused.map((f: { key: string }) => f.key).sort()).toEqual([sideways, acornsFile].sort());
    expect(refused.every((f: { problem: string }) => /not a path inside the organisation/.test(f.problem))).toBe(true);

    // The certificate: its SHA-256 is the ledger's; its counts are the rows that went.
    const json = await readFile(out.certificate.json);
    expect(sha256(json)).toBe(out.certificate.sha256);
    const ledger = (await db.admin.query(`select * from erasures where org_id = $1 and subject_id = $2`, [OAK, plainChild])).rows;
    expect(ledger).toHaveLength(1);
    expect(ledger[0].certificate_sha256).toBe(out.certificate.sha256);
    // Still owed (and reported on every run), never removed: the two files that are not the child's.
    expect(ledger[0].media_pending.map((p: string) => p.slice(65)).sort()).toEqual([sideways, acornsFile].sort());
    expect(JSON.stringify(ledger[0].counts)).not.toContain(child.full_name);
    const cert = JSON.parse(json.toString());
    expect(cert.subject).toEqual({ type: 'child', id: plainChild });
    expect(cert.request.reference).toBe('ER-PLAIN');
    for (const t of cert.tables) {
      const gone = t.deleted + t.anonymised + t.already_anonymised + t.kept.reduce((n: number, k: { rows: number }) => n + k.rows, 0);
      if (!RECORD_TABLES.has(t.table.includes('.') ? t.table : `public.${t.table}`)) {
        expect(gone, t.table).toBe(aboutBefore.get(t.table.includes('.') ? t.table : `public.${t.table}`));
      }
    }
    expect(cert.tables.find((t: { table: string }) => t.table === 'children').columns).toEqual({
      full_name: 'redact', preferred_name: 'null', date_of_birth: 'generalise_date', upn: 'null', medical_notes: 'null',
    });
    const text = await readFile(out.certificate.text, 'utf8');
    expect(text).toContain(out.certificate.sha256);
    expect(text).toContain('ER-PLAIN');
    expect(text).not.toContain(child.full_name);
    // Audited, naming the child by id.
    const events = await db.admin.query(`select context from audit_events where action = 'dsar.erase' and outcome = 'success' and $1::uuid = any (subject_ids)`, [plainChild]);
    expect(events.rows).toHaveLength(1);
    expect(events.rows[0].context.certificate_sha256).toBe(out.certificate.sha256);

    // A dry run of an erased request changes nothing and writes nothing.
    await rm(out.certificate.text);
    const dryAgain = await erase(plainChild, 'ER-PLAIN', ['--dry-run']);
    expect(JSON.parse(dryAgain.stdout)).toMatchObject({ status: 'already_erased', certificate: null });
    await expect(stat(out.certificate.text)).rejects.toThrow();
    // A rerun of the same request changes no data, and writes the missing file again.
    const again = await erase(plainChild, 'ER-PLAIN', ['--yes']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).status).toBe('already_erased');
    expect(await readFile(out.certificate.text, 'utf8')).toBe(text);
    expect(otherChanges(after, await snapshot(db.admin, plainChild))).toEqual([]);
  });

  it('keeps exactly the statutory rows (and the record that identifies them), and the held child’s rows', async () => {
    const statutory = await db.admin.query(
      `select md5(to_jsonb(s)::text) as h from safeguarding_concerns s join children c on c.org_id = s.org_id and c.id = s.child_id
       where s.org_id = $1 and s.child_id = $2 and c.date_of_birth + interval '25 years' > now()`,
      [OAK, statutoryChild],
    );
    expect(statutory.rows.length).toBeGreaterThan(0);
    const childBefore = (await db.admin.query(`select * from children where org_id = $1 and id = $2`, [OAK, statutoryChild])).rows[0];
    const before = await snapshot(db.admin, statutoryChild);
    const r = await erase(statutoryChild, 'ER-STAT', ['--yes']);
    expect(r.code).toBe(0);
    const after = await snapshot(db.admin, statutoryChild);
    expect(otherChanges(before, after)).toEqual([]);
    const left = Object.fromEntries([...after.about].filter(([t, rows]) => rows.size > 0 && !RECORD_TABLES.has(t)).map(([t, rows]) => [t, [...rows.keys()].sort()]));
    expect(Object.keys(left).sort()).toEqual(['public.children', 'public.safeguarding_concerns']);
    expect(left['public.safeguarding_concerns']).toEqual(statutory.rows.map((x) => x.h).sort());
    // The child's record says whose the kept records are: what identifies them stays, the rest goes.
    const childAfter = (await db.admin.query(`select * from children where org_id = $1 and id = $2`, [OAK, statutoryChild])).rows[0];
    expect([childAfter.full_name, childAfter.upn, childAfter.date_of_birth]).toEqual([childBefore.full_name, childBefore.upn, childBefore.date_of_birth]);
    expect([childAfter.preferred_name, childAfter.medical_notes]).toEqual([null, null]);
    expect({ ...childAfter, preferred_name: childBefore.preferred_name, medical_notes: childBefore.medical_notes }).toEqual(childBefore);
    const plan = JSON.parse(r.stdout).plan;
    expect(plan.tables.find((t: { table: string }) => t.table === 'safeguarding_concerns').kept[0].reason).toBe('statutory');
    expect(plan.tables.find((t: { table: string }) => t.table === 'children').kept[0].reason).toBe('identifies_kept_records');

    // The held child: a hold covers every record of theirs, so nothing changes.
    const heldBefore = await snapshot(db.admin, HELD_CHILD);
    const h = await erase(HELD_CHILD, 'ER-HELD', ['--yes']);
    expect(h.code).toBe(0);
    const held = JSON.parse(h.stdout).plan;
    expect(held.totals.deleted + held.totals.anonymised).toBe(0);
    expect(held.tables.filter((t: { table: string }) => !['audit_events', 'dsar_requests', 'legal_holds'].includes(t.table))
      .every((t: { kept: Array<{ reason: string }> }) => t.kept.every((k) => k.reason === 'legal_hold'))).toBe(true);
    const heldAfter = await snapshot(db.admin, HELD_CHILD);
    for (const [t, rows] of heldBefore.about) {
      if (!RECORD_TABLES.has(t)) expect([...heldAfter.about.get(t)!.keys()].sort(), t).toEqual([...rows.keys()].sort());
    }
  });

  it('erases a guardian: their account gets a keyed pseudonym, their links go, the child stays', async () => {
    const user = (await db.admin.query(`select * from users where org_id = $1 and id = $2`, [OAK, guardian])).rows[0];
    const grantsBefore = (await db.admin.query(`select id, md5((to_jsonb(r) - 'revoked_at' - 'revoke_reason' - 'revoked_by')::text) as h
      from role_assignments r where user_id = $1 order by id`, [guardian])).rows;
    expect(grantsBefore.length).toBeGreaterThan(0);
    const before = await snapshot(db.admin, guardian);
    // By email: the email must not be kept in the session record or the audit trail either.
    const r = await erase(user.email, 'ER-GUARDIAN', ['--yes']);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(r.code).toBe(0);
    const after = await snapshot(db.admin, guardian);
    expect(otherChanges(before, after)).toEqual([]);
    const row = (await db.admin.query(`select * from users where org_id = $1 and id = $2`, [OAK, guardian])).rows[0];
    expect(row.email).toMatch(/^erased-[0-9a-f]{24}$/);
    expect(row.full_name).toBe('[redacted]');
    expect([row.phone, row.date_of_birth, row.job_title]).toEqual([null, null, null]);
    // The pseudonym is keyed per organisation: not a plain hash of the id.
    expect(row.email).not.toContain(createHash('sha256').update(guardian).digest('hex').slice(0, 24));
    expect((await db.admin.query(`select count(*)::int as n from guardianships where guardian_id = $1`, [guardian])).rows[0].n).toBe(0);
    // Their role grants: kept as history, revoked.
    const grantsAfter = (await db.admin.query(`select id, md5((to_jsonb(r) - 'revoked_at' - 'revoke_reason' - 'revoked_by')::text) as h,
      revoked_at, revoke_reason from role_assignments r where user_id = $1 order by id`, [guardian])).rows;
    expect(grantsAfter.map((g) => [g.id, g.h])).toEqual(grantsBefore.map((g) => [g.id, g.h]));
    expect(grantsAfter.every((g) => g.revoked_at !== null && g.revoke_reason === 'Erased under request ER-GUARDIAN')).toBe(true);
    expect(JSON.parse(r.stdout).plan.totals.revoked).toBe(grantsBefore.length);
    for (const v of [user.email, user.full_name]) {
      for (const hit of await rowsContaining(db.admin, v)) expect(before.other.get(hit.t)?.has(hit.h), `${v} in ${hit.t}`).toBe(true);
    }
  });

  it('keeps the audit trail verifiable, and a later export shows only what was kept, with reasons', async () => {
    const seal = await cli(['audit', 'seal', '--org', 'oak-trust']);
    expect(seal.code, seal.stderr).toBe(0);
    const verify = await cli(['audit', 'verify', '--org', 'oak-trust']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    const out = join(work, 'bundles');
    const r = await cli(['--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', statutoryChild, '--request', 'DSAR-2026-001', '--out', out, '--force']);
    expect(r.code, r.stderr).toBe(0);
    const files = await readZip(JSON.parse(r.stdout).path);
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    expect(manifest.erasures).toHaveLength(1);
    expect(manifest.erasures[0].request).toBe('ER-STAT');
    expect(manifest.erasures[0].kept.map((k: { table: string; reason: string }) => [k.table, k.reason])).toEqual([
      ['children', 'personal details removed'],
      ['children', 'identifies the person in records that are kept'],
    ]);
    const rowsOf = (t: string) => manifest.files.find((f: { path: string }) => f.path === `data/${t}.json`)?.rows ?? 0;
    expect(rowsOf('children')).toBe(1);
    for (const t of ['attendance_records', 'notes', 'guardianships', 'wellbeing_checkins', 'media_files']) expect(rowsOf(t), t).toBe(0);
    expect([...files.keys()].some((n) => n.startsWith('media/'))).toBe(false);
    const html = files.get('index.html')!.toString();
    expect(html).toContain('Your information was erased');
    expect(html).toContain('identifies the person in records that are kept');

    // An export answers an access request, not the erasure request.
    const wrong = await cli(['--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', plainChild, '--request', 'ER-PLAIN', '--out', out]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/is an erasure request, not an access request/);
    const plain = await cli(['--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', plainChild, '--request', 'SAR-PLAIN', '--out', out]);
    expect(plain.code, plain.stderr).toBe(0);
    const pm = JSON.parse((await readZip(JSON.parse(plain.stdout).path)).get('manifest.json')!.toString());
    expect(pm.erasures[0].kept).toEqual([
      expect.objectContaining({ table: 'children', rows: 1, reason: 'personal details removed' }),
    ]);
  });
});

describe('dsar erase after a restore, and after a crash', () => {
  let db: TestDatabase;
  let opUrl: string;
  let work: string;
  let mediaDir: string;
  let certs: string;
  let child: string;
  let second: string;
  let restored: string | null = null;
  let restoredPool: pg.Pool | null = null;

  const adminClient = async () => {
    const c = new pg.Client(inject('adminConfig'));
    await c.connect();
    return c;
  };
  const urlFor = (database: string) => {
    const admin = inject('adminConfig');
    const op = TEST_ROLES.find((r) => r.name === 'trustctl_test_op')!;
    return `postgres://${op.name}:${encodeURIComponent(op.password)}@${admin.host}:${admin.port}/${database}`;
  };
  const cli = (args: string[], url = opUrl) => runCli(['--database-url', url, '--json', ...args, '--media-dir', mediaDir]);

  /** Subject data tables (everything but the trail of what was done), for comparing two databases. */
  async function state(pool: pg.Pool): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const t of await tablesOf(pool)) {
      if (RECORD_TABLES.has(t) || t.startsWith('public.audit_') || t === 'public.retention_runs') continue;
      const r = await pool.query<{ h: string }>(`select md5(to_jsonb(t)::text) as h from ${t} t order by 1`);
      out.set(t, r.rows.map((x) => x.h));
    }
    const e = await pool.query(`select id, subject_id, subject_type, request_reference, erased_at, counts, account, certificate_sha256
      from erasures where request_reference is not null order by id`);
    out.set('erasures', e.rows.map((x) => JSON.stringify(x)));
    return out;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    opUrl = db.url('trustctl_test_op');
    work = await mkdtemp(join(tmpdir(), 'trustctl-erase-restore-'));
    mediaDir = join(work, 'media');
    await cp(inject('mediaDir'), mediaDir, { recursive: true });
    certs = join(work, 'certificates');
    const kids = await db.admin.query(
      `select c.id from children c where c.org_id = $1 and c.site_id = $2
         and exists (select 1 from media_files m where m.org_id = c.org_id and m.child_id = c.id)
       order by c.id limit 2`,
      [OAK, OAK_PRIMARY],
    );
    [child, second] = kids.rows.map((x) => x.id);
    for (const [subject, ref] of [[child, 'ER-R1'], [second, 'ER-R2']] as const) {
      const r = await runCli(['--database-url', opUrl, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject, '--request', ref, '--received', daysAgo(1), '--kind', 'erasure']);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await restoredPool?.end();
    if (restored) {
      const c = await adminClient();
      await c.query(`drop database if exists ${restored} with (force)`);
      await c.end();
    }
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a copy from before the erasure, restored and replayed, equals the erased state; a second replay changes nothing', async () => {
    // The backup: CREATE DATABASE … TEMPLATE needs the source to have no other connections.
    restored = `${db.name}_restored`;
    const c = await adminClient();
    await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [db.name]);
    await c.query(`create database ${restored} template ${db.name}`);
    await c.query(`revoke all on database ${restored} from public`);
    await c.query(`grant connect, temporary on database ${restored} to app_user, trustctl_operator`);
    await c.end();
    const backupTime = new Date().toISOString();

    const r = await cli(['--yes', 'dsar', 'erase', '--org', 'oak-trust', '--subject', child, '--request', 'ER-R1', '--out', certs]);
    expect(r.code, r.stderr).toBe(0);
    const erased = await state(db.admin);

    // The restore brings the child's rows back (the store's files stay gone).
    restoredPool = new pg.Pool({ ...inject('adminConfig'), database: restored, max: 2 });
    restoredPool.on('error', () => undefined);
    expect((await restoredPool.query(`select count(*)::int as n from notes where child_id = $1`, [child])).rows[0].n).toBeGreaterThan(0);
    expect((await restoredPool.query(`select count(*)::int as n from erasures where subject_id = $1`, [child])).rows[0].n).toBe(0);

    const replay = await cli(['--yes', 'dsar', 'erase', '--replay', '--since', backupTime, '--from', certs], urlFor(restored));
    expect(replay.code, replay.stderr).toBe(0);
    const first = JSON.parse(replay.stdout).erasures;
    expect(first).toHaveLength(1);
    expect(first[0].ledger_restored).toBe(true);
    expect(first[0].deleted).toBeGreaterThan(0);
    expect(await state(restoredPool)).toEqual(erased);

    const again = await cli(['--yes', 'dsar', 'erase', '--replay', '--since', backupTime, '--from', certs], urlFor(restored));
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).erasures.map((o: { deleted: number; anonymised: number; ledger_restored: boolean }) => [o.deleted, o.anonymised, o.ledger_restored])).toEqual([[0, 0, false]]);
    expect(await state(restoredPool)).toEqual(erased);

    // Erasures more than an hour before --since are not replayed (the margin covers one committing during the backup); a changed certificate is refused.
    const none = await cli(['--yes', 'dsar', 'erase', '--replay', '--since', new Date(Date.now() + 2 * 3_600_000).toISOString(), '--from', certs], urlFor(restored));
    expect(JSON.parse(none.stdout).erasures).toEqual([]);
    const file = join(certs, 'oak-trust-ER-R1.erasure.json');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('"totals"', '"totals" '));
    const tampered = await cli(['--yes', 'dsar', 'erase', '--replay', '--since', backupTime, '--from', certs], urlFor(restored));
    expect(tampered.code).toBe(3);
    expect(tampered.stderr).toMatch(/seal does not verify/);
    await writeFile(file, original);
    // A certificate someone wrote (another child, a copied .txt and its seal) is refused before anything changes.
    const forged = join(work, 'forged');
    await mkdir(forged);
    const victim = (await db.admin.query(`select id from children where org_id = $1 and id <> $2 and id <> $3 order by id limit 1`, [OAK, child, second])).rows[0].id;
    await writeFile(join(forged, 'oak-trust-X.erasure.json'), original.replaceAll(child, victim));
    await writeFile(join(forged, 'oak-trust-X.erasure.txt'), await readFile(join(certs, 'oak-trust-ER-R1.erasure.txt')));
    const before = (await restoredPool.query(`select count(*)::int as n from attendance_records where child_id = $1`, [victim])).rows[0].n;
    const f = await cli(['--yes', 'dsar', 'erase', '--replay', '--since', '2000-01-01T00:00:00Z', '--from', forged], urlFor(restored));
    expect(f.code).toBe(3);
    expect(f.stderr).toMatch(/seal does not verify/);
    expect((await restoredPool.query(`select count(*)::int as n from attendance_records where child_id = $1`, [victim])).rows[0].n).toBe(before);
  });

  it('a crash after the commit, before the certificate and media removal, is finished by the next run', async () => {
    const media = (await db.admin.query(`select storage_key from media_files where org_id = $1 and child_id = $2 order by 1`, [OAK, second])).rows.map((x) => x.storage_key as string);
    expect(media.length).toBeGreaterThan(1);
    // One file cannot be removed (a directory stands where it was): reported, and retried later.
    const stuck = join(mediaDir, media[0]!);
    const stuckContent = await readFile(stuck);
    await rm(stuck);
    await mkdir(join(stuck, 'blocker'), { recursive: true });

    const logger = pino({ level: 'silent' });
    const settings = { databaseUrl: opUrl, skipTlsVerify: false, logger, notice: () => undefined };
    await expect(
      withOperatorDb(settings, (odb) =>
        withOperatorSession(odb.kysely, { reason: 'test: erasure that crashes after commit', orgSlugs: ['oak-trust'], command: 'vitest' }, (session) =>
          eraseSubject(session, {
            orgSlug: 'oak-trust', subject: { id: second }, reference: 'ER-R2', outDir: certs, mediaDir, toolVersion: VERSION,
            dryRun: false, confirm: async () => true,
            afterCommit: async () => { throw new Error('simulated crash after commit'); },
          }, { logger }),
        { logger }),
      ),
    ).rejects.toThrow(/simulated crash/);
    // Committed: the rows are gone and the ledger owes the store its files; no certificate yet.
    expect((await db.admin.query(`select count(*)::int as n from media_files where child_id = $1`, [second])).rows[0].n).toBe(0);
    const pending = (await db.admin.query(`select media_pending from erasures where subject_id = $1`, [second])).rows[0].media_pending;
    expect(pending.map((p: string) => p.slice(65)).sort()).toEqual(media);
    for (const key of media.slice(1)) expect((await stat(join(mediaDir, key))).isFile()).toBe(true);
    await expect(stat(join(certs, 'oak-trust-ER-R2.erasure.json'))).rejects.toThrow();

    // Any next run in the organisation writes the missing certificate (here: a rerun of another request).
    const other = await cli(['--yes', 'dsar', 'erase', '--org', 'oak-trust', '--subject', child, '--request', 'ER-R1', '--out', certs]);
    expect(other.code, other.stderr).toBe(0);
    expect(JSON.parse(other.stdout).certificates_completed).toEqual([join(certs, 'oak-trust-ER-R2.erasure.json')]);
    // The next run of the request: certificate in place, removable files removed, the stuck one reported and still owed.
    const next = await cli(['--yes', 'dsar', 'erase', '--org', 'oak-trust', '--subject', second, '--request', 'ER-R2', '--out', certs]);
    expect(next.code, next.stderr).toBe(0);
    const out = JSON.parse(next.stdout);
    expect(out.status).toBe('already_erased');
    expect(sha256(await readFile(out.certificate.json))).toBe(out.certificate.sha256);
    const failed = out.media.flatMap((m: { failed: Array<{ key: string }> }) => m.failed.map((f) => f.key));
    expect(failed).toEqual([media[0]]);
    for (const key of media.slice(1)) await expect(stat(join(mediaDir, key))).rejects.toThrow();
    expect((await db.admin.query(`select media_pending from erasures where subject_id = $1`, [second])).rows[0].media_pending.map((p: string) => p.slice(65))).toEqual([media[0]]);

    // Once the blocker is cleared, the next erasure run in the organisation finishes it.
    await rm(stuck, { recursive: true });
    await writeFile(stuck, stuckContent);
    const last = await cli(['--yes', 'dsar', 'erase', '--org', 'oak-trust', '--subject', second, '--request', 'ER-R2', '--out', certs]);
    expect(last.code, last.stderr).toBe(0);
    await expect(stat(stuck)).rejects.toThrow();
    expect((await db.admin.query(`select media_pending from erasures where subject_id = $1`, [second])).rows[0].media_pending).toEqual([]);
  });
});
