// The demo dataset: a trust with three schools, a single nursery, and the
// platform's own support staff; staff of every role, children with
// guardians, caseloads, two years of attendance with corrections, notes of
// each kind, safeguarding concerns, wellbeing check-ins, rota shifts, staff
// activity, media files in a local media store, and the audit events their
// creation leaves. Deterministic: ids are derived from names (md5), dates
// from the anchor date, so two seeds on the same day give the same rows.
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { ClientBase } from 'pg';
import type { Logger } from 'pino';
import { makePrivateDirectory, writePrivateFile } from '../io/private-file.js';
import { encodePng } from './png.js';

export interface DemoSeedResult {
  readonly seeded: boolean;
  readonly anchorDate: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly mediaDir: string;
}

const STRUCTURE_SQL = String.raw`
create or replace function pg_temp.sid(t text) returns uuid language sql immutable
  as $$ select md5('trustctl-demo:' || t)::uuid $$;
create or replace function pg_temp.pick(arr text[], i bigint) returns text language sql immutable
  as $$ select arr[1 + ((i % array_length(arr, 1)) + array_length(arr, 1)) % array_length(arr, 1)] $$;

create temp table demo_sites (org_slug text, slug text, name text, kind text, children int, ord int) on commit drop;
insert into demo_sites values
  ('oak-trust', 'oak-primary', 'Oak Primary School', 'school', 30, 1),
  ('oak-trust', 'ash-primary', 'Ash Primary School', 'school', 24, 2),
  ('oak-trust', 'elm-academy', 'Elm Academy', 'school', 24, 3),
  ('little-acorns', 'little-acorns-nursery', 'Little Acorns Nursery', 'nursery', 14, 4);

insert into organisations (org_id, slug, name, kind) values
  (pg_temp.sid('org:oak-trust'), 'oak-trust', 'Oak Learning Trust', 'trust'),
  (pg_temp.sid('org:little-acorns'), 'little-acorns', 'Little Acorns Nurseries', 'nursery_group'),
  (pg_temp.sid('org:platform'), 'platform', 'Platform Support', 'platform');
-- The platform's organisation is pinned by id (migration 0016), never read from organisations.kind.
insert into platform_settings (key, value, description)
values ('platform_org_id', pg_temp.sid('org:platform')::text,
        'The platform''s own organisation: only its users of kind support can be given access elsewhere. Set by the database owner.')
on conflict (key) do update set value = excluded.value where coalesce(platform_settings.value, '') = '';

insert into sites (org_id, site_id, slug, name, kind)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || slug), slug, name, kind from demo_sites order by ord;

-- Staff: per site a site admin, three teachers, a SENCO, a safeguarding lead, an office manager.
create temp table demo_staff on commit drop as
select ds.org_slug, ds.slug as site_slug, r.role, n,
       pg_temp.sid('staff:' || ds.slug || ':' || r.role || ':' || n) as id,
       pg_temp.pick(array['Amira','Ben','Chloe','Dev','Ellen','Farid','Grace','Hugo','Isla','Jonah','Kemi','Liam','Maya','Nikhil','Orla','Priya','Quinn','Rosa'], ds.ord * 7 + r.ord * 3 + n)
         || ' ' || pg_temp.pick(array['Adeyemi','Brown','Clarke','Davies','Evans','Fletcher','Green','Hughes','Iqbal','Jones','Khan','Lewis','Morgan','Novak','Owen','Patel'], ds.ord * 5 + r.ord * 11 + n) as full_name,
       r.title
from demo_sites ds
cross join (values ('site_admin', 1, 'Headteacher'), ('teacher', 2, 'Class teacher'), ('senco', 3, 'SENCO'),
                   ('safeguarding_lead', 4, 'Designated safeguarding lead'), ('office', 5, 'Office manager')) r(role, ord, title)
cross join lateral generate_series(1, case when r.role = 'teacher' then 3 else 1 end) n;

insert into users (org_id, site_id, id, kind, email, full_name, phone, job_title)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), id, 'staff',
       lower(replace(full_name, ' ', '.')) || '.' || n || '@' || site_slug || '.example.org', full_name,
       '01632 ' || lpad(((abs(hashtext(id::text)) % 900000) + 100000)::text, 6, '0'), title
from demo_staff;

-- Organisation-level staff and the platform's support staff.
insert into users (org_id, site_id, id, kind, email, full_name, job_title) values
  (pg_temp.sid('org:oak-trust'), null, pg_temp.sid('staff:oak-trust:ceo'), 'staff', 'helen.marsh@oak-trust.example.org', 'Helen Marsh', 'Chief executive'),
  (pg_temp.sid('org:oak-trust'), null, pg_temp.sid('staff:oak-trust:dsl'), 'staff', 'sam.okafor@oak-trust.example.org', 'Sam Okafor', 'Trust safeguarding lead'),
  (pg_temp.sid('org:little-acorns'), null, pg_temp.sid('staff:little-acorns:owner'), 'staff', 'jo.whitfield@little-acorns.example.org', 'Jo Whitfield', 'Owner'),
  (pg_temp.sid('org:platform'), null, pg_temp.sid('support:1'), 'support', 'pat.support@platform.example.com', 'Pat Reyes', 'Support engineer'),
  (pg_temp.sid('org:platform'), null, pg_temp.sid('support:2'), 'support', 'lee.support@platform.example.com', 'Lee Moreau', 'Support engineer');

insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, reason)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('ra:' || id::text),
       pg_temp.sid('org:' || org_slug), id, role, now() - interval '3 years', 'Employment'
from demo_staff;
insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, reason) values
  (pg_temp.sid('org:oak-trust'), null, pg_temp.sid('ra:oak-ceo'), pg_temp.sid('org:oak-trust'), pg_temp.sid('staff:oak-trust:ceo'), 'org_admin', now() - interval '3 years', 'Employment'),
  (pg_temp.sid('org:oak-trust'), null, pg_temp.sid('ra:oak-dsl'), pg_temp.sid('org:oak-trust'), pg_temp.sid('staff:oak-trust:dsl'), 'safeguarding_lead', now() - interval '3 years', 'Employment'),
  (pg_temp.sid('org:little-acorns'), null, pg_temp.sid('ra:la-owner'), pg_temp.sid('org:little-acorns'), pg_temp.sid('staff:little-acorns:owner'), 'org_admin', now() - interval '3 years', 'Employment');
-- Support access: one grant that has expired, one awaiting approval.
insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, expires_at, ticket, reason, approval_state) values
  (pg_temp.sid('org:oak-trust'), pg_temp.sid('site:ash-primary'), pg_temp.sid('ra:support-expired'), pg_temp.sid('org:platform'), pg_temp.sid('support:1'),
   'site_admin', now() - interval '10 days', now() - interval '10 days' + interval '2 hours', 'SUP-1041', 'Fix register import', 'not_required'),
  (pg_temp.sid('org:little-acorns'), pg_temp.sid('site:little-acorns-nursery'), pg_temp.sid('ra:support-pending'), pg_temp.sid('org:platform'), pg_temp.sid('support:2'),
   'safeguarding_lead', now(), now() + interval '1 hour', 'SUP-1077', 'Investigate missing concern', 'pending');

-- Access policies: the longest time-boxed grant per role, the roles that need
-- a second operator's approval, and the ticket format.
insert into access_policies (org_id, role, max_duration, sensitive, ticket_pattern)
select o.org_id, p.role, p.max_duration::interval, p.sensitive, '^SUP-[0-9]+$'
from organisations o
cross join (values ('site_admin', '8 hours', false), ('teacher', '8 hours', false), ('senco', '8 hours', false),
  ('office', '8 hours', false), ('safeguarding_lead', '4 hours', true), ('org_admin', '4 hours', true)) p(role, max_duration, sensitive)
where o.kind <> 'platform';

-- Children, with one or two guardians each; some families have siblings.
create temp table demo_children on commit drop as
select ds.org_slug, ds.slug as site_slug, ds.kind as site_kind, i,
       pg_temp.sid('child:' || ds.slug || ':' || i) as id,
       pg_temp.pick(array['Ava','Ben','Cara','Dan','Esme','Finn','Gia','Harry','Ivy','Jack','Kai','Lola','Milo','Nia','Ollie','Poppy','Ravi','Sofia','Theo','Una','Vik','Willow','Yusuf','Zara'], i * 5 + ds.ord)
         || ' ' || pg_temp.pick(array['Ahmed','Baker','Cooper','Dixon','Edwards','Foster','Gray','Hall','Irwin','James','Kelly','Lee','Mills','Nash','Osei','Price','Reid','Shaw','Turner','Walsh'], (i + 1) / 2 + ds.ord * 3) as full_name,
       (current_date - ((case when ds.kind = 'nursery' then 2 else 5 end) * 365 + (i * 37 % 1400)) * interval '1 day')::date as dob,
       (i + 1) / 2 as family
from demo_sites ds cross join lateral generate_series(1, ds.children) i;

insert into children (org_id, site_id, id, full_name, preferred_name, date_of_birth, upn, medical_notes, enrolled_on)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), id, full_name,
       case when i % 4 = 0 then split_part(full_name, ' ', 1) || 'ie' end, dob,
       case when site_kind = 'school' then 'A' || lpad((abs(hashtext(id::text)) % 1000000000000)::text, 12, '0') end,
       case when i % 6 = 0 then 'Asthma: inhaler in the office' when i % 9 = 0 then 'Nut allergy' end,
       (current_date - interval '3 years')::date
from demo_children;

create temp table demo_guardians on commit drop as
select distinct on (site_slug, family, g) org_slug, site_slug, family, g,
       pg_temp.sid('guardian:' || site_slug || ':' || family || ':' || g) as id,
       pg_temp.pick(array['Alex','Bola','Carmen','Darren','Emma','Femi','Gemma','Hassan','Imogen','Jamal','Karen','Leon','Mina','Nadia','Oscar','Paula'], family * 3 + g)
         || ' ' || split_part(full_name, ' ', 2) as full_name
from demo_children cross join generate_series(1, 2) g
where g = 1 or family % 3 <> 0
order by site_slug, family, g;

insert into users (org_id, site_id, id, kind, email, full_name, phone)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), id, 'guardian',
       lower(replace(full_name, ' ', '.')) || '.' || family || g || '@families.example.net', full_name,
       '07700 ' || lpad(((abs(hashtext(id::text)) % 900000) + 100000)::text, 6, '0')
from demo_guardians;

insert into guardianships (org_id, site_id, id, child_id, guardian_id, relationship)
select pg_temp.sid('org:' || c.org_slug), pg_temp.sid('site:' || c.site_slug), pg_temp.sid('gs:' || c.id || ':' || g.id),
       c.id, g.id, case g.g when 1 then 'mother' else 'father' end
from demo_children c join demo_guardians g on g.site_slug = c.site_slug and g.family = c.family;

insert into role_assignments (org_id, site_id, id, user_org_id, user_id, role, starts_at, reason)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('ra:' || id::text),
       pg_temp.sid('org:' || org_slug), id, 'guardian', now() - interval '3 years', 'Parent or carer'
from demo_guardians;

-- Classes taught by the three teachers, plus the SENCO's caseload.
insert into groups (org_id, site_id, id, name, kind)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || slug), pg_temp.sid('group:' || slug || ':' || n),
       case when kind = 'nursery' then 'Room ' || n else 'Class ' || n end, 'class'
from demo_sites cross join generate_series(1, 3) n;
insert into groups (org_id, site_id, id, name, kind)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || slug), pg_temp.sid('group:' || slug || ':senco'), 'SEN caseload', 'caseload'
from demo_sites;

insert into group_memberships (org_id, site_id, id, group_id, staff_id, role)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('gm:' || id),
       pg_temp.sid('group:' || site_slug || ':' || n), id, 'teacher'
from demo_staff where role = 'teacher';
insert into group_memberships (org_id, site_id, id, group_id, staff_id, role)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('gm:' || id),
       pg_temp.sid('group:' || site_slug || ':senco'), id, 'teacher'
from demo_staff where role = 'senco';
insert into group_memberships (org_id, site_id, id, group_id, child_id, role)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('gm:' || id),
       pg_temp.sid('group:' || site_slug || ':' || (1 + i % 3)), id, 'member'
from demo_children;
insert into group_memberships (org_id, site_id, id, group_id, child_id, role)
select pg_temp.sid('org:' || org_slug), pg_temp.sid('site:' || site_slug), pg_temp.sid('gm:senco:' || id),
       pg_temp.sid('group:' || site_slug || ':senco'), id, 'member'
from demo_children where i % 5 = 0;
`;

