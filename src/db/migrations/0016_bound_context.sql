-- Operator-proof rules, part 1 (docs/threat-model.md). Closes:
--
-- 1. Context changed inside a statement. Triggers and guards read
--    app.operator_session / app.user_id / app.user_org_id row by row, so a
--    set_config() in a later VALUES row or in RETURNING changed who was
--    acting half-way through a statement: a guard let a forged grant
--    through, capture recorded an operator's change as a teacher's. Now the
--    context is BOUND once per transaction: a statement-level BEFORE trigger
--    on every audited table (it fires before the first row is read) records
--    the settings in app.context_bindings, keyed by backend and transaction,
--    through a definer function nobody else can write with; every trigger,
--    guard and definer function takes the actor from the binding, and any
--    later change of those settings in the same transaction is refused
--    (TC030), never silently followed.
-- 2. Tenant data decided platform identity: organisations.kind = 'platform'
--    and users.kind = 'support' are columns a tenant's admin writes. The
--    platform's organisation is now pinned by id in platform_settings
--    (writable only by the owner), and only its users can be support staff.
-- 3. app.audit_record accepted any action (an operator could write events
--    that look like captured changes or prunes); app.audit_prune ignored
--    legal holds and retention periods. audit_record now takes only the
--    actions trustctl records; audit_prune refuses a prefix that a hold
--    covers or that is younger than the organisation's audit_events policy.
-- 4. Approval beaten by arithmetic: grants may start at most 15 minutes
--    ahead (or where a grant of the same user, role and site ends: an
--    extension), and access with gaps shorter than the policy's maximum
--    counts as continuous, revoked grants included for the time they ran.

set local role trustctl_owner;

-- One row per backend: the transaction it is bound for and what it binds.
-- Unlogged: a binding means nothing after a crash. A row is only ever read
-- for the reading transaction's own id (xid8 never repeats), so a stale row
-- left by a finished transaction binds nothing.
create unlogged table app.context_bindings (
  backend_pid integer primary key,
  xact xid8 not null,
  operator_session uuid,
  user_id uuid,
  user_org_id uuid,
  -- The session named belongs to session_user (open or not: RLS decides access).
  session_ok boolean not null,
  ticket text,
  -- Why an operator changes personal data in this transaction (migration
  -- 0017): set only by app.begin_* functions after checking it.
  purpose text,
  purpose_org uuid,
  purpose_site uuid,
  purpose_table text,
  purpose_run uuid,
  purpose_action text,
  purpose_cutoff timestamptz,
  purpose_subject uuid
);
revoke all on app.context_bindings from public;

reset role;
grant select, insert, update on app.context_bindings to trustctl_definer;

-- The transaction's bound context, binding it now if this is its first
-- write. Raises TC030 when the settings differ from what was bound.
create function app.bind_context() returns app.context_bindings
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_session uuid := nullif(pg_catalog.current_setting('app.operator_session', true), '')::uuid;
  v_user uuid := nullif(pg_catalog.current_setting('app.user_id', true), '')::uuid;
  v_user_org uuid := nullif(pg_catalog.current_setting('app.user_org_id', true), '')::uuid;
  v_xact xid8 := pg_catalog.pg_current_xact_id();
  v_ok boolean := false;
  v_ticket text;
  b app.context_bindings;
begin
  select * into b from app.context_bindings c where c.backend_pid = pg_catalog.pg_backend_pid() and c.xact = v_xact;
  if found then
    if (b.operator_session, b.user_id, b.user_org_id) is distinct from (v_session, v_user, v_user_org) then
      raise exception 'the acting user or operator session changed inside a transaction that already acted as another: refused'
        using errcode = 'TC030',
              hint = 'Set app.operator_session / app.user_id / app.user_org_id once, before the transaction''s first change';
    end if;
    return b;
  end if;
  if v_session is not null then
    select true, s.ticket into v_ok, v_ticket
      from public.operator_sessions s where s.id = v_session and s.db_user = session_user;
  end if;
  insert into app.context_bindings as c
    (backend_pid, xact, operator_session, user_id, user_org_id, session_ok, ticket)
  values (pg_catalog.pg_backend_pid(), v_xact, v_session, v_user, v_user_org, coalesce(v_ok, false), v_ticket)
  on conflict (backend_pid) do update
    set xact = excluded.xact, operator_session = excluded.operator_session, user_id = excluded.user_id,
        user_org_id = excluded.user_org_id, session_ok = excluded.session_ok,
        ticket = excluded.ticket, purpose = null, purpose_org = null, purpose_site = null, purpose_table = null,
        purpose_run = null, purpose_action = null, purpose_cutoff = null, purpose_subject = null
  returning * into b;
  return b;
end
$$;

