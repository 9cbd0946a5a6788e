-- Access (docs/access.md): who a user is, time-boxed and ticketed grants,
-- per-organisation access policies, and the rules the database itself
-- enforces on every grant an operator makes.
--
-- 1. A user is (organisation, id). User ids are unique only within an
--    organisation, and app.user_id alone named every user with that id: a
--    site admin could create a user with the id of a support person (seen in
--    role_assignments at their site) and, signed in as that user, hold the
--    support person's grants in other organisations. The platform now sets
--    app.user_org_id beside app.user_id (transaction-local); without it a
--    user has no role and sees nothing. live_roles() and every policy that
--    compares a column with the current user match the pair.
-- 2. access_policies: per organisation and role, the longest grant, whether
--    it needs approval by a second operator, and the ticket pattern.
-- 3. A trigger on role_assignments enforces, for operators, what trustctl's
--    commands promise, so direct SQL cannot skip it: time-boxed grants within
--    the policy's maximum with a matching ticket; sensitive roles pending
--    until a different operator approves; no self-approval; grants to users
--    of another organisation only time-boxed; no guardian roles (guardian
--    links live in guardianships); grants kept as history, never deleted;
--    revocation final.

create function app.current_user_org_id() returns uuid
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.user_org_id', true), '')::uuid $$;
alter function app.current_user_org_id() owner to trustctl_owner;
revoke all on function app.current_user_org_id() from public;
grant execute on function app.current_user_org_id() to trustctl_definer, app_user, trustctl_operator;

create or replace function app.live_roles() returns table (org_id uuid, site_id uuid, role text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select ra.org_id, s.site_id, ra.role
  from public.role_assignments ra
  join public.sites s on s.org_id = ra.org_id and (ra.site_id is null or s.site_id = ra.site_id)
  where ra.user_id = app.current_user_id()
    and ra.user_org_id = app.current_user_org_id()
    and ra.starts_at <= pg_catalog.statement_timestamp()
    and (ra.expires_at is null or pg_catalog.statement_timestamp() < ra.expires_at)
    and ra.revoked_at is null
    and ra.approval_state in ('not_required', 'approved')
$$;

-- Policies that compare a column with the current user: compare the pair.
-- (U: the current user's organisation and id.)
do $$
declare
  u constant text := '((select app.current_user_org_id()), (select app.current_user_id()))';
  f constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  s constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''teacher'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  a constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'']) x)';
  g constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''safeguarding_lead'']) x)';
  tc constant text := '(org_id, site_id, child_id) in (select x.org_id, x.site_id, x.child_id from app.user_teacher_children() x)';
  ao constant text := 'org_id = any ((select app.user_admin_org_ids())::uuid[])';
  grant_ok text;
begin
  grant_ok := format(
    'user_org_id = org_id and approval_state = ''not_required'' and ('
    '(%s and role in (''teacher'', ''office'', ''senco'', ''guardian'') and (user_org_id, user_id) is distinct from %s)'
    ' or (org_id = any ((select app.user_admin_org_ids())::uuid[])))', a, u);
  execute format('alter policy users_app_select on public.users using ((org_id, id) = %s or %s or (site_id is null and %s))', u, s, ao);
  execute format('alter policy role_assignments_app_select on public.role_assignments using ((user_org_id, user_id) = %s or %s or %s)', u, a, ao);
  execute format('alter policy role_assignments_app_insert on public.role_assignments with check (%s)', grant_ok);
  execute format('alter policy role_assignments_app_update on public.role_assignments using (%1$s) with check (%1$s)', grant_ok);
  execute format('alter policy role_assignments_app_delete on public.role_assignments using (%s)', grant_ok);
  execute format('alter policy guardianships_app_select on public.guardianships using (%s or %s or (org_id, guardian_id) = %s)', f, tc, u);
  execute format('alter policy group_memberships_app_select on public.group_memberships using (%s or (org_id, staff_id) = %s or %s)', f, u, tc);
  execute format('alter policy safeguarding_concerns_app_insert on public.safeguarding_concerns with check (%s or (%s and (org_id, reported_by) = %s))', g, s, u);
  execute format('alter policy staff_activity_app_select on public.staff_activity using (%s or (org_id, staff_id) = %s)', a, u);
  execute format('alter policy staff_activity_app_insert on public.staff_activity with check ((org_id, staff_id) = %s and %s)', u, s);
