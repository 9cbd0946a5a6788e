-- Subject access request tracking: the legal due date is enforced by the
-- database, not only computed by the CLI, so a request cannot be recorded
-- with a wrong deadline by any client.
--
-- One calendar month from the day of receipt; where that day does not exist
-- in the next month, the last day of that month. PostgreSQL's date + interval
-- '1 month' clamps to the month's end in exactly that way (31 January ->
-- 28/29 February). An extension adds up to two further months, with a reason.
set local role trustctl_owner;

alter table dsar_requests
  add column closed_at timestamptz,
  add column closure_note text,
  add column last_exported_at timestamptz,
  add column last_bundle_sha256 text,
  add constraint dsar_requests_bundle_sha256 check (last_bundle_sha256 ~ '^[0-9a-f]{64}$'),
  add constraint dsar_requests_due_is_one_month check (due_on = (received_on + interval '1 month')::date),
  add constraint dsar_requests_extension_window check (
    extended_due_on is null
    or (extended_due_on > due_on and extended_due_on <= (received_on + interval '3 months')::date)),
  add constraint dsar_requests_closed_at check ((status = 'closed') = (closed_at is not null)),
  add constraint dsar_requests_reference_format check (reference ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$');

create index dsar_requests_due_idx on dsar_requests (org_id, status, (coalesce(extended_due_on, due_on)));



-- Capture names every person a row points at, including who made it
-- (author, recorder, reporter, uploader), so a person's audit events and a
-- DSAR bundle's as_of cover the records they made too.
do $$
declare t record;
begin
  for t in select * from (values
    ('attendance_records', 'recorded_by'), ('notes', 'author_id'), ('safeguarding_concerns', 'reported_by'),
    ('wellbeing_checkins', 'recorded_by'), ('media_files', 'uploaded_by')) v (tbl, made_by)
  loop
    execute format('drop trigger audit_capture on %I', t.tbl);
    execute format('create trigger audit_capture after insert or update or delete on %I
      for each row execute function app.capture_change(%L, %L, %L)', t.tbl, 'id', 'child_id', t.made_by);
  end loop;
end
$$;

-- Refuses (TC005) unless the caller's open operator session covers the
-- organisation: the first check of every definer function that acts on one
-- organisation's records for an operator.
create function app.require_operator_org(p_org_id uuid) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if p_org_id is null or not (p_org_id = any (app.operator_org_ids())) then
    raise exception 'no open operator session covers organisation %', p_org_id using errcode = 'TC005';
  end if;
end
$$;

-- When the subject's records last changed, for a DSAR bundle's as_of: the
-- newest captured insert, update or delete naming the subject in one of the
-- tables the bundle is made from. A definer function because, under RLS,
-- the array containment operator is not leakproof and so cannot use the GIN
-- index on subject_ids: as the operator it would read every event of the
-- organisation. It answers only for organisations the caller's open
-- operator session covers.
create function app.subject_last_change(p_org_id uuid, p_subject_id uuid, p_tables text[]) returns timestamptz
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.require_operator_org(p_org_id);
  return (
    select max(e.recorded_at) from public.audit_events e
    where e.org_id = p_org_id and e.subject_ids @> array[p_subject_id]
      and e.target_type = any (p_tables)
      and e.action = any (array[e.target_type || '.insert', e.target_type || '.update', e.target_type || '.delete']));
end
$$;

reset role;

-- An update that moves a row from one person to another names both. (The
-- function belongs to trustctl_definer, so it is replaced outside the owner
-- role; ownership and grants are kept.)
create or replace function app.capture_change() returns trigger
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
    -- An update that moves a row from one person to another touches both.
    if tg_op = 'UPDATE' and (to_jsonb(old) ->> tg_argv[i]) is distinct from (v_row ->> tg_argv[i])
       and (to_jsonb(old) ->> tg_argv[i]) is not null then
      v_subjects := v_subjects || (to_jsonb(old) ->> tg_argv[i])::uuid;
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

alter function app.require_operator_org(uuid) owner to trustctl_definer;
revoke all on function app.require_operator_org(uuid) from public;
alter function app.subject_last_change(uuid, uuid, text[]) owner to trustctl_definer;
revoke all on function app.subject_last_change(uuid, uuid, text[]) from public;
grant execute on function app.subject_last_change(uuid, uuid, text[]) to trustctl_operator;