const ACTIVITY_SQL = String.raw`
create or replace function pg_temp.sid(t text) returns uuid language sql immutable
  as $$ select md5('trustctl-demo:' || t)::uuid $$;

create temp table demo_days on commit drop as
select d::date as day from generate_series(current_date - interval '2 years', current_date - interval '1 day', interval '1 day') d
where extract(isodow from d) < 6;

-- Two years of registers, am and pm, taken by the class teacher.
insert into attendance_records (org_id, site_id, id, child_id, session_date, session, status, recorded_by, recorded_at)
select c.org_id, c.site_id, pg_temp.sid('att:' || c.id || ':' || d.day || ':' || s.session), c.id, d.day, s.session,
       case when h % 97 = 0 then 'unauthorised_absence' when h % 23 = 0 then 'authorised_absence' when h % 31 = 0 then 'late' else 'present' end,
       t.staff_id, d.day + (case s.session when 'am' then time '08:55' else time '13:05' end)
from children c
join group_memberships m on m.org_id = c.org_id and m.child_id = c.id and m.role = 'member'
join groups g on g.org_id = m.org_id and g.id = m.group_id and g.kind = 'class'
join group_memberships t on t.org_id = g.org_id and t.group_id = g.id and t.role = 'teacher'
cross join demo_days d
cross join (values ('am'), ('pm')) s(session)
cross join lateral (select abs(hashtext(c.id::text || d.day::text || s.session)) as h) hh;

-- Corrections: a later record pointing at the one it corrects.
insert into attendance_records (org_id, site_id, id, child_id, session_date, session, status, recorded_by, recorded_at, corrects_id, correction_reason)
select a.org_id, a.site_id, pg_temp.sid('attfix:' || a.id), a.child_id, a.session_date, a.session, 'authorised_absence',
       a.recorded_by, a.recorded_at + interval '1 day', a.id, 'Parent phoned in: medical appointment'
from attendance_records a where a.status = 'unauthorised_absence' and abs(hashtext(a.id::text)) % 3 = 0;

insert into notes (org_id, site_id, id, child_id, author_id, kind, body, guardian_visible, created_at)
select c.org_id, c.site_id, pg_temp.sid('note:' || c.id || ':' || n), c.id, t.staff_id,
       case when n = 4 and abs(hashtext(c.id::text)) % 4 = 0 then 'sensitive' when n % 2 = 0 then 'general' else 'positive' end,
       case when n = 4 and abs(hashtext(c.id::text)) % 4 = 0 then 'Disclosed worries at home; spoke to DSL.'
            when n % 2 = 0 then 'Settling well; working on reading fluency.' else 'Star of the week for kindness.' end,
       n % 2 = 1, now() - (n * 40 || ' days')::interval
from children c
join group_memberships m on m.org_id = c.org_id and m.child_id = c.id and m.role = 'member'
join groups g on g.org_id = m.org_id and g.id = m.group_id and g.kind = 'class'
join group_memberships t on t.org_id = g.org_id and t.group_id = g.id and t.role = 'teacher'
cross join generate_series(1, 4) n;

insert into safeguarding_concerns (org_id, site_id, id, child_id, reported_by, category, description, status, occurred_at)
select c.org_id, c.site_id, pg_temp.sid('sg:' || c.id), c.id, dsl.id,
       (array['neglect','emotional','online','other'])[1 + abs(hashtext(c.id::text)) % 4],
       'Concern recorded after a conversation with the child.', 'monitoring', now() - interval '90 days'
from children c
join users dsl on dsl.org_id = c.org_id and dsl.site_id = c.site_id and dsl.job_title = 'Designated safeguarding lead'
where abs(hashtext(c.id::text)) % 8 = 0;

insert into wellbeing_checkins (org_id, site_id, id, child_id, mood, comment, recorded_by, checked_in_at)
select c.org_id, c.site_id, pg_temp.sid('wb:' || c.id || ':' || m), c.id, 1 + abs(hashtext(c.id::text || m)) % 5,
       case when m % 4 = 0 then 'Talked about friendships.' end, null, now() - (m * 30 || ' days')::interval
from children c cross join generate_series(1, 12) m;

insert into rota_shifts (org_id, site_id, id, staff_id, starts_at, ends_at, duty)
select u.org_id, u.site_id, pg_temp.sid('rota:' || u.id || ':' || w), u.id,
       date_trunc('week', now()) - (w || ' weeks')::interval + interval '8 hours',
       date_trunc('week', now()) - (w || ' weeks')::interval + interval '9 hours',
       (array['gate','lunch','playground'])[1 + w % 3]
from users u cross join generate_series(0, 7) w
where u.kind = 'staff' and u.site_id is not null;

insert into staff_activity (org_id, site_id, id, staff_id, action, child_id, occurred_at)
select u.org_id, u.site_id, pg_temp.sid('act:' || u.id || ':' || n), u.id,
       (array['viewed_record','took_register','wrote_note','viewed_photo'])[1 + n % 4],
       (select c.id from children c where c.org_id = u.org_id and c.site_id = u.site_id order by c.id offset (n % 10) limit 1),
       now() - (n * 3 || ' days')::interval
from users u cross join generate_series(1, 20) n
where u.kind = 'staff' and u.site_id is not null;

insert into retention_policies (org_id, id, category, keep_for, clock, action) values
  (pg_temp.sid('org:oak-trust'), pg_temp.sid('rp:oak:attendance'), 'attendance', interval '3 years', 'session_date', 'archive'),
  (pg_temp.sid('org:oak-trust'), pg_temp.sid('rp:oak:staff_activity'), 'staff_activity', interval '1 year', 'occurred_at', 'delete'),
  (pg_temp.sid('org:oak-trust'), pg_temp.sid('rp:oak:safeguarding'), 'safeguarding', interval '0 days', 'child_25th_birthday', 'archive'),
  (pg_temp.sid('org:little-acorns'), pg_temp.sid('rp:la:wellbeing'), 'wellbeing', interval '6 months', 'checked_in_at', 'anonymise');

insert into legal_holds (org_id, site_id, id, subject_id, category, reason)
values (pg_temp.sid('org:oak-trust'), pg_temp.sid('site:elm-academy'), pg_temp.sid('hold:elm:1'),
        pg_temp.sid('child:elm-academy:8'), null, 'Tribunal case 2026/114: preserve all records'),
       (pg_temp.sid('org:little-acorns'), pg_temp.sid('site:little-acorns-nursery'), pg_temp.sid('hold:la:1'),
        null, 'safeguarding', 'Local authority review: keep all safeguarding records');

-- History: last year's retention run and the erasure of a pupil who left.
insert into retention_runs (org_id, id, category, status, cutoff, counts, started_at, finished_at)
values (pg_temp.sid('org:oak-trust'), pg_temp.sid('run:1'), 'staff_activity', 'completed', now() - interval '2 years',
        '{"swept": 0, "held": 0}', now() - interval '1 year', now() - interval '1 year' + interval '4 seconds'),
       (pg_temp.sid('org:little-acorns'), pg_temp.sid('run:2'), 'wellbeing', 'completed', now() - interval '18 months',
        '{"swept": 0, "held": 0}', now() - interval '1 year', now() - interval '1 year' + interval '2 seconds');
insert into erasures (org_id, site_id, id, subject_id, subject_type, erased_at, counts)
values (pg_temp.sid('org:little-acorns'), pg_temp.sid('site:little-acorns-nursery'), pg_temp.sid('erasure:1'),
        pg_temp.sid('child:little-acorns-nursery:former'), 'child', now() - interval '200 days', '{"children": {"anonymise": 1}}'),
       (pg_temp.sid('org:oak-trust'), pg_temp.sid('site:ash-primary'), pg_temp.sid('erasure:2'),
        pg_temp.sid('child:ash-primary:former'), 'child', now() - interval '400 days', '{"children": {"anonymise": 1}}');

insert into dsar_requests (org_id, site_id, id, reference, subject_type, subject_id, received_on, due_on)
values (pg_temp.sid('org:oak-trust'), pg_temp.sid('site:oak-primary'), pg_temp.sid('dsar:1'), 'DSAR-2026-001', 'child',
        -- A child with a safeguarding record, so the demo bundle shows what is withheld pending review.
        (select c.id from children c join sites s on s.org_id = c.org_id and s.site_id = c.site_id and s.slug = 'oak-primary'
          where exists (select 1 from safeguarding_concerns x where x.org_id = c.org_id and x.child_id = c.id)
          order by c.full_name, c.id limit 1),
        current_date - 10, (current_date - 10 + interval '1 month')::date),
       (pg_temp.sid('org:little-acorns'), pg_temp.sid('site:little-acorns-nursery'), pg_temp.sid('dsar:2'), 'LA-SAR-7', 'guardian',
        pg_temp.sid('guardian:little-acorns-nursery:2:1'), current_date - 3, (current_date - 3 + interval '1 month')::date);
`;