end
$$;

-- Who decided against a pending grant, and why.
alter table role_assignments
  add column denied_by text,
  add column denied_at timestamptz,
  add column deny_reason text,
  add constraint role_assignments_denied check ((approval_state = 'denied') = (denied_at is not null)),
  add constraint role_assignments_approved check ((approval_state = 'approved') = (approved_at is not null)),
  add constraint role_assignments_revoked check ((revoked_at is null) = (revoked_by is null));
create index role_assignments_pending_idx on role_assignments (org_id, approval_state) where approval_state = 'pending';

set local role trustctl_owner;

create table access_policies (
  org_id uuid not null references organisations (org_id),
  role text not null check (role in ('org_admin', 'site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office')),
  max_duration interval not null check (max_duration > interval '0' and max_duration <= interval '90 days'),
  -- Organisation-wide roles and safeguarding leads always need approval.
  sensitive boolean not null check (sensitive or role not in ('org_admin', 'safeguarding_lead')),
  -- A PostgreSQL regular expression every ticket must match; the check rejects one that does not compile.
  ticket_pattern text not null check (pg_catalog.regexp_replace('', ticket_pattern, '') = ''),
  updated_at timestamptz not null default now(),
  primary key (org_id, role)
);

revoke all on access_policies from public;
alter table access_policies enable row level security;
alter table access_policies force row level security;
create policy access_policies_operator on access_policies for all to trustctl_operator
  using (org_id = any ((select app.operator_org_ids())::uuid[]))
  with check (org_id = any ((select app.operator_org_ids())::uuid[]));
grant select, insert, update, delete on access_policies to trustctl_operator;
grant select on access_policies to trustctl_definer;
create trigger audit_capture after insert or update or delete on access_policies
  for each row execute function app.capture_change('role');

reset role;

-- Lookups the guard needs whatever the caller may read.
create function app.access_policy_for(p_org uuid, p_role text) returns public.access_policies
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select p.* from public.access_policies p where p.org_id = p_org and p.role = p_role $$;

create function app.operator_session_user(p_session uuid) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select s.db_user from public.operator_sessions s where s.id = p_session $$;

