// retention sweep against real data: rows past the cut-off go exactly as
// the policy says, held rows and rows inside the window are untouched (row
// by row), archive plus remaining equals the original, a second sweep
// changes nothing, a sweep killed with SIGKILL and run again ends where an
// uninterrupted one does, and writers running alongside lose nothing.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, demoId } from '../support/demo-ids.js';
import { waitFor } from '../support/wait.js';

const ASH = demoId('site:ash-primary');
const ELM = demoId('site:elm-academy');
const NURSERY = demoId('site:little-acorns-nursery');
const HELD_CHILD = demoId('child:elm-academy:8');

const sweep = (db: TestDatabase, args: string[], onSpawn?: (c: ChildProcess) => void) =>
  runCli(['--database-url', db.url('trustctl_test_op'), '--json', ...args], onSpawn ? { onSpawn } : {});

/** Every row of a table as md5(row json), keyed by id. */
async function rows(db: TestDatabase, table: string, where = 'true', params: unknown[] = []): Promise<Map<string, string>> {
  const r = await db.admin.query(`select id::text as id, md5(to_jsonb(t)::text) as h from ${table} t where ${where}`, params);
  return new Map(r.rows.map((x) => [x.id, x.h]));
}
/** Archived rows, without the archive's own columns, in the same form. */
async function archived(db: TestDatabase, table: string): Promise<Map<string, string>> {
  const r = await db.admin.query(`select id::text as id, md5((to_jsonb(t) - 'archived_at' - 'run_id')::text) as h from archive.${table} t`);
  return new Map(r.rows.map((x) => [x.id, x.h]));
}