/** HSL (degrees, 0–1, 0–1) to 8-bit RGB. */
function hsl(h: number, s: number, l: number): [number, number, number] {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))));
  return [f(0), f(8), f(4)];
}

/** A small PNG "drawing" for a child (a circle on a coloured ground), deterministic from its id. */
function demoImage(childId: string, n: number): Buffer {
  const hue = (parseInt(childId.slice(0, 2), 16) + n * 40) % 360;
  const ground = hsl(hue, 0.6, 0.8);
  const ink = hsl((hue + 120) % 360, 0.6, 0.5);
  const cx = 30 + n * 30;
  return encodePng(120, 80, (x, y) => ((x - cx) ** 2 + (y - 40) ** 2 <= 18 ** 2 ? ink : ground));
}

/**
 * Seeds the demo dataset with an administrative connection, in one
 * transaction. Does nothing when the demo organisations already exist.
 *
 * @example
 * await seedDemo(adminClient, { mediaDir: '/tmp/media', logger })
 */
export async function seedDemo(
  client: ClientBase,
  { mediaDir, logger }: { mediaDir: string; logger: Logger },
): Promise<DemoSeedResult> {
  const existing = await client.query('select 1 from organisations where slug = $1', ['oak-trust']);
  const anchor = await client.query<{ d: string }>(`select current_date::text as d`);
  const anchorDate = anchor.rows[0]!.d;
  if (existing.rowCount) {
    return { seeded: false, anchorDate, counts: await countRows(client), mediaDir };
  }
  await client.query('begin');
  try {
    logger.info('seeding demo organisations, people and groups');
    await client.query(STRUCTURE_SQL);
    logger.info('seeding two years of activity');
    await client.query(ACTIVITY_SQL);

    logger.info({ mediaDir }, 'writing demo media files');
    const children = await client.query<{ org_id: string; site_id: string; id: string; uploader: string }>(`
      select c.org_id, c.site_id, c.id,
        (select u.id from users u where u.org_id = c.org_id and u.site_id = c.site_id and u.kind = 'staff' order by u.id limit 1) as uploader
      from children c order by c.id`);
    for (const child of children.rows) {
      for (let n = 1; n <= 2; n++) {
        const bytes = demoImage(child.id, n);
        const key = `${child.org_id}/${child.site_id}/${child.id}/drawing-${n}.png`;
        const file = join(mediaDir, key);
        await makePrivateDirectory(dirname(file));
        await writePrivateFile(file, bytes);
        await client.query(
          `insert into media_files (org_id, site_id, id, child_id, uploaded_by, storage_key, content_type, size_bytes, sha256, caption, created_at)
           values ($1, $2, md5('trustctl-demo:media:' || $3::text || ':' || $4::text)::uuid, $3::uuid, $5, $6,
                   'image/png', $7, $8, $9, now() - ($4::text || ' months')::interval)`,
          [
            child.org_id,
            child.site_id,
            child.id,
            n,
            child.uploader,
            key,
            bytes.length,
            createHash('sha256').update(bytes).digest('hex'),
            n === 1 ? 'Drawing: my family' : 'Drawing: our garden',
          ],
        );
      }
    }
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
  // Planner statistics for the new rows now, rather than whenever autovacuum
  // gets round to it: jobs that run straight after seeding (the demo, seal)
  // otherwise get plans made for empty tables.
  await client.query('analyze');
  return { seeded: true, anchorDate, counts: await countRows(client), mediaDir };
}

/** Row counts of every tenant table, by table name. */
export async function countRows(client: ClientBase): Promise<Record<string, number>> {
  const tables = await client.query<{ relname: string }>(`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id')
    order by c.relname`);
  const counts: Record<string, number> = {};
  for (const { relname } of tables.rows) {
    const res = await client.query<{ n: string }>(`select count(*) as n from public.${client.escapeIdentifier(relname)}`);
    counts[relname] = Number(res.rows[0]!.n);
  }
  return counts;
}