-- SECURITY INVOKER, so current_user is whoever runs the statement: an
-- operator (held to the rules), the platform's app_user (its policies
-- decide), a superuser (migrations, seeds) or trustctl_definer inside a
-- reviewed function (the doctor's self-rolling-back probe).
create function app.guard_role_assignment() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  v_policy public.access_policies;
  v_session uuid;
  v_requester text;
  v_sensitive boolean;
  v_duration interval;
begin
  if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = current_user and not r.rolsuper)
     or not pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER') then
    -- The platform's own request path: its policies decide. Revocation is
    -- final for everyone.
    if tg_op = 'UPDATE' and old.revoked_at is not null and new.revoked_at is distinct from old.revoked_at then
      raise exception 'grant % is revoked; revocation is final', old.id using errcode = 'TC024';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
  end if;

  -- Outside the operator's session: row-level security refuses it (42501).
  if tg_op <> 'DELETE' and not (new.org_id = any (app.operator_org_ids())) then
    return new;
  end if;

  if tg_op = 'DELETE' then
    raise exception 'grants are kept as history: revoke it instead (trustctl roles revoke / access revoke)'
      using errcode = 'TC024';
  end if;

  v_sensitive := new.role in ('org_admin', 'safeguarding_lead');
  v_policy := app.access_policy_for(new.org_id, new.role);
  v_sensitive := v_sensitive or coalesce(v_policy.sensitive, false);

  if tg_op = 'INSERT' then
    if new.role = 'guardian' then
      raise exception 'guardian links are kept in guardianships, not granted as roles' using errcode = 'TC020';
    end if;
    v_session := app.current_operator_session_id();
    new.granted_by_session := v_session;
    new.created_at := pg_catalog.statement_timestamp();
    if new.approved_at is not null or new.approved_by is not null or new.denied_at is not null
       or new.revoked_at is not null or new.approval_state not in ('not_required', 'pending') then
      raise exception 'a new grant cannot be approved, denied or revoked already' using errcode = 'TC024';
    end if;
    if coalesce(pg_catalog.btrim(new.reason), '') = '' then
      raise exception 'a grant needs a reason' using errcode = 'TC001';
    end if;
    if new.user_org_id <> new.org_id and new.expires_at is null then
      raise exception 'a user of another organisation (support staff) can only be given time-boxed access: trustctl access grant'
        using errcode = 'TC022';
    end if;
    if new.expires_at is not null then
      if v_policy.role is null then
        raise exception 'no access policy for role % in this organisation', new.role using errcode = 'TC021',
          hint = 'Set one with: trustctl access policy set --org ORG --role ROLE --max-duration 4h';
      end if;
      if new.starts_at < pg_catalog.statement_timestamp() - interval '1 minute' then
        raise exception 'a grant cannot start in the past' using errcode = 'TC022';
      end if;
      if new.expires_at - new.starts_at > v_policy.max_duration then
        raise exception 'grant of % for %, over the maximum of % for this role', new.role, new.expires_at - new.starts_at, v_policy.max_duration
          using errcode = 'TC022';
      end if;
      if coalesce(new.ticket, '') !~ v_policy.ticket_pattern then
        raise exception 'ticket "%" does not match this organisation''s pattern for % (%)', coalesce(new.ticket, ''), new.role, v_policy.ticket_pattern
          using errcode = 'TC023';
      end if;
    end if;
    new.approval_state := case when v_sensitive then 'pending' else 'not_required' end;
    return new;
  end if;

  -- UPDATE by an operator: only a decision, a revocation, or an earlier end.
  if (new.org_id, new.site_id, new.id, new.user_org_id, new.user_id, new.role, new.ticket, new.reason, new.granted_by_session, new.created_at)
     is distinct from
     (old.org_id, old.site_id, old.id, old.user_org_id, old.user_id, old.role, old.ticket, old.reason, old.granted_by_session, old.created_at) then
    raise exception 'a grant cannot be changed, only approved, denied, revoked or ended earlier: make a new one'
      using errcode = 'TC024';
  end if;
  if old.revoked_at is not null and (new.revoked_at, new.revoked_by, new.revoke_reason) is distinct from (old.revoked_at, old.revoked_by, old.revoke_reason) then
    raise exception 'grant % is revoked; revocation is final', old.id using errcode = 'TC024';
  end if;

  if new.approval_state is distinct from old.approval_state then
    if old.approval_state <> 'pending' or new.approval_state not in ('approved', 'denied') then
      raise exception 'grant % is %, not pending', old.id, old.approval_state using errcode = 'TC024';
    end if;
    v_requester := app.operator_session_user(old.granted_by_session);
    if new.approval_state = 'approved' then
      if v_requester = session_user then
        raise exception 'you requested grant %; a different operator must approve it', old.id using errcode = 'TC025';
      end if;
      if old.expires_at is not null and pg_catalog.statement_timestamp() >= old.expires_at then
        raise exception 'grant % expired before it was approved; request it again', old.id using errcode = 'TC024';
      end if;
      new.approved_by := session_user;
      new.approved_at := pg_catalog.statement_timestamp();
      -- The time box starts at approval, keeping its length.
      if old.starts_at < new.approved_at then
        v_duration := old.expires_at - old.starts_at;
        new.starts_at := new.approved_at;
        new.expires_at := case when v_duration is null then null else new.approved_at + v_duration end;
      end if;
    else
      if coalesce(pg_catalog.btrim(new.deny_reason), '') = '' then
        raise exception 'a denial needs a reason' using errcode = 'TC001';
      end if;
      new.denied_by := session_user;
      new.denied_at := pg_catalog.statement_timestamp();
    end if;
  else
    if (new.approved_by, new.approved_at, new.denied_by, new.denied_at, new.deny_reason)
       is distinct from (old.approved_by, old.approved_at, old.denied_by, old.denied_at, old.deny_reason) then
      raise exception 'approval fields change only with a decision' using errcode = 'TC024';
    end if;
    if new.starts_at is distinct from old.starts_at
       or (new.expires_at is distinct from old.expires_at
           and not (new.expires_at is not null and (old.expires_at is null or new.expires_at < old.expires_at))) then
      raise exception 'a grant can end earlier, never start or end later: make a new one' using errcode = 'TC024';
    end if;
  end if;

  if old.revoked_at is null and new.revoked_at is not null then
    if coalesce(pg_catalog.btrim(new.revoke_reason), '') = '' then
      raise exception 'a revocation needs a reason' using errcode = 'TC001';
    end if;
    new.revoked_by := session_user;
    new.revoked_at := pg_catalog.statement_timestamp();
  end if;
  return new;