-- For checks by readers (the policies' helpers): raises TC030 if this
-- transaction is bound and the settings have moved since; never binds.
-- VOLATILE, so it reads with a fresh snapshot: a binding written by this
-- very statement's BEFORE STATEMENT trigger is invisible to the statement's
-- own snapshot, which a STABLE function would use.
create function app.check_bound_context() returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_xact xid8 := pg_catalog.pg_current_xact_id_if_assigned();
  b app.context_bindings;
begin
  if v_xact is null then return; end if;
  select * into b from app.context_bindings c where c.backend_pid = pg_catalog.pg_backend_pid() and c.xact = v_xact;
  if found and (b.operator_session, b.user_id, b.user_org_id) is distinct from
      (nullif(pg_catalog.current_setting('app.operator_session', true), '')::uuid,
       nullif(pg_catalog.current_setting('app.user_id', true), '')::uuid,
       nullif(pg_catalog.current_setting('app.user_org_id', true), '')::uuid) then
    raise exception 'the acting user or operator session changed inside a transaction that already acted as another: refused'
      using errcode = 'TC030';
  end if;
end
$$;

-- Statement-level BEFORE trigger: binds before the first row is read, so
-- nothing a statement computes can change who it acts as.
create function app.bind_statement_context() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.bind_context();
  return null;
end
$$;

-- The readers of the settings that policies use check the binding too: a
-- statement cannot bind as one actor (its first row's triggers) and pass
-- row-level security as another (a set_config() in its FROM list), then
-- switch back before the rows' triggers compare. Read-only transactions,
-- which bind nothing, read the settings as before. PARALLEL RESTRICTED: the
-- check reads a table, so it runs in the leader.
create or replace function app.current_user_id() returns uuid
language sql stable parallel restricted
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.user_id', true), '')::uuid from (select app.check_bound_context()) bound $$;

create or replace function app.current_user_org_id() returns uuid
language sql stable parallel restricted
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.user_org_id', true), '')::uuid from (select app.check_bound_context()) bound $$;

create or replace function app.current_operator_session_id() returns uuid
language sql stable parallel restricted
set search_path = pg_catalog, pg_temp
as $$ select nullif(pg_catalog.current_setting('app.operator_session', true), '')::uuid from (select app.check_bound_context()) bound $$;

-- Refuses (TC005) unless the caller's open operator session covers the
-- organisation, and the context is still the one the transaction bound.
create or replace function app.require_operator_org(p_org_id uuid) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.check_bound_context();
  if p_org_id is null or not (p_org_id = any (app.operator_org_ids())) then
    raise exception 'no open operator session covers organisation %', p_org_id using errcode = 'TC005';
  end if;
end
$$;

-- Audit capture, with the actor taken from the transaction's binding.
create or replace function app.capture_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  v_row jsonb;
  v_old jsonb;
  v_actor_type text;
  v_actor_id text;
  v_session uuid;
  v_subjects uuid[] := '{}';
  v_context jsonb := '{}';
  i int;
begin
  if tg_op = 'DELETE' then v_row := to_jsonb(old); else v_row := to_jsonb(new); end if;
  if tg_op = 'UPDATE' then v_old := to_jsonb(old); end if;

  if b.session_ok then
    v_actor_type := 'operator'; v_actor_id := session_user; v_session := b.operator_session;
  elsif b.user_id is not null then
    v_actor_type := 'user'; v_actor_id := b.user_id::text;
  else
    v_actor_type := 'system'; v_actor_id := session_user;
  end if;

  for i in 1 .. tg_nargs - 1 loop
    if v_row ->> tg_argv[i] is not null then
      v_subjects := v_subjects || (v_row ->> tg_argv[i])::uuid;
    end if;
    -- An update that moves a row from one person to another touches both.
    if tg_op = 'UPDATE' and (v_old ->> tg_argv[i]) is distinct from (v_row ->> tg_argv[i])
       and (v_old ->> tg_argv[i]) is not null then
      v_subjects := v_subjects || (v_old ->> tg_argv[i])::uuid;
    end if;
  end loop;

  if tg_op = 'UPDATE' then
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
     case when tg_table_schema = 'public' then '' else tg_table_schema || '.' end || tg_table_name || '.' || lower(tg_op),
     case when tg_table_schema = 'public' then '' else tg_table_schema || '.' end || tg_table_name,
     v_row ->> tg_argv[0],
     v_subjects,
     -- The session's reason is free text (it may name a person): it stays on
     -- the session, where erasure reaches it, and is not copied into the
     -- sealed, append-only trail; the event names the session.
     null, case when b.session_ok then b.ticket end,
     pg_catalog.inet_client_addr(), v_context);
  return null;
end
$$;

-- An operator's own event, inside the open session that covers the
-- organisation. Internal: operators call app.audit_record.
create function app.append_operator_event(
  p_org_id uuid, p_site_id uuid, p_action text, p_target_type text, p_target_id text,
  p_subject_ids uuid[], p_outcome text, p_context jsonb
) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  v_id bigint;
begin
  if not b.session_ok or p_org_id is null or not (p_org_id = any (app.operator_org_ids())) then
    raise exception 'no open operator session covers organisation %', p_org_id using errcode = 'TC005';
  end if;
  insert into public.audit_events
    (org_id, site_id, actor_type, actor_id, operator_session_id, action, target_type, target_id,
     subject_ids, outcome, reason, ticket, source_ip, context)
  values
    (p_org_id, p_site_id, 'operator', session_user, b.operator_session, p_action, p_target_type, p_target_id,
     coalesce(p_subject_ids, '{}'), coalesce(p_outcome, 'success'), null, b.ticket,
     pg_catalog.inet_client_addr(), coalesce(p_context, '{}'))
  returning id into v_id;
  return v_id;
end
$$;

-- Records an operator's own action or read of personal data: only the
-- actions trustctl's commands record (never one that looks like captured
-- change, a session start or end, or a prune).
create or replace function app.audit_record(
  p_org_id uuid, p_site_id uuid, p_action text, p_target_type text, p_target_id text,
  p_subject_ids uuid[], p_outcome text, p_context jsonb
) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if p_action is null or not (p_action = any (array[
      'dsar.export', 'dsar.erase', 'audit.export', 'retention.sweep', 'retention.archive_export',
      'roles.grant', 'roles.revoke', 'access.grant', 'access.extend', 'access.approve', 'access.deny', 'access.revoke'])) then
    raise exception 'audit_record: "%" is not an action operators record', p_action using errcode = 'TC013';
  end if;
  if coalesce(p_outcome, 'success') not in ('success', 'refused', 'failure') then
    raise exception 'audit_record: outcome must be success, refused or failure' using errcode = 'TC013';
  end if;
  return app.append_operator_event(p_org_id, p_site_id, p_action, p_target_type, p_target_id, p_subject_ids, p_outcome, p_context);
