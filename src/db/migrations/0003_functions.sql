-- Functions in schema app: tenant-context helpers read by the RLS policies,
-- operator sessions, and audit capture. Helpers that read tables are
-- SECURITY DEFINER (owned by trustctl_definer, which may bypass RLS so a
-- policy can consult role_assignments without recursing into its own
-- policies) with a fixed search_path; every table name is schema-qualified.
-- Settings are transaction-local (set_config(..., true)) and read with
-- nullif(..., ''), so an unset or empty setting yields no rows, never all.
set local role trustctl_owner;

create function app.current_user_id() returns uuid
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.user_id', true), '')::uuid $$;

create function app.current_operator_session_id() returns uuid
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.operator_session', true), '')::uuid $$;

-- Every (org, site, role) the current user holds right now: started, not
-- expired, not revoked, approved where approval is needed. Organisation-wide
-- assignments expand to every site of the organisation. statement_timestamp()
-- rather than now(): a grant stops the second it expires, even inside a long
-- transaction.
create function app.live_roles() returns table (org_id uuid, site_id uuid, role text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select ra.org_id, s.site_id, ra.role
  from public.role_assignments ra
  join public.sites s on s.org_id = ra.org_id and (ra.site_id is null or s.site_id = ra.site_id)
  where ra.user_id = app.current_user_id()
    and ra.starts_at <= pg_catalog.statement_timestamp()
    and (ra.expires_at is null or pg_catalog.statement_timestamp() < ra.expires_at)
    and ra.revoked_at is null
    and ra.approval_state in ('not_required', 'approved')
$$;

-- The (organisation, site) pairs where the user holds one of p_roles (any
-- role when null). Pairs, not site ids alone: a policy matches the row's full
-- tenant key, so an id minted in one organisation can never open another.
create function app.user_sites(p_roles text[]) returns table (org_id uuid, site_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select distinct r.org_id, r.site_id from app.live_roles() r where p_roles is null or r.role = any (p_roles) $$;

create function app.user_org_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select coalesce(array_agg(distinct org_id), '{}') from app.live_roles() $$;

create function app.user_admin_org_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select coalesce(array_agg(distinct org_id), '{}') from app.live_roles() where role = 'org_admin' $$;

-- Children on the caseload of a teacher: members of groups the user teaches,
-- at sites where the user holds a live teacher role. Returned with their
-- tenant key: child ids are unique only within an organisation, so a policy
-- must match (org_id, site_id, child_id), never the id alone.
create function app.user_teacher_children() returns table (org_id uuid, site_id uuid, child_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct c.org_id, c.site_id, c.child_id
  from public.group_memberships t
  join public.group_memberships c
    on c.org_id = t.org_id and c.site_id = t.site_id and c.group_id = t.group_id and c.child_id is not null
  where t.staff_id = app.current_user_id()
    and t.role in ('teacher', 'assistant')
    and (t.org_id, t.site_id) in (select r.org_id, r.site_id from app.live_roles() r where r.role = 'teacher')
$$;

-- A guardian's own children, at sites where the guardian link is live.
create function app.user_guardian_children() returns table (org_id uuid, site_id uuid, child_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct g.org_id, g.site_id, g.child_id
  from public.guardianships g
  where g.guardian_id = app.current_user_id()
    and (g.org_id, g.site_id) in (select r.org_id, r.site_id from app.live_roles() r where r.role = 'guardian')
$$;

-- Organisations in scope of the operator session named by
-- app.operator_session, if that session belongs to the connected user, is
-- open and younger than its maximum age. Otherwise none.
create function app.operator_org_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select coalesce((
    select s.org_ids from public.operator_sessions s
    where s.id = app.current_operator_session_id()
      and s.db_user = session_user
      and s.ended_at is null
      and pg_catalog.statement_timestamp() < s.expires_at
  ), '{}')
$$;

-- Opens an operator session. Errors use SQLSTATE class TC (trustctl) so the
-- CLI can tell a refusal (exit 2) from a failure.
create function app.begin_operator_session(
  p_reason text, p_ticket text, p_org_slugs text[], p_all_orgs boolean,
  p_command text, p_os_user text, p_host text
) returns table (session_id uuid, org_ids uuid[], expires_at timestamptz)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_max_age interval;
  v_ticket_required boolean;
  v_pattern text;
  v_org_ids uuid[];
  v_unknown text;
  v_id uuid;
  v_started timestamptz;
  v_expires timestamptz;
begin
  if not pg_catalog.pg_has_role(session_user, 'trustctl_operator', 'MEMBER') then
    raise exception 'role "%" is not a trustctl operator', session_user
      using errcode = 'TC004', hint = 'Create one with: trustctl operator add NAME';
  end if;
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'a reason is required to open an operator session' using errcode = 'TC001';
  end if;
  select value::interval into v_max_age from public.platform_settings where key = 'operator_session_max_age';
  select value::boolean into v_ticket_required from public.platform_settings where key = 'ticket_required';
  select value into v_pattern from public.platform_settings where key = 'ticket_pattern';
  if coalesce(v_ticket_required, false) and coalesce(btrim(p_ticket), '') = '' then
    raise exception 'a ticket reference is required to open an operator session' using errcode = 'TC002';
  end if;
  if coalesce(btrim(p_ticket), '') <> '' and coalesce(v_pattern, '') <> '' and p_ticket !~ v_pattern then
    raise exception 'ticket "%" does not match the required pattern %', p_ticket, v_pattern using errcode = 'TC002';
  end if;

  if p_all_orgs then
    select coalesce(array_agg(o.org_id order by o.slug), '{}') into v_org_ids from public.organisations o;
  else
    select string_agg(s, ', ') into v_unknown
    from unnest(coalesce(p_org_slugs, '{}')) s
    where not exists (select 1 from public.organisations o where o.slug = s);
    if v_unknown is not null then
      raise exception 'unknown organisation: %', v_unknown using errcode = 'TC003',
        hint = 'List organisations with: trustctl org list';
    end if;
    select coalesce(array_agg(o.org_id order by o.slug), '{}') into v_org_ids
    from public.organisations o where o.slug = any (p_org_slugs);
  end if;

  v_started := pg_catalog.clock_timestamp();
  v_expires := v_started + coalesce(v_max_age, interval '8 hours');
  insert into public.operator_sessions
    (db_user, os_user, host, client_addr, application_name, command, reason, ticket, org_ids, all_orgs, started_at, expires_at)
  values
    (session_user, p_os_user, p_host, pg_catalog.inet_client_addr(),
     pg_catalog.current_setting('application_name', true), p_command, btrim(p_reason),
     nullif(btrim(p_ticket), ''), v_org_ids, coalesce(p_all_orgs, false), v_started, v_expires)
  returning id into v_id;

  insert into public.audit_events
    (org_id, actor_type, actor_id, operator_session_id, action, target_type, target_id, reason, ticket, source_ip, context)
  select o, 'operator', session_user, v_id, 'operator_session.start', 'operator_session', v_id::text,
         btrim(p_reason), nullif(btrim(p_ticket), ''), pg_catalog.inet_client_addr(),
         jsonb_build_object('command', p_command, 'all_orgs', coalesce(p_all_orgs, false))
  from unnest(v_org_ids) o;

  return query select v_id, v_org_ids, v_expires;
end
$$;

create function app.end_operator_session(p_session_id uuid, p_outcome text) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_org_ids uuid[];
begin
  update public.operator_sessions
     set ended_at = pg_catalog.clock_timestamp(), outcome = p_outcome
   where id = p_session_id and db_user = session_user and ended_at is null
  returning org_ids into v_org_ids;
  if not found then
    return false;
  end if;
  insert into public.audit_events
    (org_id, actor_type, actor_id, operator_session_id, action, target_type, target_id, outcome, source_ip)
  select o, 'operator', session_user, p_session_id, 'operator_session.end', 'operator_session',
         p_session_id::text, p_outcome, pg_catalog.inet_client_addr()
  from unnest(v_org_ids) o;
  return true;
end
$$;

-- Records an operator's own action or read of personal data (e.g. dsar.export)
-- inside the open session's scope.
create function app.audit_record(
  p_org_id uuid, p_site_id uuid, p_action text, p_target_type text, p_target_id text,
  p_subject_ids uuid[], p_outcome text, p_context jsonb
) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_session public.operator_sessions;
  v_id bigint;
begin
  select * into v_session from public.operator_sessions s
   where s.id = app.current_operator_session_id() and s.db_user = session_user
     and s.ended_at is null and pg_catalog.statement_timestamp() < s.expires_at;
  if not found or not (p_org_id = any (v_session.org_ids)) then
    raise exception 'no open operator session covers organisation %', p_org_id using errcode = 'TC005';
  end if;
  insert into public.audit_events
    (org_id, site_id, actor_type, actor_id, operator_session_id, action, target_type, target_id,
     subject_ids, outcome, reason, ticket, source_ip, context)
  values
    (p_org_id, p_site_id, 'operator', session_user, v_session.id, p_action, p_target_type, p_target_id,
     coalesce(p_subject_ids, '{}'), coalesce(p_outcome, 'success'), v_session.reason, v_session.ticket,
     pg_catalog.inet_client_addr(), coalesce(p_context, '{}'))
  returning id into v_id;
  return v_id;
end
$$;

-- AFTER trigger on every tenant table. TG_ARGV[0] is the row's id column,
-- the rest name the columns that point at data subjects. The context holds
-- column names only, never values, so no free-text personal data is copied.
create function app.capture_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_row jsonb;
  v_old jsonb;
  v_session uuid;
  v_session_ok boolean := false;
  v_user text;
  v_actor_type text;
  v_actor_id text;
  v_subjects uuid[] := '{}';
  v_context jsonb := '{}';
  v_ticket text;
  v_reason text;
  i int;
begin
  if tg_op = 'DELETE' then v_row := to_jsonb(old); else v_row := to_jsonb(new); end if;

  v_session := app.current_operator_session_id();
  if v_session is not null then
    select true, s.reason, s.ticket into v_session_ok, v_reason, v_ticket
      from public.operator_sessions s
     where s.id = v_session and s.db_user = session_user;
  end if;
  v_user := nullif(pg_catalog.current_setting('app.user_id', true), '');
  if coalesce(v_session_ok, false) then
    v_actor_type := 'operator'; v_actor_id := session_user;
  elsif v_user is not null then
    v_actor_type := 'user'; v_actor_id := v_user; v_session := null;
  else
    v_actor_type := 'system'; v_actor_id := session_user; v_session := null;
  end if;

  for i in 1 .. tg_nargs - 1 loop
    if v_row ->> tg_argv[i] is not null then
      v_subjects := v_subjects || (v_row ->> tg_argv[i])::uuid;
    end if;
  end loop;

  if tg_op = 'UPDATE' then
    v_old := to_jsonb(old);
    select jsonb_build_object('changed', coalesce(jsonb_agg(n.key order by n.key), '[]'))
      into v_context
      from jsonb_each(v_row) n
     where n.value is distinct from (v_old -> n.key);
  end if;

  insert into public.audit_events
    (org_id, site_id, actor_type, actor_id, operator_session_id, action, target_type, target_id,
     subject_ids, reason, ticket, source_ip, context)
  values
    ((v_row ->> 'org_id')::uuid,
     case when tg_table_name = 'organisations' then null else (v_row ->> 'site_id')::uuid end,
     v_actor_type, v_actor_id, v_session,
     tg_table_name || '.' || lower(tg_op), tg_table_name, v_row ->> tg_argv[0],
     v_subjects, v_reason, v_ticket, pg_catalog.inet_client_addr(), v_context);
  return null;
end
$$;

create function app.refuse_audit_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception 'audit_events is append-only: % refused', tg_op
    using errcode = 'TC010', hint = 'Audit events can only be added; see docs/audit.md';
end
$$;

-- The organisation directory (slugs, names, site counts): not personal data,
-- so operators may list it without opening a session.
create function app.organisation_directory()
returns table (slug text, name text, kind text, site_count bigint)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select o.slug, o.name, o.kind, (select count(*) from public.sites s where s.org_id = o.org_id)
  from public.organisations o order by o.slug
$$;

reset role;
alter function app.live_roles() owner to trustctl_definer;
alter function app.user_sites(text[]) owner to trustctl_definer;
alter function app.user_org_ids() owner to trustctl_definer;
alter function app.user_admin_org_ids() owner to trustctl_definer;
alter function app.user_teacher_children() owner to trustctl_definer;
alter function app.user_guardian_children() owner to trustctl_definer;
alter function app.operator_org_ids() owner to trustctl_definer;
alter function app.begin_operator_session(text, text, text[], boolean, text, text, text) owner to trustctl_definer;
alter function app.end_operator_session(uuid, text) owner to trustctl_definer;
alter function app.audit_record(uuid, uuid, text, text, text, uuid[], text, jsonb) owner to trustctl_definer;
alter function app.capture_change() owner to trustctl_definer;
alter function app.organisation_directory() owner to trustctl_definer;

revoke all on all functions in schema app from public;
grant execute on function
  app.current_user_id(), app.current_operator_session_id(), app.live_roles(),
  app.user_sites(text[]), app.user_org_ids(), app.user_admin_org_ids(),
  app.user_teacher_children(), app.user_guardian_children()
  to app_user, trustctl_definer;
grant execute on function app.current_operator_session_id(), app.operator_org_ids()
  to trustctl_operator, trustctl_definer;
grant execute on function app.organisation_directory() to trustctl_operator;
grant execute on function
  app.begin_operator_session(text, text, text[], boolean, text, text, text),
  app.end_operator_session(uuid, text),
  app.audit_record(uuid, uuid, text, text, text, uuid[], text, jsonb)
  to trustctl_operator;
-- The owner attaches the capture trigger to its tables (trigger functions
-- cannot be called directly).
grant execute on function app.capture_change() to trustctl_owner;
