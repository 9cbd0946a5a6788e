-- The reference schema of the platform. Every tenant table carries org_id
-- (the organisation: a trust or group of sites, and the distribution column)
-- and, except organisations itself, site_id (the school: the tenant
-- boundary; null only for organisation-level rows). org_id leads every
-- primary, unique and foreign key between tenant tables; references to
-- site-scoped rows carry site_id too, so a row of site A cannot point at a
-- row of site B.
set local role trustctl_owner;

-- Platform-wide settings read by the operator-session functions.
create table platform_settings (
  key text primary key,
  value text not null,
  description text not null
);
insert into platform_settings (key, value, description) values
  ('operator_session_max_age', '8 hours', 'An operator session stops being honoured this long after it starts.'),
  ('ticket_required', 'false', 'When true, every operator session needs a ticket reference.'),
  ('ticket_pattern', '', 'When non-empty, a POSIX regular expression every ticket must match.');

create table organisations (
  org_id uuid primary key default gen_random_uuid(),
  slug text not null,
  name text not null,
  kind text not null check (kind in ('trust', 'nursery_group', 'care_provider', 'platform')),
  created_at timestamptz not null default now(),
  constraint organisations_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$')
);
-- slug is the organisation's public handle; org_id leads as elsewhere.
create unique index organisations_slug_key on organisations (slug);

create table sites (
  org_id uuid not null references organisations (org_id),
  site_id uuid not null default gen_random_uuid(),
  slug text not null,
  name text not null,
  kind text not null check (kind in ('school', 'nursery', 'care_setting', 'office')),
  created_at timestamptz not null default now(),
  primary key (org_id, site_id),
  unique (org_id, slug),
  constraint sites_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$')
);

create table users (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  kind text not null check (kind in ('staff', 'guardian', 'support')),
  email text not null,
  full_name text not null,
  phone text,
  date_of_birth date,
  job_title text,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);
create unique index users_email_key on users (org_id, lower(email));
create index users_site_idx on users (org_id, site_id);

-- A role held by a user at a site (site_id null: organisation-wide). Support
-- staff are users of the platform organisation; their grants name them with
-- user_org_id, the one deliberate cross-organisation reference in the schema.
create table role_assignments (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  user_org_id uuid not null,
  user_id uuid not null,
  role text not null check (role in ('org_admin', 'site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office', 'guardian')),
  starts_at timestamptz not null default now(),
  expires_at timestamptz,
  ticket text,
  reason text,
  granted_by_session uuid,
  approval_state text not null default 'not_required'
    check (approval_state in ('not_required', 'pending', 'approved', 'denied')),
  approved_by text,
  approved_at timestamptz,
  revoked_at timestamptz,
  revoked_by text,
  revoke_reason text,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  foreign key (user_org_id, user_id) references users (org_id, id),
  constraint role_assignments_window check (expires_at is null or expires_at > starts_at),
  constraint role_assignments_org_admin_scope check (role <> 'org_admin' or site_id is null),
  constraint role_assignments_site_scope check (role in ('org_admin', 'safeguarding_lead') or site_id is not null)
);
create index role_assignments_user_idx on role_assignments (user_org_id, user_id);
create index role_assignments_site_idx on role_assignments (org_id, site_id);

create table children (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  full_name text not null,
  preferred_name text,
  date_of_birth date not null,
  upn text,
  medical_notes text,
  enrolled_on date not null default current_date,
  left_on date,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, site_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);
create index children_site_idx on children (org_id, site_id);

create table guardianships (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid not null,
  guardian_id uuid not null,
  relationship text not null,
  parental_responsibility boolean not null default true,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, child_id, guardian_id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, guardian_id) references users (org_id, id)
);
create index guardianships_guardian_idx on guardianships (org_id, guardian_id);

create table groups (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  name text not null,
  kind text not null check (kind in ('class', 'caseload', 'club')),
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, site_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);