end
$$;

-- A retention policy its author changed in the last 24 hours is applied by
-- another operator, or after those 24 hours: one operator cannot shorten a
-- period and sweep (or prune) under it at once, and the change stands in the
-- audit trail before anything is removed under it. (Access policies have the
-- same rule for grants, migration 0011.)
create function app.check_policy_author(p_set_by_session uuid, p_updated_at timestamptz) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if p_updated_at > pg_catalog.statement_timestamp() - interval '24 hours'
     and exists (select 1 from public.operator_sessions s where s.id = p_set_by_session and s.db_user = session_user) then
    raise exception 'you set or changed this retention policy less than 24 hours ago: another operator applies it, or wait until %',
      (p_updated_at + interval '24 hours')::timestamptz(0) using errcode = 'TC047';
  end if;
end
$$;

-- Pruning the trail obeys what the CLI obeys: the organisation's
-- audit_events policy (delete) must say every event in the prefix is past
-- its time, and no active legal hold may cover any of them.
create or replace function app.audit_prune(p_org_id uuid, p_through_seq bigint) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  v_hash bytea;
  v_through_id bigint;
  v_ids bigint[];
  v_n bigint;
  v_keep interval;
  v_policy public.retention_policies;
  v_newest timestamptz;
begin
  perform app.require_operator_org(p_org_id);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('trustctl.audit_seal'), pg_catalog.hashtext(p_org_id::text));
  select c.hash into v_hash from public.audit_chain c where c.org_id = p_org_id and c.chain_seq = p_through_seq;
  if not found then
    raise exception 'audit_prune: chain entry % of organisation % is not held (already pruned, or not sealed)',
      p_through_seq, p_org_id using errcode = 'TC011';
  end if;
  if not exists (select 1 from public.audit_checkpoints k
                  where k.org_id = p_org_id and k.chain_seq = p_through_seq and k.head_hash = v_hash) then
    raise exception 'audit_prune: % is not a checkpoint of organisation %; prune only at a checkpoint',
      p_through_seq, p_org_id using errcode = 'TC011';
  end if;
  select * into v_policy from public.retention_policies p
   where p.org_id = p_org_id and p.site_id is null and p.category = 'audit_events' and p.action = 'delete';
  if not found then
    raise exception 'audit_prune: organisation % has no audit_events retention policy that deletes', p_org_id
      using errcode = 'TC014', hint = 'Set one with: trustctl retention policy set --category audit_events --action delete';
  end if;
  perform app.check_policy_author(v_policy.set_by_session, v_policy.updated_at);
  v_keep := v_policy.keep_for;
  select pg_catalog.max(e.occurred_at) into v_newest
    from public.audit_chain c join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
   where c.org_id = p_org_id and c.chain_seq <= p_through_seq;
  if v_newest > pg_catalog.statement_timestamp() - v_keep then
    raise exception 'audit_prune: events up to seq % are not all older than the policy''s % ', p_through_seq, v_keep
      using errcode = 'TC014';
  end if;
  if exists (
      select 1 from public.legal_holds h
       where h.org_id = p_org_id and h.released_at is null and (h.category is null or h.category = 'audit_events')
         and exists (select 1 from public.audit_chain c join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
                      where c.org_id = p_org_id and c.chain_seq <= p_through_seq
                        and (h.site_id is null or e.site_id = h.site_id)
                        and (h.subject_id is null or e.subject_ids @> array[h.subject_id]))) then
    raise exception 'audit_prune: a legal hold covers events up to seq % of organisation %', p_through_seq, p_org_id
      using errcode = 'TC015';
  end if;
  insert into public.audit_anchors (org_id, chain_seq, hash, operator_session_id)
  values (p_org_id, p_through_seq, v_hash, b.operator_session);
  select array_agg(c.event_id), max(c.event_id) into v_ids, v_through_id
    from public.audit_chain c where c.org_id = p_org_id and c.chain_seq <= p_through_seq;
  delete from public.audit_chain c where c.org_id = p_org_id and c.chain_seq <= p_through_seq;
  perform pg_catalog.set_config('trustctl.audit_prune_org', p_org_id::text, true);
  perform pg_catalog.set_config('trustctl.audit_prune_through_id', v_through_id::text, true);
  delete from public.audit_events e where e.org_id = p_org_id and e.id = any (v_ids);
  get diagnostics v_n = row_count;
  perform app.append_operator_event(p_org_id, null, 'audit.prune', 'audit_chain', p_through_seq::text, '{}'::uuid[], 'success',
    jsonb_build_object('through_seq', p_through_seq, 'events', v_n, 'anchor_hash', encode(v_hash, 'hex')));
  perform pg_catalog.set_config('trustctl.audit_prune_org', '', true);
  perform pg_catalog.set_config('trustctl.audit_prune_through_id', '', true);
  return v_n;
