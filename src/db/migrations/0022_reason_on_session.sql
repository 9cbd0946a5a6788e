-- Free text out of the trail (issue 16, item 9). An operator session's
-- reason is free text and may name a person ("call with Mrs Reid about
-- Gia"): copied into every event of the session, it survived that person's
-- erasure in the sealed, append-only trail. The reason now stays on the
-- session only (events name the session: captured changes and operator
-- events since migration 0016, session starts here), and erasure reaches
-- it: app.erasure_redact_sessions replaces the erased person's name and
-- email in the reasons and command lines of sessions over the organisation.

create or replace function app.begin_operator_session(
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
         null, nullif(btrim(p_ticket), ''), pg_catalog.inet_client_addr(),
         jsonb_build_object('command', p_command, 'all_orgs', coalesce(p_all_orgs, false))
  from unnest(v_org_ids) o;

  return query select v_id, v_org_ids, v_expires;
end
$$;

-- Inside an erasure of p_subject (app.begin_erasure / _replay): the
-- person's names and email, wherever a session over the organisation wrote
-- them in its reason or command line, become [redacted]. Returns how many
-- sessions changed.
create function app.erasure_redact_sessions(p_org uuid, p_subject uuid) returns integer
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  v_term text;
  v_terms text[] := '{}';
  v_n integer := 0;
  v_changed integer;
begin
  perform app.require_operator_org(p_org);
  if b.purpose is distinct from 'erasure' or b.purpose_org is distinct from p_org or b.purpose_subject is distinct from p_subject then
    raise exception 'erasure_redact_sessions: only inside the erasure of this person' using errcode = 'TC040';
  end if;
  v_terms := coalesce((select pg_catalog.array_remove(array[c.full_name, c.preferred_name], null)
                         from public.children c where c.org_id = p_org and c.id = p_subject), '{}')
          || coalesce((select pg_catalog.array_remove(array[u.full_name, u.email], null)
                         from public.users u where u.org_id = p_org and u.id = p_subject), '{}');
  foreach v_term in array v_terms loop
    -- Too short to be a name, or already redacted: leave the text alone.
    continue when pg_catalog.length(pg_catalog.btrim(v_term)) < 3 or v_term = '[redacted]';
    update public.operator_sessions s
       set reason = pg_catalog.regexp_replace(s.reason, pg_catalog.regexp_replace(v_term, '([.^$|?*+()\[\]{}\\-])', '\\\1', 'g'), '[redacted]', 'gi'),
           command = pg_catalog.regexp_replace(s.command, pg_catalog.regexp_replace(v_term, '([.^$|?*+()\[\]{}\\-])', '\\\1', 'g'), '[redacted]', 'gi')
     where p_org = any (s.org_ids)
       and (pg_catalog.strpos(pg_catalog.lower(s.reason), pg_catalog.lower(v_term)) > 0
            or pg_catalog.strpos(pg_catalog.lower(coalesce(s.command, '')), pg_catalog.lower(v_term)) > 0);
    get diagnostics v_changed = row_count;
    v_n := v_n + v_changed;
  end loop;
  return v_n;
end
$$;
alter function app.erasure_redact_sessions(uuid, uuid) owner to trustctl_definer;
revoke all on function app.erasure_redact_sessions(uuid, uuid) from public;
grant execute on function app.erasure_redact_sessions(uuid, uuid) to trustctl_operator;
select app.record_reviewed_definer('app.erasure_redact_sessions(uuid, uuid)'::regprocedure,
  'only inside the bound erasure of that person: redacts their names and email in reasons and command lines of sessions over the organisation');
select app.record_reviewed_definer('app.begin_operator_session(text, text, text[], boolean, text, text, text)'::regprocedure,
  'opens a session for session_user after checking membership, reason and ticket; the reason stays on the session');