/** The policies every test here sweeps with (replacing the demo's). */
async function policies(db: TestDatabase): Promise<void> {
  await db.admin.query(`delete from retention_policies`);
  await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values
    ($1, null, 'attendance', '1 year', 'session_date', 'archive'),
    ($1, $2, 'attendance', '1 year', 'session_date', 'delete'),
    ($3, null, 'wellbeing', '6 months', 'checked_in_at', 'anonymise')`, [OAK, ELM, ACORNS]);
}

describe('retention sweep', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await policies(db);
  });
  afterAll(() => db?.drop());

  it('refuses without --yes when nobody can confirm, changing nothing', async () => {
    const before = await db.admin.query(`select count(*)::int as n from attendance_records`);
    const r = await sweep(db, ['retention', 'sweep', '--org', 'oak-trust']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pass --yes to sweep/);
    expect(r.stderr).toMatch(/Retention plan as of/);
    expect((await db.admin.query(`select count(*)::int as n from attendance_records`)).rows[0]).toEqual(before.rows[0]);
  });

  it('refuses an all-organisation sweep without --all-orgs and an explicit --reason (exit 2), changing nothing', async () => {
    const snapshot = async () => ({
      attendance: await rows(db, 'attendance_records'),
      wellbeing: await rows(db, 'wellbeing_checkins'),
      sessions: (await db.admin.query(`select count(*)::int as n from operator_sessions`)).rows[0].n,
    });
    const before = await snapshot();
    for (const args of [
      ['--yes', 'retention', 'sweep'],
      ['--yes', 'retention', 'sweep', '--all-orgs'],
      ['--yes', '--reason', '   ', 'retention', 'sweep', '--all-orgs'],
      ['--yes', '--reason', 'nightly', 'retention', 'sweep'],
    ]) {
      const r = await sweep(db, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--all-orgs|--reason/);
    }
    expect(await snapshot()).toEqual(before);
    // Both given: an all-organisation session under that reason (a category with no policy here, so nothing is swept).
    const ok = await sweep(db, ['--yes', '--reason', 'Nightly retention, all trusts', 'retention', 'sweep', '--all-orgs', '--category', 'notes']);
    expect(ok.code, ok.stderr).toBe(0);
    const session = (await db.admin.query(`select reason, all_orgs from operator_sessions order by started_at desc limit 1`)).rows[0];
    expect(session).toEqual({ reason: 'Nightly retention, all trusts', all_orgs: true });
    expect((await snapshot()).attendance).toEqual(before.attendance);
  });

  it('archives, deletes and anonymises exactly what is due, and nothing held or inside the window', async () => {
    const beforeAsh = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ASH]);
    const beforeElm = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ELM]);
    const dueAsh = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2 and session_date + interval '1 year' <= now()`, [OAK, ASH]);
    const dueElm = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2 and session_date + interval '1 year' <= now() and child_id <> $3`, [OAK, ELM, HELD_CHILD]);
    const heldElm = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2 and session_date + interval '1 year' <= now() and child_id = $3`, [OAK, ELM, HELD_CHILD]);
    expect(dueAsh.size).toBeGreaterThan(100);
    expect(dueElm.size).toBeGreaterThan(100);
    expect(heldElm.size).toBeGreaterThan(0);
    const wellbeingDue = await rows(db, 'wellbeing_checkins', `org_id = $1 and checked_in_at + interval '6 months' <= now() and comment is not null`, [ACORNS]);
    const wellbeingKept = await rows(db, 'wellbeing_checkins', `org_id = $1 and not (checked_in_at + interval '6 months' <= now() and comment is not null)`, [ACORNS]);
    expect(wellbeingDue.size).toBeGreaterThan(0);

    const r = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--org', 'little-acorns', '--batch-size', '300']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Array<{ site: string | null; table: string; swept: number; held: number; status: string }>;
    expect(report.every((u) => u.status === 'completed')).toBe(true);

    // Ash (archive): due rows moved to the archive unchanged; the rest untouched.
    const afterAsh = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ASH]);
    const arch = await archived(db, 'attendance_records');
    for (const [id, h] of beforeAsh) {
      if (dueAsh.has(id)) {
        expect(afterAsh.has(id)).toBe(false);
        expect(arch.get(id)).toBe(h);
      } else {
        expect(afterAsh.get(id)).toBe(h);
      }
    }
    expect(afterAsh.size + [...arch.keys()].filter((id) => beforeAsh.has(id)).length).toBe(beforeAsh.size);
    // Elm (delete, with a tribunal hold on one child): due rows gone, not archived; held rows and the window untouched.
    const afterElm = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ELM]);
    for (const [id, h] of beforeElm) {
      if (dueElm.has(id)) {
        expect(afterElm.has(id)).toBe(false);
        expect(arch.has(id)).toBe(false);
      } else {
        expect(afterElm.get(id)).toBe(h);
      }
    }
    expect(report.find((u) => u.site === 'elm-academy' && u.table === 'attendance_records')).toMatchObject({ swept: dueElm.size, held: heldElm.size });
    // Acorns wellbeing (anonymise): comments redacted, everything else as it was.
    const redacted = await db.admin.query(`select count(*)::int as n from wellbeing_checkins where org_id = $1 and id::text = any ($2) and comment = '[redacted]'`, [ACORNS, [...wellbeingDue.keys()]]);
    expect(redacted.rows[0].n).toBe(wellbeingDue.size);
    const stillKept = await rows(db, 'wellbeing_checkins', `org_id = $1 and id::text = any ($2)`, [ACORNS, [...wellbeingKept.keys()]]);
    expect(stillKept).toEqual(wellbeingKept);
    // One audit event per run, with its counts.
    const events = await db.admin.query(`select context from audit_events where action = 'retention.sweep' and org_id = $1 and site_id = $2`, [OAK, ELM]);
    expect(events.rows.map((e) => e.context)).toContainEqual(expect.objectContaining({ table: 'attendance_records', action: 'delete', deleted: dueElm.size, held: heldElm.size }));
  });

  it('exports the archive to JSON Lines with a manifest, verifies it, and purges exactly what it wrote', async () => {
    const { mkdtemp, readFile, readdir } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createHash } = await import('node:crypto');
    const out = await mkdtemp(join(tmpdir(), 'trustctl-archive-'));
    const before = await db.admin.query(`select id::text as id, to_jsonb(t) as row from archive.attendance_records t where org_id = $1`, [OAK]);
    expect(before.rows.length).toBeGreaterThan(100);
    const r = await sweep(db, ['retention', 'archive', 'export', '--org', 'oak-trust', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(await readdir(out)).toEqual([res.dir.split('/').pop()]);
    const manifestText = await readFile(join(res.dir, 'manifest.json'), 'utf8');
    expect(createHash('sha256').update(manifestText).digest('hex')).toBe(res.manifestSha256);
    const manifest = JSON.parse(manifestText);
    expect(manifest.files.map((f: { name: string }) => f.name)).toEqual(['attendance_records.jsonl']);
    const bytes = await readFile(join(res.dir, 'attendance_records.jsonl'));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.files[0].sha256);
    const lines = bytes.toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(new Map(lines.map((l) => [l.id, l]))).toEqual(new Map(before.rows.map((x) => [x.id, x.row])));
    expect(res.purged).toBe(before.rows.length);
    expect((await db.admin.query(`select count(*)::int as n from archive.attendance_records where org_id = $1`, [OAK])).rows[0].n).toBe(0);
    const ev = await db.admin.query(`select context from audit_events where action = 'retention.archive_export' and org_id = $1`, [OAK]);
    expect(ev.rows[0].context).toMatchObject({ purged: before.rows.length, manifest_sha256: res.manifestSha256 });
    // Nothing left: a second export writes no file and purges nothing.
    const again = JSON.parse((await sweep(db, ['retention', 'archive', 'export', '--org', 'oak-trust', '--out', out])).stdout);
    expect(again).toMatchObject({ files: [], purged: 0 });
    // A missing directory is refused, changing nothing.
    expect((await sweep(db, ['retention', 'archive', 'export', '--org', 'oak-trust', '--out', join(out, 'nope')])).code).toBe(2);
  });

  it('a second sweep changes nothing', async () => {
    const before = [await rows(db, 'attendance_records'), await rows(db, 'wellbeing_checkins'), await archived(db, 'attendance_records')];
    const r = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--org', 'little-acorns']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ swept: number }>).every((u) => u.swept === 0)).toBe(true);
    expect([await rows(db, 'attendance_records'), await rows(db, 'wellbeing_checkins'), await archived(db, 'attendance_records')]).toEqual(before);
  });
});

