// Retention policies, legal holds and the plan, against the demo data: the
// plan's counts must equal an independent count made as the superuser, and
// bad input changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, demoId } from '../support/demo-ids.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const cli = (args: string[]) => runCli(['--database-url', db.url('trustctl_test_op'), '--json', ...args]);
const ELM = demoId('site:elm-academy');
const NURSERY = demoId('site:little-acorns-nursery');
const HELD_CHILD = demoId('child:elm-academy:8'); // the demo's tribunal hold
const count = async (q: string, v: unknown[] = []) => Number((await db.admin.query(q, v)).rows[0].n);

interface PlanRow { org: string; site: string | null; category: string; table: string; action: string; keepFor: string; due: number; held: number; toAct: number; cutoff: string }
async function plan(asOf: string, orgs = ['oak-trust', 'little-acorns']): Promise<PlanRow[]> {
  const r = await cli(['retention', 'plan', ...orgs.flatMap((o) => ['--org', o]), '--as-of', asOf]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).rows;
}

describe('retention policies', () => {
  it('sets a site policy over the organisation’s, lists it, and audits it with the reason', async () => {
    const r = await cli(['--reason', 'Retention schedule 2026', 'retention', 'policy', 'set', '--org', 'oak-trust', '--site', 'elm-academy',
      '--category', 'attendance', '--keep', '1y', '--action', 'delete']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ org: 'oak-trust', site: 'elm-academy', category: 'attendance', keepFor: '1y', action: 'delete', clock: 'session_date' });
    const list = JSON.parse((await cli(['retention', 'policy', 'list', '--org', 'oak-trust'])).stdout) as Array<{ site: string | null; category: string; keepFor: string }>;
    expect(list.filter((p) => p.category === 'attendance').map((p) => [p.site, p.keepFor])).toEqual([[null, '3y'], ['elm-academy', '1y']]);
    // The reason is on the operator session the event names, not copied into the sealed trail (migration 0022).
    const ev = await db.admin.query(`select s.reason, e.reason as event_reason, e.actor_type from audit_events e join operator_sessions s on s.id = e.operator_session_id
      where e.action = 'retention_policies.insert' and e.org_id = $1 and e.site_id = $2`, [OAK, ELM]);
    expect(ev.rows).toEqual([{ reason: 'Retention schedule 2026', event_reason: null, actor_type: 'operator' }]);
    // Setting it again updates the one policy.
    expect((await cli(['--reason', 'Tighter', 'retention', 'policy', 'set', '--org', 'oak-trust', '--site', 'elm-academy', '--category', 'attendance', '--keep', '2y', '--action', 'delete'])).code).toBe(0);
    expect(await count(`select count(*) as n from retention_policies where org_id = $1 and site_id = $2 and category = 'attendance'`, [OAK, ELM])).toBe(1);
  });

  it('refuses bad input with exit 2 and one line, changing nothing', async () => {
    const before = await count(`select count(*) as n from retention_policies`);
    const cases: Array<[string[], RegExp]> = [
      [['--category', 'attendence', '--keep', '1y', '--action', 'delete'], /unknown retention category "attendence"/],
      [['--category', 'attendance', '--keep', 'a year', '--action', 'delete'], /is not a period/],
      [['--category', 'attendance', '--keep', '1y', '--action', 'shred'], /--action must be one of/],
      [['--category', 'staff_activity', '--keep', '1y', '--action', 'anonymise'], /no personal columns to anonymise/],
      [['--category', 'attendance', '--keep', '1y', '--action', 'delete', '--clock', 'nope'], /--clock nope is not a column of attendance_records/],
      [['--category', 'attendance', '--keep', '1y', '--action', 'delete', '--site', 'nowhere'], /no site "nowhere" in oak-trust/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['--reason', 'x', 'retention', 'policy', 'set', '--org', 'oak-trust', ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').length).toBe(1);
    }
    const noReason = await cli(['retention', 'policy', 'set', '--org', 'oak-trust', '--category', 'notes', '--keep', '1y', '--action', 'delete']);
    expect(noReason.code).toBe(2);
    expect(await count(`select count(*) as n from retention_policies`)).toBe(before);
  });

  it('unsets a site policy: the site falls back to the organisation’s', async () => {
    await cli(['--reason', 'x', 'retention', 'policy', 'set', '--org', 'oak-trust', '--site', 'ash-primary', '--category', 'staff_activity', '--keep', '30d', '--action', 'delete']);
    const r = await cli(['--reason', 'Back to the trust’s schedule', 'retention', 'policy', 'unset', '--org', 'oak-trust', '--site', 'ash-primary', '--category', 'staff_activity']);
    expect(r.code).toBe(0);
    const rows = await plan('2026-12-01T00:00:00Z', ['oak-trust']);
    expect(rows.find((p) => p.site === 'ash-primary' && p.category === 'staff_activity')).toMatchObject({ keepFor: '1y' });
    expect((await cli(['--reason', 'x', 'retention', 'policy', 'unset', '--org', 'oak-trust', '--site', 'ash-primary', '--category', 'staff_activity'])).code).toBe(2);
  });
});

describe('legal holds', () => {
  it('places, lists and releases a hold; a hold needs a scope and a reason', async () => {
    expect((await cli(['--reason', 'x', 'hold', 'add', '--org', 'oak-trust'])).code).toBe(2);
    expect((await cli(['hold', 'add', '--org', 'oak-trust', '--category', 'notes'])).code).toBe(2);
    const r = await cli(['--reason', 'Insurance claim 77', 'hold', 'add', '--org', 'oak-trust', '--site', 'ash-primary', '--category', 'notes']);
    expect(r.code).toBe(0);
    const h = JSON.parse(r.stdout);
    expect(h).toMatchObject({ org: 'oak-trust', site: 'ash-primary', category: 'notes', subjectId: null, releasedAt: null });
    const active = JSON.parse((await cli(['hold', 'list', '--org', 'oak-trust'])).stdout) as Array<{ id: string }>;
    expect(active.map((x) => x.id)).toContain(h.id);
    const rel = await cli(['--reason', 'Claim settled', 'hold', 'release', h.id, '--org', 'oak-trust']);
    expect(rel.code).toBe(0);
    expect(JSON.parse(rel.stdout)).toMatchObject({ releaseReason: 'Claim settled' });
    expect((JSON.parse((await cli(['hold', 'list', '--org', 'oak-trust'])).stdout) as Array<{ id: string }>).map((x) => x.id)).not.toContain(h.id);
    expect((await cli(['--reason', 'again', 'hold', 'release', h.id, '--org', 'oak-trust'])).code).toBe(2);
    expect((await cli(['--reason', 'x', 'hold', 'add', '--org', 'oak-trust', '--subject', demoId('nobody')])).code).toBe(2);
  });
});

describe('the plan', () => {
  const asOf = '2027-06-01T00:00:00Z';

  it('counts what is due and held exactly as an independent query does, and changes nothing', async () => {
    const tables = ['attendance_records', 'staff_activity', 'wellbeing_checkins', 'safeguarding_concerns'];
    const before = await Promise.all(tables.map((t) => count(`select count(*) as n from ${t}`)));
    const rows = await plan(asOf);
    // Elm Academy's own policy (2y delete, from the first test) over the trust's 3y archive; the tribunal hold covers one child.
    const elm = rows.find((r) => r.site === 'elm-academy' && r.category === 'attendance')!;
    const due = await count(`select count(*) as n from attendance_records where org_id = $1 and site_id = $2 and session_date + interval '2 years' <= $3::timestamptz`, [OAK, ELM, asOf]);
    const held = await count(`select count(*) as n from attendance_records where org_id = $1 and site_id = $2 and session_date + interval '2 years' <= $3::timestamptz and child_id = $4`, [OAK, ELM, asOf, HELD_CHILD]);
    expect(elm).toMatchObject({ action: 'delete', keepFor: '2y', due, held, toAct: due - held });
    expect(held).toBeGreaterThan(0);
    // Staff activity at Elm: the same child's rows are held too (child_id names them).
    const act = rows.find((r) => r.site === 'elm-academy' && r.category === 'staff_activity')!;
    expect(act.held).toBe(await count(`select count(*) as n from staff_activity where org_id = $1 and site_id = $2 and occurred_at + interval '1 year' <= $3::timestamptz and child_id = $4`, [OAK, ELM, asOf, HELD_CHILD]));
    expect(act.due).toBe(await count(`select count(*) as n from staff_activity where org_id = $1 and site_id = $2 and occurred_at + interval '1 year' <= $3::timestamptz`, [OAK, ELM, asOf]));
    for (const t of tables) expect(await count(`select count(*) as n from ${t}`)).toBe(before[tables.indexOf(t)]);
  });

  it('anonymise counts only rows not anonymised yet; a subject-derived clock counts from the child’s 25th birthday', async () => {
    const wellbeing = async () => (await plan(asOf)).find((r) => r.site === 'little-acorns-nursery' && r.category === 'wellbeing')!;
    const first = await wellbeing();
    const expected = await count(`select count(*) as n from wellbeing_checkins where org_id = $1 and site_id = $2 and checked_in_at + interval '6 months' <= $3::timestamptz and comment is not null and comment <> '[redacted]'`, [ACORNS, NURSERY, asOf]);
    expect(first.due).toBe(expected);
    await db.admin.query(`update wellbeing_checkins set comment = '[redacted]' where id = (select id from wellbeing_checkins where org_id = $1 and site_id = $2 and comment is not null and checked_in_at + interval '6 months' <= $3::timestamptz order by id limit 1)`, [ACORNS, NURSERY, asOf]);
    expect((await wellbeing()).due).toBe(expected - 1);

    // A concern about a child born 26 years ago is due (keep 0d from the 25th birthday); the nursery's hold on safeguarding keeps it.
    const concern = (await db.admin.query(`select org_id, site_id, child_id from safeguarding_concerns where org_id = $1 limit 1`, [ACORNS])).rows[0];
    await db.admin.query(`insert into retention_policies (org_id, category, keep_for, clock, action) values ($1, 'safeguarding', '0 days', 'child_25th_birthday', 'archive')`, [ACORNS]);
    await db.admin.query(`update children set date_of_birth = current_date - interval '26 years' where org_id = $1 and id = $2`, [ACORNS, concern.child_id]);
    const sg = (await plan(asOf)).find((r) => r.org === 'little-acorns' && r.category === 'safeguarding')!;
    const dueConcerns = await count(`select count(*) as n from safeguarding_concerns where org_id = $1 and child_id = $2`, [ACORNS, concern.child_id]);
    expect(sg).toMatchObject({ due: dueConcerns, held: dueConcerns, toAct: 0 });
    expect(dueConcerns).toBeGreaterThan(0);
  });
});
