// The scale dataset: many organisations and sites of uneven size, children
// with their guardians, staff, classes, up to two years of registers (each
// child from the day they enrolled), notes, safeguarding concerns, wellbeing
// check-ins, rotas, staff activity and the audit events such activity
// leaves; generated with set-based SQL (generate_series) in one transaction,
// sized to a target row count. Deterministic: the same seed, size and anchor
// date give the same rows (ids are the seed's prefix and a counter, which
// also keeps index inserts in order). Row triggers are skipped
// (session_replication_role = replica), as a bulk load would: the audit
// events are generated with the data, not captured one by one, and the
// organisations' erasure keys are created here (random, as the trigger's).
import type { ClientBase } from 'pg';
import { RefusedError } from '../errors.js';
import { countRows } from './demo.js';

export interface ScaleSeedResult {
  readonly seeded: boolean;
  readonly seed: number;
  readonly target: number;
  readonly anchorDate: string;
  readonly organisations: number;
  readonly sites: number;
  readonly children: number;
  /** Rows the scale seed added, per table. */
  readonly added: Readonly<Record<string, number>>;
  readonly seconds: number;
}

export interface ScaleProgress {
  readonly step: string;
  /** Steps still to run. */
  readonly stepsLeft: number;
  readonly seconds: number;
}

/**
 * Parses a size: `250k`, `1m`, `10m`, or a plain number of rows.
 *
 * @example
 * parseScale('10m') // 10_000_000
 */
export function parseScale(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(value.trim());
  const n = m ? Math.round(Number(m[1]) * ({ k: 1e3, m: 1e6 }[m[2]!.toLowerCase() as 'k' | 'm'] ?? 1)) : NaN;
  if (!Number.isFinite(n) || n < 10_000 || n > 500_000_000) {
    throw new RefusedError(`--scale "${value}" is not a size from 10k to 500m rows`, 'Use e.g. 1m or 10m');
  }
  return n;
}

/** A small deterministic PRNG (mulberry32), so sizes follow from the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// About how many rows each child brings: up to two years of registers (am
// and pm, from enrolment, most children enrolled before the window), notes,
// check-ins, guardians and their grants, a share of staff and their rotas and
// activity, and the audit events. Measured on the generator's output (1m).
export const ROWS_PER_CHILD = 930;

interface Site {
  readonly org: number;
  readonly site: number;
  readonly kind: 'school' | 'nursery';
  readonly children: number;
}

/** Sites of uneven size (most small, a few large: 40 to 560 children) grouped into organisations of 1 to 16 sites (most have few). */
export function planSites(target: number, seed: number): { sites: Site[]; organisations: number } {
  const rnd = prng(seed);
  const wanted = Math.max(1, Math.round(target / ROWS_PER_CHILD));
  const sites: Site[] = [];
  let org = 0;
  let left = 0;
  let kind: Site['kind'] = 'school';
  let total = 0;
  while (total < wanted) {
    if (left === 0) {
      org += 1;
      kind = rnd() < 0.2 ? 'nursery' : 'school';
      left = kind === 'nursery' ? 1 + Math.floor(rnd() * 4) : 1 + Math.floor(rnd() ** 4 * 16);
    }
    const r = rnd();
    const size = kind === 'nursery' ? 20 + Math.floor(r * 60) : 40 + Math.floor(r * r * 520);
    const children = Math.min(size, wanted - total);
    sites.push({ org, site: sites.length + 1, kind, children });
    total += children;
    left -= 1;
  }
  return { sites, organisations: org };
}