describe('a sweep killed mid-run', () => {
  let killed: TestDatabase;
  let reference: TestDatabase;
  beforeAll(async () => {
    [killed, reference] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    await Promise.all([policies(killed), policies(reference)]);
  });
  afterAll(async () => {
    await Promise.all([killed?.drop(), reference?.drop()]);
  });

  it('with SIGKILL, then run again, ends exactly where an uninterrupted sweep does, archiving no row twice', async () => {
    const args = ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance', '--batch-size', '100'];
    // Kill it once some batches have committed.
    const first = sweep(killed, args, (child) => {
      const timer = setInterval(async () => {
        const done = await killed.admin.query(`select coalesce(sum((counts->>'swept')::int), 0)::int as n from retention_runs where status = 'running'`);
        if (done.rows[0].n > 300) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 50);
      child.on('exit', () => clearInterval(timer));
    });
    const r1 = await first;
    expect(r1.code).toBeNull(); // killed by the signal
    const mid = await killed.admin.query(`select status, (counts->>'swept')::int as swept from retention_runs where status = 'running'`);
    expect(mid.rows.length).toBeGreaterThan(0);

    const r2 = await sweep(killed, args);
    expect(r2.code).toBe(0);
    expect((JSON.parse(r2.stdout) as Array<{ resumed: boolean }>).some((u) => u.resumed)).toBe(true);
    const r3 = await sweep(reference, args);
    expect(r3.code).toBe(0);

    expect(await rows(killed, 'attendance_records')).toEqual(await rows(reference, 'attendance_records'));
    expect(await archived(killed, 'attendance_records')).toEqual(await archived(reference, 'attendance_records'));
    const dupes = await killed.admin.query(`select count(*) - count(distinct id) as d from archive.attendance_records`);
    expect(Number(dupes.rows[0].d)).toBe(0);
    expect((await killed.admin.query(`select count(*)::int as n from retention_runs where status in ('running', 'interrupted')`)).rows[0].n).toBe(0);
  });
});

describe('alongside other writers', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await policies(db);
  });
  afterAll(() => db?.drop());

  it('neither deadlocks nor loses their writes, and a second sweep of the organisation is refused meanwhile', async () => {
    const child = (await db.admin.query(`select id from children where org_id = $1 and site_id = $2 limit 1`, [OAK, ASH])).rows[0].id;
    let stop = false;
    const written: string[] = [];
    const writer = db.withClient('admin', async (c) => {
      let n = 0;
      while (!stop) {
        // New rows (inside the window) and updates of rows the sweep may be moving.
        const ins = await c.query(`insert into attendance_records (org_id, site_id, child_id, session_date, session, status)
          values ($1, $2, $3, current_date - ($4::int % 30), 'am', 'present') returning id::text`, [OAK, ASH, child, n]);
        written.push(ins.rows[0].id);
        await c.query(`update attendance_records set status = 'late' where id = (select id from attendance_records where org_id = $1 and site_id = $2 and session_date < current_date - interval '1 year' order by random() limit 1)`, [OAK, ASH]);
        n += 1;
      }
      return n;
    });
    const running = sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance', '--batch-size', '100']);
    // Once the first holds the organisation's lock (its first run is recorded), start a second.
    await waitFor('the first sweep to record its running run', async () => {
      const open = await db.admin.query(`select count(*)::int as n from retention_runs where status = 'running'`);
      return open.rows[0].n > 0;
    }, { intervalMs: 20 });
    const second = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance']);
    const r = await running;
    stop = true;
    const n = await writer;
    expect(r.code).toBe(0);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/a retention sweep is already running for oak-trust/);
    expect(n).toBeGreaterThan(5);
    const kept = await db.admin.query(`select count(*)::int as n from attendance_records where id::text = any ($1)`, [written]);
    expect(kept.rows[0].n).toBe(written.length);
    // Whatever was locked or updated meanwhile is still due, and the next sweep takes it.
    const again = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance']);
    expect(again.code).toBe(0);
    const left = await db.admin.query(`select count(*)::int as n from attendance_records where org_id = $1 and site_id = $2 and session_date + interval '1 year' <= now()`, [OAK, ASH]);
    expect(left.rows[0].n).toBe(0);
  });
});