end
$$;

-- The platform's own organisation, pinned by id where no tenant writes.
insert into platform_settings (key, value, description)
select 'platform_org_id', (select o.org_id::text from organisations o where o.kind = 'platform'),
       'The platform''s own organisation: only its users of kind support can be given access elsewhere. Set by the database owner.'
where (select count(*) from organisations o where o.kind = 'platform') = 1
on conflict (key) do nothing;

create function app.platform_org_id() returns uuid
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select nullif(s.value, '')::uuid from public.platform_settings s where s.key = 'platform_org_id' $$;

create or replace function app.is_support_user(p_org uuid, p_user uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select p_org = app.platform_org_id()
     and exists (select 1 from public.users u where u.org_id = p_org and u.id = p_user and u.kind = 'support')
$$;

create or replace function app.support_user_directory()
returns table (org_id uuid, id uuid, email text, full_name text)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select u.org_id, u.id, u.email, u.full_name from public.users u
  where u.org_id = app.platform_org_id() and u.kind = 'support'
    and pg_catalog.cardinality(app.operator_org_ids()) > 0
  order by u.email
$$;

-- organisations.kind = 'platform' only for the pinned organisation, so no
-- directory or person is misled by a tenant calling itself the platform.
create function app.guard_organisation_kind() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if (new.kind = 'platform') is distinct from (new.org_id is not distinct from app.platform_org_id())
     and not exists (select 1 from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper) then
    raise exception 'only the platform''s own organisation (platform_settings.platform_org_id) is of kind platform'
      using errcode = 'TC026';
  end if;
  return new;
end
$$;
create trigger organisations_kind_guard before insert or update of kind on organisations
  for each row execute function app.guard_organisation_kind();

-- Continuous access: this grant and every grant of the same user at the
-- same site, in any role (rotating office, senco, teacher is one run of
-- access), that ran, runs or may run (pending) within the policy's maximum
-- of it, revoked ones for the time they ran. Denied grants never ran.
create or replace function app.continuous_access_start(p_org uuid, p_site uuid, p_user_org uuid, p_user uuid, p_role text,
  p_starts timestamptz, p_expires timestamptz) returns timestamptz
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_start timestamptz := p_starts;
  v_prev timestamptz;
  v_window interval := coalesce((app.access_policy_for(p_org, p_role)).max_duration, interval '0');
begin
  perform app.require_operator_org(p_org);
  loop
    v_prev := v_start;
    select least(v_start, pg_catalog.min(ra.starts_at)) into v_start
    from public.role_assignments ra
    where ra.org_id = p_org and ra.site_id is not distinct from p_site and ra.user_org_id = p_user_org and ra.user_id = p_user
      and ra.expires_at is not null and ra.approval_state in ('not_required', 'approved', 'pending')
      and ra.starts_at < coalesce(ra.revoked_at, 'infinity')
      and ra.starts_at < p_expires
      and least(coalesce(ra.expires_at, 'infinity'), coalesce(ra.revoked_at, 'infinity')) >= v_start - greatest(v_window, interval '1 minute');
    exit when v_start is null or v_start >= v_prev;
  end loop;
  return coalesce(v_start, p_starts);
end
$$;

alter function app.bind_context() owner to trustctl_definer;
alter function app.check_bound_context() owner to trustctl_definer;
alter function app.bind_statement_context() owner to trustctl_definer;
alter function app.append_operator_event(uuid, uuid, text, text, text, uuid[], text, jsonb) owner to trustctl_definer;
alter function app.platform_org_id() owner to trustctl_definer;
alter function app.check_policy_author(uuid, timestamptz) owner to trustctl_definer;
revoke all on function app.check_policy_author(uuid, timestamptz) from public;
alter function app.guard_organisation_kind() owner to trustctl_owner;
revoke all on function app.bind_context(), app.check_bound_context(), app.bind_statement_context(),
  app.append_operator_event(uuid, uuid, text, text, text, uuid[], text, jsonb), app.platform_org_id(),
  app.guard_organisation_kind() from public;
-- Guards run as the caller (invoker), so the caller binds.
grant execute on function app.bind_context(), app.check_bound_context() to app_user, trustctl_operator;
grant execute on function app.bind_statement_context() to trustctl_owner;
grant execute on function app.platform_org_id() to app_user, trustctl_operator;
grant execute on function app.guard_organisation_kind() to trustctl_owner;
grant execute on function app.append_operator_event(uuid, uuid, text, text, text, uuid[], text, jsonb) to trustctl_definer;

-- Bind on every table whose changes are captured or guarded.
set local role trustctl_owner;
do $$
declare t record;
begin
  for t in
    select distinct c.oid::regclass as rel from pg_trigger g join pg_class c on c.oid = g.tgrelid
    where not g.tgisinternal and g.tgfoid in ('app.capture_change()'::regprocedure, 'app.guard_role_assignment()'::regprocedure)
  loop
    execute format('create trigger context_bind before insert or update or delete on %s '
                   'for each statement execute function app.bind_statement_context()', t.rel);
  end loop;
end
$$;
reset role;

-- The grant guard (0011), with the actor from the binding, a refusal (not
-- a pass to RLS) outside the session, and no far-future starts.
create or replace function app.guard_role_assignment() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  v_policy public.access_policies;
  v_requester text;
  v_sensitive boolean;
  v_operator boolean;
  v_duration interval;
  v_now timestamptz := pg_catalog.statement_timestamp();
  v_bound app.context_bindings;
begin
  -- Migrations and seeds (superusers) and reviewed functions are not held here.
  if current_user = 'trustctl_definer'
     or exists (select 1 from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  -- Who acts is what the transaction bound before its first row (TC030 if
  -- the settings moved since), never what a later row or RETURNING set.
  v_bound := app.bind_context();
  v_operator := pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER');

  -- An operator outside its open session: refused here, not left to RLS.
  -- (Nested: an expression naming operator functions must not even be
  -- prepared for app_user, which may not execute them.)
  if v_operator then
    if not v_bound.session_ok
       or not ((case when tg_op = 'DELETE' then old.org_id else new.org_id end) = any (app.operator_org_ids())) then
      raise exception 'no open operator session covers this organisation' using errcode = 'TC005';
    end if;
  end if;

  if tg_op = 'DELETE' then
    raise exception 'grants are kept as history: revoke it instead (trustctl roles revoke / access revoke)'
      using errcode = 'TC024';
  end if;

  v_policy := app.access_policy_for(new.org_id, new.role);
  v_sensitive := new.role in ('org_admin', 'safeguarding_lead') or coalesce(v_policy.sensitive, false);

  if tg_op = 'INSERT' then
    -- Recorded by the database, never taken from the statement.
    new.created_at := v_now;
    new.granted_by_session := null;
    if not v_operator then
      -- The platform's policies decide first (row-level security runs after
      -- this trigger); app.check_new_role_assignment refuses the rest after them.
      return new;
    end if;
    new.granted_by_session := v_bound.operator_session;
    if new.approved_at is not null or new.approved_by is not null or new.denied_at is not null or new.denied_by is not null
       or new.revoked_at is not null or new.revoked_by is not null or new.approval_state not in ('not_required', 'pending') then
      raise exception 'a new grant cannot be approved, denied or revoked already' using errcode = 'TC024';
    end if;
    if new.starts_at < v_now - interval '1 minute' then
      raise exception 'a grant cannot start in the past' using errcode = 'TC022';
    end if;
    -- Not far ahead, unless it continues a grant of the same user, role and
    -- site (an extension), which the continuity rule below then weighs.
    if new.starts_at > v_now + interval '15 minutes' and not exists (
        select 1 from public.role_assignments ra
         where ra.org_id = new.org_id and ra.site_id is not distinct from new.site_id
           and ra.user_org_id = new.user_org_id and ra.user_id = new.user_id and ra.role = new.role
           and ra.revoked_at is null and ra.approval_state in ('not_required', 'approved', 'pending')
           and ra.expires_at between new.starts_at - interval '1 minute' and new.starts_at + interval '1 minute') then
      raise exception 'a grant may start at most 15 minutes from now, or where a grant of the same user, role and site ends'
        using errcode = 'TC022';
    end if;
    if new.role = 'guardian' then
      raise exception 'guardian links are kept in guardianships, not granted as roles' using errcode = 'TC020';
    end if;
    if coalesce(pg_catalog.btrim(new.reason), '') = '' then
      raise exception 'a grant needs a reason' using errcode = 'TC001';
    end if;
    if new.user_org_id <> new.org_id then
      if not app.is_support_user(new.user_org_id, new.user_id) then
        raise exception 'only the organisation''s own users and the platform''s support staff can be given access here'
          using errcode = 'TC022';
      end if;
      if new.expires_at is null then
        raise exception 'a user of another organisation (support staff) can only be given time-boxed access: trustctl access grant'
          using errcode = 'TC022';
      end if;
    end if;
    if new.expires_at is not null then
      if v_policy.role is null then
        raise exception 'no access policy for role % in this organisation', new.role using errcode = 'TC021',
          hint = 'Set one with: trustctl access policy set --org ORG --role ROLE --max-duration 4h';
      end if;
      if new.expires_at - new.starts_at > v_policy.max_duration then
        raise exception 'grant of % for %, over the maximum of % for this role', new.role, new.expires_at - new.starts_at, v_policy.max_duration
          using errcode = 'TC022';
      end if;
      if coalesce(new.ticket, '') !~ v_policy.ticket_pattern then
        raise exception 'ticket "%" does not match this organisation''s pattern for % (%)', coalesce(new.ticket, ''), new.role, v_policy.ticket_pattern
          using errcode = 'TC023';
      end if;
      -- A second operator must agree when this operator just changed the
      -- policy, or when access would run on past the maximum.
      if v_policy.updated_by = session_user and v_policy.updated_at > v_now - interval '24 hours' then
        v_sensitive := true;
      end if;
      if new.expires_at - app.continuous_access_start(new.org_id, new.site_id, new.user_org_id, new.user_id, new.role,
           new.starts_at, new.expires_at) > v_policy.max_duration then
        v_sensitive := true;
      end if;
    end if;
    new.approval_state := case when v_sensitive then 'pending' else 'not_required' end;
    return new;
  end if;

  -- UPDATE: a decision, a revocation, or an earlier end (not before now).
  if (new.org_id, new.site_id, new.id, new.user_org_id, new.user_id, new.role, new.ticket, new.reason, new.granted_by_session, new.created_at)
     is distinct from
     (old.org_id, old.site_id, old.id, old.user_org_id, old.user_id, old.role, old.ticket, old.reason, old.granted_by_session, old.created_at) then
    raise exception 'a grant cannot be changed, only approved, denied, revoked or ended earlier: make a new one'
      using errcode = 'TC024';
  end if;
  if old.revoked_at is not null or old.approval_state = 'denied' then
    if row(new.*) is distinct from row(old.*) then
      raise exception 'grant % is %; that is final', old.id, case when old.revoked_at is not null then 'revoked' else 'denied' end
        using errcode = 'TC024';
    end if;
    return new;
  end if;

  if new.approval_state is distinct from old.approval_state then
    if not v_operator then
      raise exception 'only operators decide on grants' using errcode = 'TC024';
    end if;
    if old.approval_state <> 'pending' or new.approval_state not in ('approved', 'denied') then
      raise exception 'grant % is %, not pending', old.id, old.approval_state using errcode = 'TC024';
    end if;
    if (new.starts_at, new.expires_at, new.revoked_at) is distinct from (old.starts_at, old.expires_at, old.revoked_at) then
      raise exception 'a decision changes nothing else: approve or deny, then revoke or end it separately' using errcode = 'TC024';
    end if;
    v_requester := app.operator_session_user(old.granted_by_session);
    if new.approval_state = 'approved' then
      if v_requester is null or v_requester = session_user then
        raise exception 'you requested grant % (or its requester is unknown); a different operator must approve it', old.id
          using errcode = 'TC025';
      end if;
      if old.expires_at is not null and v_now >= old.expires_at then
        raise exception 'grant % expired before it was approved; request it again', old.id using errcode = 'TC024';
      end if;
      new.approved_by := session_user;
      new.approved_at := v_now;
      new.denied_by := null; new.denied_at := null; new.deny_reason := null;
      -- The time box starts at approval at the earliest, keeping its length.
      if old.starts_at < v_now then
        v_duration := old.expires_at - old.starts_at;
        new.starts_at := v_now;
        new.expires_at := case when v_duration is null then null else v_now + v_duration end;
      end if;
      if new.expires_at is not null and v_policy.role is not null and new.expires_at - new.starts_at > v_policy.max_duration then
        raise exception 'grant of % is over the current maximum of % for this role', new.expires_at - new.starts_at, v_policy.max_duration
          using errcode = 'TC022';
      end if;
    else
      if coalesce(pg_catalog.btrim(new.deny_reason), '') = '' then
        raise exception 'a denial needs a reason' using errcode = 'TC001';
      end if;
      new.approved_by := null; new.approved_at := null;
      new.denied_by := session_user;
      new.denied_at := v_now;
    end if;
    return new;
  end if;

  if (new.approved_by, new.approved_at, new.denied_by, new.denied_at, new.deny_reason)
     is distinct from (old.approved_by, old.approved_at, old.denied_by, old.denied_at, old.deny_reason) then
    raise exception 'approval fields change only with a decision' using errcode = 'TC024';
  end if;
  if new.starts_at is distinct from old.starts_at
     or (new.expires_at is distinct from old.expires_at
         and not (new.expires_at is not null and new.expires_at >= v_now
                  and (old.expires_at is null or new.expires_at < old.expires_at))) then
    raise exception 'a grant can end earlier (not before now), never start or end later: make a new one' using errcode = 'TC024';
  end if;
  if new.revoked_at is not null then
    if coalesce(pg_catalog.btrim(new.revoke_reason), '') = '' then
      raise exception 'a revocation needs a reason' using errcode = 'TC001';
    end if;
    new.revoked_by := session_user;
    new.revoked_at := v_now;
  elsif new.revoked_by is not null or new.revoke_reason is not null then
    raise exception 'revocation fields change only with a revocation' using errcode = 'TC024';
  end if;
  return new;
end
$$;
-- The doctor's probe acts, inside a block it always undoes, as synthetic
-- people one after another: it rebinds for each. Only the probe may.
create function app.rebind_context_for_probe() returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  delete from app.context_bindings c where c.backend_pid = pg_catalog.pg_backend_pid();
  perform app.bind_context();
end
$$;
grant delete on app.context_bindings to trustctl_definer;
alter function app.rebind_context_for_probe() owner to trustctl_definer;
revoke all on function app.rebind_context_for_probe() from public;
grant execute on function app.rebind_context_for_probe() to trustctl_probe;

create or replace function app.doctor_probe_as_user(p_user_org uuid, p_user uuid, p_org uuid, p_site uuid, p_tables text[], p_rows jsonb)
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_catalog.set_config('app.user_org_id', p_user_org::text, true);
  perform pg_catalog.set_config('app.user_id', p_user::text, true);
  perform app.rebind_context_for_probe();
  return query select * from app.probe_boundary(p_org, p_site, p_tables, p_rows);
end
$$;

-- The probe itself, rebinding as it switches persona (the policies' readers
-- check the binding, above).
create or replace function app.doctor_probe(p_org uuid, p_site uuid, p_tables text[])
returns table (persona text, table_name text, probe text, method text, outcome text, detail text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_site_user uuid := pg_catalog.gen_random_uuid();
  v_org_user uuid := pg_catalog.gen_random_uuid();
  v_group uuid := pg_catalog.gen_random_uuid();
  v_child uuid;
  v_session text := coalesce(nullif(pg_catalog.current_setting('app.operator_session', true), ''), '');
  v_rows jsonb := '{}';
  v_row jsonb;
  v_out jsonb := '[]';
  t text;
  n bigint;
  v_foreign text;
  v_persona record;
begin
  perform app.require_operator_org(p_org);
  if (select pg_catalog.cardinality(app.operator_org_ids())) <> 1 then
    raise exception 'doctor_probe: open the operator session for the probed organisation only' using errcode = '22023';
  end if;
  if not exists (select 1 from public.sites s where s.org_id = p_org and s.site_id = p_site) then
    raise exception 'doctor_probe: no such site' using errcode = '22023';
  end if;
  begin
    -- Rows to aim at: one of another organisation per table, else of another site.
    foreach t in array p_tables loop
      execute pg_catalog.format('select pg_catalog.to_jsonb(x) from public.%I x where x.org_id <> $1 limit 1', t) into v_row using p_org;
      if v_row is null and exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = pg_catalog.format('public.%I', t)::regclass and a.attname = 'site_id') then
        execute pg_catalog.format('select pg_catalog.to_jsonb(x) from public.%I x where x.org_id = $1 and x.site_id is not null and x.site_id <> $2 limit 1', t)
          into v_row using p_org, p_site;
      end if;
      if v_row is not null then v_rows := v_rows || pg_catalog.jsonb_build_object(t, v_row); end if;
      -- Tables with nothing of another tenant in them cannot be probed.
      execute pg_catalog.format('select count(*) from (select 1 from public.%I where %s limit 1) x', t,
        app.probe_foreign(p_org, p_site, pg_catalog.format('public.%I', t)::regclass)) into n;
      if n = 0 then
        v_out := v_out || pg_catalog.jsonb_build_object('persona', 'all', 'table_name', t, 'probe', 'all', 'method', 'data', 'outcome', 'untestable', 'detail', 'no rows of another tenant');
      end if;
    end loop;

    -- The synthetic people.
    select c.id into v_child from public.children c where c.org_id = p_org and c.site_id = p_site order by c.id limit 1;
    insert into public.users (org_id, site_id, id, kind, email, full_name) values
      (p_org, p_site, v_site_user, 'staff', 'doctor-probe-' || v_site_user || '@invalid.example', 'trustctl doctor probe (site)'),
      (p_org, null, v_org_user, 'staff', 'doctor-probe-' || v_org_user || '@invalid.example', 'trustctl doctor probe (organisation)');
    insert into public.role_assignments (org_id, site_id, user_org_id, user_id, role, reason)
    select p_org, p_site, p_org, v_site_user, r, 'trustctl doctor live probe (undone)'
    from pg_catalog.unnest(array['site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office', 'guardian']) r
    union all select p_org, null, p_org, v_org_user, r, 'trustctl doctor live probe (undone)'
    from pg_catalog.unnest(array['org_admin', 'safeguarding_lead']) r;
    if v_child is not null then
      insert into public.groups (org_id, site_id, id, name, kind) values (p_org, p_site, v_group, 'trustctl doctor probe', 'class');
      insert into public.group_memberships (org_id, site_id, group_id, staff_id, role) values (p_org, p_site, v_group, v_site_user, 'teacher');
      insert into public.group_memberships (org_id, site_id, group_id, child_id, role) values (p_org, p_site, v_group, v_child, 'member');
      insert into public.guardianships (org_id, site_id, child_id, guardian_id, relationship) values (p_org, p_site, v_child, v_site_user, 'carer');
    end if;

    for v_persona in select * from (values
        ('site user', v_site_user, p_site),
        ('organisation admin', v_org_user, null::uuid)) x(name, id, site) loop
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) || pg_catalog.jsonb_build_object('persona', v_persona.name, 'method', 'statement')), '[]') || v_out
        into v_out from app.doctor_probe_as_user(p_org, v_persona.id, p_org, v_persona.site, p_tables, v_rows) r;
      perform pg_catalog.set_config('app.user_org_id', p_org::text, true);
      perform pg_catalog.set_config('app.user_id', v_persona.id::text, true);
      perform app.rebind_context_for_probe();
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) || pg_catalog.jsonb_build_object('persona', v_persona.name, 'method', 'policy')), '[]') || v_out
        into v_out from app.doctor_policy_reach('app_user', p_org, v_persona.site, p_tables) r;
    end loop;
    perform pg_catalog.set_config('app.user_org_id', '', true);
    perform pg_catalog.set_config('app.user_id', '', true);

    for v_persona in select * from (values
        ('operator without a session', '', null::uuid),
        ('operator with a made-up session id', pg_catalog.gen_random_uuid()::text, null::uuid),
        ('operator in a session for this organisation only', v_session, p_org)) x(name, session, org) loop
      perform pg_catalog.set_config('app.operator_session', v_persona.session, true);
      perform app.rebind_context_for_probe();
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) || pg_catalog.jsonb_build_object('persona', v_persona.name, 'method', 'policy')), '[]') || v_out
        into v_out from app.doctor_policy_reach('trustctl_operator', v_persona.org, null, p_tables) r;
    end loop;
    raise exception 'doctor_probe undoes its own changes' using errcode = 'TCP01';
  exception when sqlstate 'TCP01' then
    null;
  end;
  return query select x.persona, x.table_name, x.probe, x.method, x.outcome, x.detail
    from pg_catalog.jsonb_to_recordset(v_out) as x(persona text, table_name text, probe text, method text, outcome text, detail text)
    order by 1, 2, 3, 4;
