// db seed --scale: the rows it promises, consistent (every foreign key holds,
// although it loads with row triggers off), deterministic for a seed, usable
// by the jobs (an erasure needs the organisation's key), and refused or a
// no-op where it should be.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planSites, parseScale, ROWS_PER_CHILD } from '../../src/seed/scale.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const SCALE_TABLES = [
  'organisations', 'sites', 'users', 'role_assignments', 'children', 'guardianships', 'groups', 'group_memberships',
  'attendance_records', 'notes', 'safeguarding_concerns', 'wellbeing_checkins', 'rota_shifts', 'staff_activity', 'audit_events',
];
/** Insertion times are the run's, not the seed's. */
const CLOCK_COLUMNS = ['created_at', 'recorded_at', 'txid', 'updated_at'];

async function scaleRows(db: TestDatabase): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of SCALE_TABLES) {
    const minus = CLOCK_COLUMNS.map((c) => ` - '${c}'`).join('') + (t === 'audit_events' ? ` - 'id'` : '');
    const r = await db.admin.query(
      `select md5((to_jsonb(x)${minus})::text) as h from ${t} x
       where x.org_id in (select org_id from organisations where slug like 'scale-%') order by 1`,
    );
    out[t] = r.rows.map((row) => row.h);
  }
  return out;
}

/** Rows that break a foreign key, per constraint (the load ran without the triggers that check them). */
async function foreignKeyViolations(db: TestDatabase): Promise<Record<string, number>> {
  const fks = await db.admin.query<{ name: string; child: string; parent: string; ccols: string[]; pcols: string[] }>(`
    select k.conname as name, k.conrelid::regclass::text as child, k.confrelid::regclass::text as parent,
           array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i) join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as ccols,
           array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i) join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i) as pcols
    from pg_constraint k where k.contype = 'f' and k.connamespace = 'public'::regnamespace`);
  const bad: Record<string, number> = {};
  for (const fk of fks.rows) {
    const notNull = fk.ccols.map((c) => `c.${c} is not null`).join(' and ');
    const match = fk.ccols.map((c, i) => `p.${fk.pcols[i]} = c.${c}`).join(' and ');
    const r = await db.admin.query(`select count(*)::int as n from ${fk.child} c where ${notNull}
      and not exists (select 1 from ${fk.parent} p where ${match})`);
    if (r.rows[0].n > 0) bad[fk.name] = r.rows[0].n;
  }
  return bad;
}

describe('the scale plan', () => {
  it('parses sizes and refuses nonsense', () => {
    expect(parseScale('1m')).toBe(1_000_000);
    expect(parseScale('250k')).toBe(250_000);
    expect(parseScale('12000')).toBe(12_000);
    for (const bad of ['', 'lots', '1g', '5k', '-1m', '1e6']) expect(() => parseScale(bad), bad).toThrow(/not a size/);
  });
  it('gives the same uneven sites for a seed, a different set for another, and many organisations at 10m', () => {
    const a = planSites(10_000_000, 1);
    expect(planSites(10_000_000, 1)).toEqual(a);
    expect(planSites(10_000_000, 2)).not.toEqual(a);
    expect(a.organisations).toBeGreaterThanOrEqual(10);
    const schools = a.sites.filter((s) => s.kind === 'school').map((s) => s.children);
    expect(Math.max(...schools)).toBeGreaterThan(4 * Math.min(...schools));
    expect(a.sites.reduce((n, s) => n + s.children, 0)).toBe(Math.round(10_000_000 / ROWS_PER_CHILD));
  });
});