describe('the audit_events category', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('prunes the sealed trail through its last checkpoint before the cut-off, keeps it verifiable, and prunes nothing under a hold', async () => {
    const op = (args: string[]) => sweep(db, ['--reason', 'retention test', ...args]);
    expect((await op(['audit', 'seal', '--org', 'little-acorns'])).code).toBe(0);
    const events = () => db.admin.query(`select count(*)::int as n from audit_events where org_id = $1`, [ACORNS]).then((r) => r.rows[0].n as number);
    const sealedBefore = (await db.admin.query(`select max(chain_seq)::int as n from audit_chain where org_id = $1`, [ACORNS])).rows[0].n;
    const before = await events();
    await db.admin.query(`delete from retention_policies where org_id = $1`, [ACORNS]);
    const setPolicy = ['retention', 'policy', 'set', '--org', 'little-acorns', '--category', 'audit_events', '--keep', '0d', '--action', 'delete'];
    expect((await op(setPolicy)).code).toBe(0);
    // The operator who just set the policy does not apply it: another operator does, or it waits 24 hours.
    const own = await op(['--yes', 'retention', 'sweep', '--org', 'little-acorns', '--category', 'audit_events']);
    expect(own.code).toBe(0);
    expect(JSON.parse(own.stdout)[0]).toMatchObject({ status: 'skipped', swept: 0, note: expect.stringMatching(/less than 24 hours ago/) });
    expect(await events()).toBeGreaterThanOrEqual(before);
    // A second operator sets it; the first applies it.
    const op2 = await runCli(['--database-url', db.url('trustctl_test_op2'), '--json', '--reason', 'retention test', ...setPolicy]);
    expect(op2.code, op2.stderr).toBe(0);
    // A hold that could cover audit events stops pruning.
    const hold = JSON.parse((await op(['hold', 'add', '--org', 'little-acorns', '--category', 'audit_events'])).stdout);
    const held = await op(['--yes', 'retention', 'sweep', '--org', 'little-acorns', '--category', 'audit_events']);
    expect(held.code).toBe(0);
    expect(JSON.parse(held.stdout)[0]).toMatchObject({ swept: 0, held: 1, status: 'completed' });
    expect(await events()).toBeGreaterThanOrEqual(before);
    expect((await op(['hold', 'release', hold.id, '--org', 'little-acorns'])).code).toBe(0);

    const r = await op(['--yes', 'retention', 'sweep', '--org', 'little-acorns', '--category', 'audit_events']);
    expect(r.code).toBe(0);
    const unit = JSON.parse(r.stdout)[0];
    expect(unit).toMatchObject({ category: 'audit_events', status: 'completed' });
    expect(unit.swept).toBe(sealedBefore);
    const anchor = (await db.admin.query(`select max(chain_seq)::int as n from audit_anchors where org_id = $1`, [ACORNS])).rows[0].n;
    expect(anchor).toBe(sealedBefore);
    // The trail still verifies from its new anchor, once the newest events are sealed too.
    // An open transaction elsewhere on the server (another test file) can hold the seal's horizon back
    // for a moment, leaving the prune event unsealed: seal until it is, then verify.
    const v = await waitFor('the trail to verify once sealed', async () => {
      expect((await op(['audit', 'seal', '--org', 'little-acorns'])).code).toBe(0);
      const verified = await op(['audit', 'verify', '--org', 'little-acorns']);
      return verified.code === 0 && verified;
    }, { intervalMs: 500 });
    expect(v.code, v.stdout).toBe(0);
    // A second sweep prunes nothing more than what has been sealed and checkpointed since.
    const again = JSON.parse((await op(['--yes', 'retention', 'sweep', '--org', 'little-acorns', '--category', 'audit_events'])).stdout)[0];
    expect(again.status).toBe('completed');
  });
});