const STEPS: ReadonlyArray<{ step: string; sql: string }> = [
  {
    step: 'organisations and sites',
    sql: `
insert into organisations (org_id, slug, name, kind)
select distinct pg_temp.uid(1, org), 'scale-' || $seed || '-' || org, 'Scale ' || initcap(kind) || ' Group ' || org,
       case when kind = 'nursery' then 'nursery_group' else 'trust' end
from scale_sites;
-- Row triggers are off: create what the organisations triggers would (the erasure pseudonym and certificate keys).
insert into trustctl_private.pseudonym_keys (org_id, key)
select distinct pg_temp.uid(1, org), uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
from scale_sites on conflict do nothing;
insert into trustctl_private.erasure_certificate_keys (org_id, key)
select distinct pg_temp.uid(1, org), uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
from scale_sites on conflict do nothing;
insert into sites (org_id, site_id, slug, name, kind)
select pg_temp.uid(1, org), pg_temp.uid(2, site), 'site-' || site, 'Scale ' || initcap(kind) || ' ' || site, kind from scale_sites;
insert into access_policies (org_id, role, max_duration, sensitive, ticket_pattern)
select distinct pg_temp.uid(1, s.org), p.role, p.max_duration::interval, p.sensitive, '^SUP-[0-9]+$'
from scale_sites s cross join (values ('site_admin', '8 hours', false), ('teacher', '8 hours', false),
  ('safeguarding_lead', '4 hours', true), ('org_admin', '4 hours', true)) p(role, max_duration, sensitive);`,
  },
  {
    step: 'children',
    sql: `
-- Most children joined before the two years of registers; one in 25 has left.
-- Everything about a child falls between enrolled and ended (left_on, or the anchor).
create temp table scale_children on commit drop as
select e.*, e.enrolled + (case when e.g % 25 = 0 then (e.anchor - e.enrolled) * (5 + e.g * 7 % 90) / 100
                                else e.anchor - e.enrolled end)::int as ended
from (select w.*, $anchor::date as anchor, $anchor::date - (1 + w.g * 53 % 1800)::int as enrolled
      from (select s.org, s.site, s.kind, s.classes, c.n, sum(1) over (order by s.site, c.n) as g
            from scale_sites s cross join lateral generate_series(1, s.children) c(n)) w) e;
insert into children (org_id, site_id, id, full_name, preferred_name, date_of_birth, upn, medical_notes, enrolled_on, left_on)
select pg_temp.uid(1, org), pg_temp.uid(2, site), pg_temp.uid(3, g),
       pg_temp.spick(array['Ava','Ben','Cara','Dan','Esme','Finn','Gia','Harry','Ivy','Jack','Kai','Lola','Milo','Nia','Ollie','Poppy','Ravi','Sofia','Theo','Una','Vik','Willow','Yusuf','Zara'], g * 7)
         || ' ' || pg_temp.spick(array['Ahmed','Baker','Cooper','Dixon','Edwards','Foster','Gray','Hall','Irwin','James','Kelly','Lee','Mills','Nash','Osei','Price','Reid','Shaw','Turner','Walsh'], g * 13 + site),
       case when g % 4 = 0 then pg_temp.spick(array['Avie','Benji','Cece','Danny'], g) end,
       enrolled - (case when kind = 'nursery' then 180 + g * 37 % 500 else 4 * 365 + g * 37 % 1500 end)::int,
       case when kind = 'school' then 'S' || lpad(g::text, 12, '0') end,
       case when g % 6 = 0 then 'Asthma: inhaler in the office' when g % 9 = 0 then 'Nut allergy' end,
       enrolled, case when g % 25 = 0 then ended end
from scale_children;`,
  },
  {
    step: 'staff and guardians',
    sql: `
create temp table scale_staff on commit drop as
select s.org, s.site, r.role, r.n, row_number() over (order by s.site, r.role, r.n) as g
from scale_sites s cross join lateral (
  select 'teacher' as role, n from generate_series(1, s.classes) n
  union all select x.role, 1 from unnest(array['site_admin', 'safeguarding_lead', 'office', 'senco']) x(role)) r;
insert into users (org_id, site_id, id, kind, email, full_name, phone, job_title)
select pg_temp.uid(1, org), pg_temp.uid(2, site), pg_temp.uid(4, g), 'staff', 'staff' || g || '@site-' || site || '.example.org',
       pg_temp.spick(array['Amira','Ben','Chloe','Dev','Ellen','Farid','Grace','Hugo','Isla','Jonah','Kemi','Liam'], g)
         || ' ' || pg_temp.spick(array['Adeyemi','Brown','Clarke','Davies','Evans','Fletcher','Green','Hughes','Iqbal','Jones'], g * 3),
       '01632 ' || lpad((100000 + g % 900000)::text, 6, '0'),
       case role when 'teacher' then 'Class teacher' when 'site_admin' then 'Headteacher' when 'senco' then 'SENCO'
                 when 'safeguarding_lead' then 'Designated safeguarding lead' else 'Office manager' end
from scale_staff;
insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, reason)
select pg_temp.uid(1, org), pg_temp.uid(2, site), pg_temp.uid(5, g), pg_temp.uid(1, org), pg_temp.uid(4, g), role,
       $anchor::date - interval '3 years', 'Employment'
from scale_staff;
-- One or two guardians per child (g = 1 always, g = 2 for two in three).
insert into users (org_id, site_id, id, kind, email, full_name, phone)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(6, c.g * 2 + k - 1), 'guardian',
       'parent' || (c.g * 2 + k - 1) || '@families.example.net',
       pg_temp.spick(array['Alex','Bola','Carmen','Darren','Emma','Femi','Gemma','Hassan','Imogen','Jamal'], c.g * 3 + k) || ' '
         || pg_temp.spick(array['Ahmed','Baker','Cooper','Dixon','Edwards','Foster','Gray','Hall','Irwin','James','Kelly','Lee','Mills','Nash','Osei','Price','Reid','Shaw','Turner','Walsh'], c.g * 13 + c.site),
       '07700 ' || lpad((100000 + (c.g * 2 + k) % 900000)::text, 6, '0')
from scale_children c cross join generate_series(1, 2) k where k = 1 or c.g % 3 <> 0;
insert into guardianships (org_id, site_id, id, child_id, guardian_id, relationship)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(7, c.g * 2 + k - 1), pg_temp.uid(3, c.g), pg_temp.uid(6, c.g * 2 + k - 1),
       case k when 1 then 'mother' else 'father' end
from scale_children c cross join generate_series(1, 2) k where k = 1 or c.g % 3 <> 0;
insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, reason)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(8, c.g * 2 + k - 1), pg_temp.uid(1, c.org), pg_temp.uid(6, c.g * 2 + k - 1),
       'guardian', $anchor::date - interval '3 years', 'Parent or carer'
from scale_children c cross join generate_series(1, 2) k where k = 1 or c.g % 3 <> 0;`,
  },
  {
    step: 'classes',
    sql: `
insert into groups (org_id, site_id, id, name, kind)
select pg_temp.uid(1, s.org), pg_temp.uid(2, s.site), pg_temp.uid(9, s.site * 100 + n), 'Class ' || n, 'class'
from scale_sites s cross join lateral generate_series(1, s.classes) n;
insert into group_memberships (org_id, site_id, id, group_id, staff_id, role)
select pg_temp.uid(1, org), pg_temp.uid(2, site), pg_temp.uid(10, g), pg_temp.uid(9, site * 100 + n), pg_temp.uid(4, g), 'teacher'
from scale_staff where role = 'teacher';
insert into group_memberships (org_id, site_id, id, group_id, child_id, role)
select pg_temp.uid(1, org), pg_temp.uid(2, site), pg_temp.uid(11, g), pg_temp.uid(9, site * 100 + 1 + (n - 1) % classes), pg_temp.uid(3, g), 'member'
from scale_children;`,
  },
  {
    step: 'registers',
    sql: `
create temp table scale_days on commit drop as
select d::date as day from generate_series($anchor::date - interval '730 days', $anchor::date - interval '1 day', interval '1 day') d
where extract(isodow from d) < 6;
create temp table scale_teacher on commit drop as
select site * 100 + n as class_key, g as staff_g from scale_staff where role = 'teacher';
insert into attendance_records (org_id, site_id, id, child_id, session_date, session, status, recorded_by, recorded_at)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(12, c.g * 2000 + (d.day - ($anchor::date - 730)) * 2 + s.k),
       pg_temp.uid(3, c.g), d.day, case s.k when 0 then 'am' else 'pm' end,
       case when h % 97 = 0 then 'unauthorised_absence' when h % 23 = 0 then 'authorised_absence' when h % 31 = 0 then 'late' else 'present' end,
       pg_temp.uid(4, t.staff_g), d.day + (case s.k when 0 then time '08:55' else time '13:05' end)
from scale_children c
join scale_teacher t on t.class_key = c.site * 100 + 1 + (c.n - 1) % c.classes
join scale_days d on d.day >= c.enrolled and d.day < c.ended
cross join (values (0), (1)) s(k)
cross join lateral (select (c.g * 7919 + (d.day - date '2000-01-01') * 31 + s.k * 17) % 9973 as h) hh;
insert into attendance_records (org_id, site_id, id, child_id, session_date, session, status, recorded_by, recorded_at, corrects_id, correction_reason)
select a.org_id, a.site_id, pg_temp.uid(13, row_number() over (order by a.id)), a.child_id, a.session_date, a.session, 'authorised_absence',
       a.recorded_by, a.recorded_at + interval '1 day', a.id, 'Parent phoned in: medical appointment'
from attendance_records a
where a.org_id in (select pg_temp.uid(1, org) from scale_sites) and a.status = 'unauthorised_absence' and a.id::text like '%0';`,
  },
  {
    step: 'notes, concerns, check-ins',
    sql: `
insert into notes (org_id, site_id, id, child_id, author_id, kind, body, guardian_visible, created_at)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(14, c.g * 8 + k), pg_temp.uid(3, c.g), pg_temp.uid(4, t.staff_g),
       case when k = 4 and c.g % 4 = 0 then 'sensitive' when k % 2 = 0 then 'general' else 'positive' end,
       case when k = 4 and c.g % 4 = 0 then 'Disclosed worries at home; spoke to DSL.'
            when k % 2 = 0 then 'Settling well; working on reading fluency.' else 'Star of the week for kindness.' end,
       k % 2 = 1, c.enrolled + (c.ended - c.enrolled) * k / 5
from scale_children c
join scale_teacher t on t.class_key = c.site * 100 + 1 + (c.n - 1) % c.classes
cross join generate_series(1, 4) x(k);
insert into safeguarding_concerns (org_id, site_id, id, child_id, reported_by, category, description, status, occurred_at)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(15, c.g), pg_temp.uid(3, c.g), pg_temp.uid(4, s.g),
       (array['neglect','emotional','online','other'])[1 + c.g % 4], 'Concern recorded after a conversation with the child.', 'monitoring',
       c.enrolled + (c.ended - c.enrolled) / 2
from scale_children c join scale_staff s on s.site = c.site and s.role = 'safeguarding_lead'
where c.g % 8 = 0;
insert into wellbeing_checkins (org_id, site_id, id, child_id, mood, comment, recorded_by, checked_in_at)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), pg_temp.uid(16, c.g * 16 + m), pg_temp.uid(3, c.g), 1 + (c.g + m) % 5,
       case when m % 4 = 0 then 'Talked about friendships.' end, null, c.enrolled + (c.ended - c.enrolled) * m / 7
from scale_children c cross join generate_series(1, 6) m;`,
  },
  {
    step: 'rotas and staff activity',
    sql: `
insert into rota_shifts (org_id, site_id, id, staff_id, starts_at, ends_at, duty)
select pg_temp.uid(1, s.org), pg_temp.uid(2, s.site), pg_temp.uid(17, s.g * 16 + w), pg_temp.uid(4, s.g),
       date_trunc('week', $anchor::date) - (w || ' weeks')::interval + interval '8 hours',
       date_trunc('week', $anchor::date) - (w || ' weeks')::interval + interval '9 hours',
       (array['gate','lunch','playground'])[1 + w % 3]
from scale_staff s cross join generate_series(0, 7) w;
insert into staff_activity (org_id, site_id, id, staff_id, action, child_id, occurred_at)
select pg_temp.uid(1, s.org), pg_temp.uid(2, s.site), pg_temp.uid(18, s.g * 32 + k), pg_temp.uid(4, s.g),
       (array['viewed_record','took_register','wrote_note','viewed_photo'])[1 + k % 4],
       pg_temp.uid(3, sc.g0 + (s.g * 7 + k) % sc.cnt),
       $anchor::date - (k * 3) * interval '1 day'
from scale_staff s
join (select site, min(g) as g0, count(*) as cnt from scale_children group by site) sc on sc.site = s.site
cross join generate_series(1, 20) x(k);`,
  },
  {
    step: 'audit events',
    sql: `
-- What the platform's capture would have recorded: about one event per
-- eight register entries (edits, corrections, reads of records), each
-- naming the child and the member of staff.
insert into audit_events (org_id, site_id, occurred_at, actor_type, actor_id, action, target_type, target_id, subject_ids, context)
select pg_temp.uid(1, c.org), pg_temp.uid(2, c.site), c.enrolled + ((c.g * 31 + e * 7) % greatest(1, c.ended - c.enrolled))::int + (e % 600) * interval '1 minute',
       'user', pg_temp.uid(4, t.staff_g)::text,
       (array['attendance_records.update','notes.insert','children.read','attendance_records.insert'])[1 + e % 4],
       (array['attendance_records','notes','children','attendance_records'])[1 + e % 4], pg_temp.uid(19, c.g * 1000 + e)::text,
       array[pg_temp.uid(3, c.g), pg_temp.uid(4, t.staff_g)], '{"changed": ["status"]}'
from scale_children c
join scale_teacher t on t.class_key = c.site * 100 + 1 + (c.n - 1) % c.classes
cross join lateral generate_series(1, greatest(1, least(c.ended - c.enrolled, 730) * 10 / 56)) e;`,
  },
];