describe('db seed --scale', () => {
  let one: TestDatabase;
  let two: TestDatabase;
  beforeAll(async () => {
    [one, two] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterAll(async () => {
    await one?.drop();
    await two?.drop();
  });

  it('adds about the rows asked for, every foreign key holds, and the same seed gives the same rows', async () => {
    const args = ['--json', 'db', 'seed', '--scale', '60k', '--seed', '7', '--anchor', '2026-09-30'];
    const [a, b] = await Promise.all([runCli(['--database-url', one.url('admin'), ...args]), runCli(['--database-url', two.url('admin'), ...args])]);
    expect(a.stderr).not.toMatch(/trustctl:/);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const result = JSON.parse(a.stdout);
    expect(result.seeded).toBe(true);
    const added = Object.values(result.added as Record<string, number>).reduce((x, y) => x + y, 0);
    expect(added).toBeGreaterThan(60_000 * 0.85);
    expect(added).toBeLessThan(60_000 * 1.15);
    expect(result.added.attendance_records).toBeGreaterThan(added / 2);
    // Consistent, although loaded with the triggers that check foreign keys off.
    expect(await foreignKeyViolations(one)).toEqual({});
    // Registers are taken on weekdays, before the anchor; everything about a child falls between
    // their enrolment and their leaving (or the anchor); they were born before they enrolled.
    const scale = `org_id in (select org_id from organisations where slug like 'scale-%')`;
    const outside = (table: string, at: string) => `select count(*)::int from ${table} x join children c on c.org_id = x.org_id and c.id = x.child_id
      where x.${scale} and (x.${at}::date < c.enrolled_on or x.${at}::date > coalesce(c.left_on, date '2026-09-30'))`;
    const dates = await one.admin.query(`select
        (select count(*)::int from attendance_records where ${scale} and extract(isodow from session_date) > 5) as weekend,
        (${outside('attendance_records', 'session_date')}) as registers,
        (${outside('notes', 'created_at')}) as notes,
        (${outside('wellbeing_checkins', 'checked_in_at')}) as checkins,
        (${outside('safeguarding_concerns', 'occurred_at')}) as concerns,
        (select count(*)::int from children where ${scale} and (left_on < enrolled_on or date_of_birth >= enrolled_on)) as children,
        (select count(*)::int from children where ${scale} and left_on is not null) as leavers`);
    expect(dates.rows[0]).toEqual({ weekend: 0, registers: 0, notes: 0, checkins: 0, concerns: 0, children: 0, leavers: expect.any(Number) });
    expect(dates.rows[0].leavers).toBeGreaterThan(0);
    // Deterministic: the same seed and anchor on another database give the same rows.
    expect(await scaleRows(two)).toEqual(await scaleRows(one));
    // Every scale organisation has its erasure keys (pseudonyms, certificates).
    const keys = await one.admin.query(`select count(*)::int as n from organisations o where o.slug like 'scale-%'
      and (not exists (select 1 from trustctl_private.pseudonym_keys k where k.org_id = o.org_id)
        or not exists (select 1 from trustctl_private.erasure_certificate_keys k where k.org_id = o.org_id))`);
    expect(keys.rows[0].n).toBe(0);
  });

  it('is usable by the jobs: a scale child can be erased, and the doctor stays clean', async () => {
    const child = (await one.admin.query(`select c.id, o.slug from children c join organisations o using (org_id)
      where o.slug like 'scale-%' order by c.id limit 1`)).rows[0];
    const op = (args: string[]) => runCli(['--database-url', one.url('trustctl_test_op'), ...args]);
    expect((await op(['dsar', 'request', 'open', '--org', child.slug, '--subject', child.id, '--request', 'ER-SCALE', '--kind', 'erasure'])).code).toBe(0);
    const r = await op(['--json', 'dsar', 'erase', '--org', child.slug, '--subject', child.id, '--request', 'ER-SCALE', '--dry-run']);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(JSON.parse(r.stdout).plan.totals.deleted).toBeGreaterThan(0);
    const doctor = await op(['--json', 'doctor']);
    expect(doctor.code, doctor.stdout.slice(0, 2000)).toBe(0);
  });

  it('does nothing when scale data is already there, and refuses a connection that is not a superuser', async () => {
    const counts = async () => (await one.admin.query(`select count(*)::int as n from attendance_records`)).rows[0].n;
    const n = await counts();
    const again = await runCli(['--database-url', one.url('admin'), '--json', 'db', 'seed', '--scale', '60k', '--seed', '7']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).seeded).toBe(false);
    expect(await counts()).toBe(n);
    const bad = await runCli(['--database-url', one.url('admin'), 'db', 'seed', '--scale', 'huge']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--scale "huge" is not a size/);
    const both = await runCli(['--database-url', one.url('admin'), 'db', 'seed', '--scale', '1m', '--demo']);
    expect(both.code).toBe(2);
    const operator = await runCli(['--database-url', one.url('trustctl_test_op'), 'db', 'seed', '--scale', '60k']);
    expect(operator.code).toBe(2);
    expect(operator.stderr).toMatch(/needs a superuser connection/);
    expect(await counts()).toBe(n);
  });
});