describe('what an independent review tried (regression tests)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await policies(db);
  });
  afterAll(() => db?.drop());

  it('a run left unfinished under an older policy is superseded, not resumed with its old cut-off', async () => {
    // As if a 1-year delete run had been killed, and the DPO then set 3 years.
    await db.admin.query(`insert into retention_runs (org_id, site_id, category, table_name, action, status, cutoff, counts)
      values ($1, $2, 'attendance', 'attendance_records', 'delete', 'running', now() - interval '1 year',
              '{"policy": {"keep_for": "1 year", "clock": "session_date", "action": "delete"}}')`, [OAK, ELM]);
    await db.admin.query(`update retention_policies set keep_for = '3 years' where org_id = $1 and site_id = $2`, [OAK, ELM]);
    const before = await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ELM]);
    const r = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance']);
    expect(r.code).toBe(0);
    expect(await rows(db, 'attendance_records', `org_id = $1 and site_id = $2`, [OAK, ELM])).toEqual(before);
    const old = await db.admin.query(`select status, error from retention_runs where org_id = $1 and site_id = $2 and cutoff > now() - interval '1 year 1 day' and cutoff < now() - interval '364 days'`, [OAK, ELM]);
    expect(old.rows[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^superseded/) });
  });

  it('an original whose correction must stay is kept, instead of failing the batch every night', async () => {
    await db.admin.query(`update retention_policies set keep_for = '1 year' where org_id = $1 and site_id = $2`, [OAK, ELM]);
    // A correction that is not due (moved to today), of a record that is.
    const c = (await db.admin.query(`select c.id, c.corrects_id from attendance_records c join attendance_records o on o.org_id = c.org_id and o.id = c.corrects_id
      where c.org_id = $1 and c.site_id = $2 and o.session_date + interval '1 year' <= now() and o.child_id <> $3 limit 1`, [OAK, ELM, HELD_CHILD])).rows[0];
    expect(c).toBeTruthy();
    await db.admin.query(`update attendance_records set session_date = current_date where org_id = $1 and id = $2`, [OAK, c.id]);
    const r = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'attendance']);
    expect(r.code).toBe(0);
    const units = JSON.parse(r.stdout) as Array<{ site: string | null; status: string; swept: number }>;
    expect(units.find((u) => u.site === 'elm-academy')).toMatchObject({ status: 'completed' });
    expect(units.find((u) => u.site === 'elm-academy')!.swept).toBeGreaterThan(100);
    const kept = await db.admin.query(`select count(*)::int as n from attendance_records where org_id = $1 and id in ($2, $3)`, [OAK, c.id, c.corrects_id]);
    expect(kept.rows[0].n).toBe(2);
  });

  it('refuses policies a sweep would never apply, and clocks that are not dates', async () => {
    const set = (args: string[]) => sweep(db, ['--reason', 'x', 'retention', 'policy', 'set', '--org', 'oak-trust', ...args]);
    for (const [args, message] of [
      [['--category', 'media', '--keep', '1y', '--action', 'delete'], /would leave their files in storage/],
      [['--category', 'access', '--keep', '1y', '--action', 'delete'], /kept as history/],
      [['--category', 'pupil_record', '--keep', '6y', '--action', 'delete'], /referenced by attendance/],
      [['--category', 'audit_events', '--keep', '1y', '--action', 'archive'], /can only be pruned/],
      [['--category', 'notes', '--keep', '1y', '--action', 'delete', '--clock', 'kind'], /is not a date or time/],
    ] as Array<[string[], RegExp]>) {
      const r = await set(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
    }
  });

  it('anonymising a date of birth keeps only the year, as its last day, so a 25th-birthday clock can only move later', async () => {
    await db.admin.query(`insert into retention_policies (org_id, category, keep_for, clock, action) values ($1, 'pupil_record', '0 days', 'left_on', 'anonymise')`, [ACORNS]);
    const child = (await db.admin.query(`update children set left_on = current_date - 10, date_of_birth = '2001-12-20' where org_id = $1 and id = (select id from children where org_id = $1 order by id limit 1) returning id`, [ACORNS])).rows[0].id;
    const r = await sweep(db, ['--yes', 'retention', 'sweep', '--org', 'little-acorns', '--category', 'pupil_record']);
    expect(r.code).toBe(0);
    const after = (await db.admin.query(`select to_char(date_of_birth, 'YYYY-MM-DD') as dob, full_name from children where org_id = $1 and id = $2`, [ACORNS, child])).rows[0];
    expect(after).toEqual({ dob: '2001-12-31', full_name: '[redacted]' });
  });
});