create table group_memberships (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  group_id uuid not null,
  child_id uuid,
  staff_id uuid,
  role text not null check (role in ('member', 'teacher', 'assistant')),
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id, group_id) references groups (org_id, site_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, staff_id) references users (org_id, id),
  constraint group_memberships_one_member check ((child_id is null) <> (staff_id is null)),
  constraint group_memberships_child_is_member check (child_id is null or role = 'member')
);
create index group_memberships_group_idx on group_memberships (org_id, group_id);
create index group_memberships_child_idx on group_memberships (org_id, child_id);
create index group_memberships_staff_idx on group_memberships (org_id, staff_id);

create table attendance_records (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid not null,
  session_date date not null,
  session text not null check (session in ('am', 'pm')),
  status text not null check (status in ('present', 'late', 'authorised_absence', 'unauthorised_absence', 'closed')),
  recorded_by uuid,
  recorded_at timestamptz not null default now(),
  corrects_id uuid,
  correction_reason text,
  primary key (org_id, id),
  unique (org_id, site_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, recorded_by) references users (org_id, id),
  foreign key (org_id, site_id, corrects_id) references attendance_records (org_id, site_id, id)
);
create index attendance_child_idx on attendance_records (org_id, child_id, session_date);
create index attendance_date_idx on attendance_records (org_id, site_id, session_date);

create table notes (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid not null,
  author_id uuid,
  kind text not null check (kind in ('positive', 'general', 'sensitive')),
  body text not null,
  guardian_visible boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, author_id) references users (org_id, id),
  constraint notes_sensitive_not_guardian_visible check (kind <> 'sensitive' or not guardian_visible)
);
create index notes_child_idx on notes (org_id, child_id);

create table safeguarding_concerns (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid not null,
  reported_by uuid,
  category text not null check (category in ('neglect', 'physical', 'emotional', 'sexual', 'online', 'other')),
  description text not null,
  status text not null default 'open' check (status in ('open', 'monitoring', 'referred', 'closed')),
  occurred_at timestamptz not null,
  created_at timestamptz not null default now(),
  closed_at timestamptz,
  primary key (org_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, reported_by) references users (org_id, id)
);
create index safeguarding_child_idx on safeguarding_concerns (org_id, child_id);

create table wellbeing_checkins (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid not null,
  mood smallint not null check (mood between 1 and 5),
  comment text,
  recorded_by uuid,
  checked_in_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, recorded_by) references users (org_id, id)
);
create index wellbeing_child_idx on wellbeing_checkins (org_id, child_id);

create table rota_shifts (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  staff_id uuid not null,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  duty text not null,
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  foreign key (org_id, staff_id) references users (org_id, id),
  constraint rota_shifts_window check (ends_at > starts_at)
);
create index rota_staff_idx on rota_shifts (org_id, staff_id);
create index rota_site_idx on rota_shifts (org_id, site_id, starts_at);

create table staff_activity (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  staff_id uuid not null,
  action text not null,
  child_id uuid,
  occurred_at timestamptz not null default now(),
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  foreign key (org_id, staff_id) references users (org_id, id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id)
);
create index staff_activity_staff_idx on staff_activity (org_id, staff_id, occurred_at);
create index staff_activity_child_idx on staff_activity (org_id, child_id);