end
$$;

-- Reviewed definer functions (docs/doctor.md#definer-bypasses-rls).
select app.record_reviewed_definer(x.f::regprocedure, x.why) from (values
  ('app.bind_context()', 'binds the caller''s own settings for its own transaction, or refuses if they moved'),
  ('app.check_bound_context()', 'refuses if the caller''s settings moved since its transaction bound them'),
  ('app.require_operator_org(uuid)', 'refuses unless the caller''s bound, open session covers the organisation'),
  ('app.audit_record(uuid, uuid, text, text, text, uuid[], text, jsonb)', 'only the actions trustctl records, inside the bound open session covering the organisation'),
  ('app.audit_prune(uuid, bigint)', 'bound open session; a sealed, checkpointed prefix past the audit_events policy and under no legal hold'),
  ('app.platform_org_id()', 'the pinned id of the platform''s organisation: not personal data'),
  ('app.is_support_user(uuid, uuid)', 'whether one user is support staff of the pinned platform organisation: no personal data'),
  ('app.support_user_directory()', 'support staff of the pinned platform organisation, for an operator with an open session'),
  ('app.continuous_access_start(uuid, uuid, uuid, uuid, text, timestamptz, timestamptz)', 'one timestamp about one user''s grants in an organisation the caller''s session covers'),
  ('app.doctor_probe_as_user(uuid, uuid, uuid, uuid, text[], jsonb)', 'internal to app.doctor_probe, inside a block it always undoes'),
  ('app.doctor_probe(uuid, uuid, text[])', 'requires an open session covering only that organisation; undoes every change it makes')
) x(f, why);
select app.record_reviewed_definer('app.rebind_context_for_probe()'::regprocedure,
  'only trustctl_probe, inside app.doctor_probe''s block that always rolls back: rebinds the probe''s synthetic user');