/** Refuses (exit 2) a connection that cannot load with row triggers off. */
export async function assertSuperuser(client: ClientBase): Promise<void> {
  const su = await client.query<{ ok: boolean }>(`select rolsuper as ok from pg_roles where rolname = current_user`);
  if (!su.rows[0]?.ok) {
    throw new RefusedError(
      'db seed --scale needs a superuser connection (it bulk-loads with row triggers off)',
      'Use the embedded database, or an administrative DATABASE_URL',
    );
  }
}

/**
 * Adds the scale dataset through an administrative (superuser) connection,
 * in one transaction; does nothing if scale data is already there.
 *
 * @example
 * await seedScale(client, { rows: 1_000_000, seed: 1, anchorDate: '2026-11-26' })
 */
export async function seedScale(
  client: ClientBase,
  input: { readonly rows: number; readonly seed: number; readonly anchorDate: string; readonly onProgress?: (p: ScaleProgress) => void },
): Promise<ScaleSeedResult> {
  const t0 = performance.now();
  const existing = await client.query<{ n: string }>(`select count(*) as n from organisations where slug like 'scale-%'`);
  const plan = planSites(input.rows, input.seed);
  const base = {
    seed: input.seed,
    target: input.rows,
    anchorDate: input.anchorDate,
    organisations: plan.organisations,
    sites: plan.sites.length,
    children: plan.sites.reduce((n, s) => n + s.children, 0),
  };
  if (Number(existing.rows[0]!.n) > 0) {
    return { ...base, seeded: false, added: {}, seconds: (performance.now() - t0) / 1000 };
  }
  await assertSuperuser(client);
  const before = await countRows(client);
  const prefix = BigInt(input.seed).toString(16).padStart(8, '0').slice(-8);
  await client.query('begin');
  try {
    await client.query(`set local session_replication_role = replica`);
    // Dates and times in UTC whatever the server's zone, so the same seed gives the same rows.
    await client.query(`set local timezone = 'UTC'`);
    await client.query(`set local synchronous_commit = off`);
    await client.query(`set local work_mem = '256MB'`);
    // ids: 'cafe' + the seed + the kind + a counter, so inserts land in index order.
    await client.query(`create function pg_temp.uid(kind int, n bigint) returns uuid language sql immutable
      as $$ select ('cafe${prefix}' || lpad(to_hex(kind), 4, '0') || lpad(to_hex(n), 16, '0'))::uuid $$`);
    await client.query(`create function pg_temp.spick(arr text[], i bigint) returns text language sql immutable
      as $$ select arr[1 + (i % array_length(arr, 1))::int] $$`);
    await client.query(`create temp table scale_sites (org int, site int, kind text, children int, classes int) on commit drop`);
    await client.query(
      `insert into scale_sites select o, s, k, c, greatest(1, ceil(c / 25.0))::int
       from unnest($1::int[], $2::int[], $3::text[], $4::int[]) x(o, s, k, c)`,
      [plan.sites.map((s) => s.org), plan.sites.map((s) => s.site), plan.sites.map((s) => s.kind), plan.sites.map((s) => s.children)],
    );
    let done = 0;
    for (const step of STEPS) {
      const text = step.sql.replaceAll('$seed', String(input.seed)).replaceAll('$anchor', `'${input.anchorDate}'`);
      await client.query(text);
      done += 1;
      input.onProgress?.({ step: step.step, stepsLeft: STEPS.length - done, seconds: (performance.now() - t0) / 1000 });
    }
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
  await client.query('analyze');
  const after = await countRows(client);
  const added = Object.fromEntries(Object.entries(after).map(([t, n]) => [t, n - (before[t] ?? 0)]).filter(([, n]) => Number(n) > 0));
  return { ...base, seeded: true, added, seconds: (performance.now() - t0) / 1000 };
}