create table media_files (
  org_id uuid not null,
  site_id uuid not null,
  id uuid not null default gen_random_uuid(),
  child_id uuid,
  uploaded_by uuid,
  storage_key text not null,
  content_type text not null,
  size_bytes bigint not null check (size_bytes >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  caption text,
  created_at timestamptz not null default now(),
  primary key (org_id, id),
  unique (org_id, storage_key),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  foreign key (org_id, site_id, child_id) references children (org_id, site_id, id),
  foreign key (org_id, uploaded_by) references users (org_id, id)
);
create index media_child_idx on media_files (org_id, child_id);

-- Operator sessions are platform-level (one session may be scoped to several
-- organisations), so they carry the scope, not a tenant key.
create table operator_sessions (
  id uuid primary key default gen_random_uuid(),
  db_user text not null,
  os_user text,
  host text,
  client_addr inet,
  application_name text,
  command text not null,
  reason text not null check (btrim(reason) <> ''),
  ticket text,
  org_ids uuid[] not null,
  all_orgs boolean not null default false,
  started_at timestamptz not null default clock_timestamp(),
  expires_at timestamptz not null,
  ended_at timestamptz,
  outcome text check (outcome in ('success', 'failure', 'refused', 'interrupted'))
);
create index operator_sessions_open_idx on operator_sessions (db_user) where ended_at is null;

-- The audit trail. Append-only; seal columns (txid, chain_seq, prev_hash,
-- hash) are filled by `trustctl audit seal`.
create table audit_events (
  org_id uuid not null references organisations (org_id),
  id bigint generated always as identity,
  site_id uuid,
  occurred_at timestamptz not null default statement_timestamp(),
  recorded_at timestamptz not null default clock_timestamp(),
  txid xid8 not null default pg_current_xact_id(),
  actor_type text not null check (actor_type in ('user', 'operator', 'system')),
  actor_id text,
  operator_session_id uuid references operator_sessions (id),
  action text not null,
  target_type text,
  target_id text,
  subject_ids uuid[] not null default '{}',
  outcome text not null default 'success',
  reason text,
  ticket text,
  source_ip inet,
  request_id text,
  context jsonb not null default '{}',
  chain_seq bigint,
  prev_hash bytea,
  hash bytea,
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);
create index audit_events_txid_idx on audit_events (org_id, txid, id);
create index audit_events_time_idx on audit_events (org_id, occurred_at);
create index audit_events_subjects_idx on audit_events using gin (subject_ids);
create unique index audit_events_chain_idx on audit_events (org_id, chain_seq) where chain_seq is not null;

create table retention_policies (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  category text not null,
  keep_for interval not null,
  clock text not null,
  action text not null check (action in ('delete', 'anonymise', 'archive')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  set_by_session uuid references operator_sessions (id),
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);
create unique index retention_policies_scope_key
  on retention_policies (org_id, coalesce(site_id, '00000000-0000-0000-0000-000000000000'::uuid), category);

create table legal_holds (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  subject_id uuid,
  category text,
  reason text not null check (btrim(reason) <> ''),
  created_at timestamptz not null default now(),
  created_by_session uuid references operator_sessions (id),
  released_at timestamptz,
  released_by_session uuid references operator_sessions (id),
  release_reason text,
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);

create table retention_runs (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  category text not null,
  status text not null default 'running' check (status in ('running', 'completed', 'failed', 'interrupted')),
  cutoff timestamptz,
  cursor jsonb,
  counts jsonb not null default '{}',
  operator_session_id uuid references operator_sessions (id),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id)
);

create table dsar_requests (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  reference text not null,
  subject_type text not null check (subject_type in ('child', 'guardian', 'staff')),
  subject_id uuid not null,
  received_on date not null,
  due_on date not null,
  extended_due_on date,
  extension_reason text,
  status text not null default 'open' check (status in ('open', 'exported', 'sent', 'closed')),
  created_at timestamptz not null default now(),
  created_by_session uuid references operator_sessions (id),
  primary key (org_id, id),
  unique (org_id, reference),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  constraint dsar_extension_has_reason check (extended_due_on is null or btrim(coalesce(extension_reason, '')) <> '')
);

create table erasures (
  org_id uuid not null references organisations (org_id),
  site_id uuid,
  id uuid not null default gen_random_uuid(),
  request_id uuid,
  subject_id uuid not null,
  subject_type text not null,
  erased_at timestamptz not null default now(),
  operator_session_id uuid references operator_sessions (id),
  counts jsonb not null default '{}',
  certificate_sha256 text,
  primary key (org_id, id),
  foreign key (org_id, site_id) references sites (org_id, site_id),
  foreign key (org_id, request_id) references dsar_requests (org_id, id)
);