end
$$;

create trigger role_assignments_guard before insert or update or delete on role_assignments
  for each row execute function app.guard_role_assignment();

-- Support staff (users of kind 'support', in the platform's organisation) by
-- id or email, for granting them access in an organisation an operator's
-- session covers without opening the platform organisation too.
create function app.support_user_directory()
returns table (org_id uuid, id uuid, email text, full_name text)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select u.org_id, u.id, u.email, u.full_name from public.users u
  where u.kind = 'support' and pg_catalog.cardinality(app.operator_org_ids()) > 0
  order by u.email
$$;

-- Operator sessions that covered an organisation at a moment (who could see
-- its data through the operator's door), for trustctl access who. Only in
-- a session that covers that organisation.
create function app.operator_sessions_covering(p_org_id uuid, p_at timestamptz)
returns table (db_user text, reason text, ticket text, started_at timestamptz, ended_at timestamptz, all_orgs boolean)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.require_operator_org(p_org_id);
  return query
    select s.db_user, s.reason, s.ticket, s.started_at, s.ended_at, s.all_orgs from public.operator_sessions s
    where p_org_id = any (s.org_ids) and s.started_at <= p_at
      and p_at < least(coalesce(s.ended_at, 'infinity'), s.expires_at)
    order by s.started_at, s.db_user;
end
$$;

alter function app.access_policy_for(uuid, text) owner to trustctl_definer;
alter function app.operator_session_user(uuid) owner to trustctl_definer;
alter function app.guard_role_assignment() owner to trustctl_owner;
alter function app.support_user_directory() owner to trustctl_definer;
alter function app.operator_sessions_covering(uuid, timestamptz) owner to trustctl_definer;
revoke all on function app.access_policy_for(uuid, text), app.operator_session_user(uuid), app.guard_role_assignment(),
  app.support_user_directory(), app.operator_sessions_covering(uuid, timestamptz) from public;
grant execute on function app.access_policy_for(uuid, text), app.operator_session_user(uuid) to trustctl_operator;
grant execute on function app.support_user_directory(), app.operator_sessions_covering(uuid, timestamptz) to trustctl_operator;
grant select on users, access_policies to trustctl_definer;

-- Reviewed (docs/doctor.md#definer-bypasses-rls).
select app.record_reviewed_definer(x.f::regprocedure, x.why) from (values
  ('app.live_roles()', 'reads only the current user''s own grants, matched on (organisation, id) from the transaction''s settings'),
  ('app.support_user_directory()', 'support staff names and emails, to operators with an open session'),
  ('app.operator_sessions_covering(uuid, timestamptz)', 'requires an open session covering the organisation'),
  ('app.access_policy_for(uuid, text)', 'one organisation''s access policy row: not personal data'),
  ('app.operator_session_user(uuid)', 'the operator role name of a session, for the self-approval check')
) x(f, why);
