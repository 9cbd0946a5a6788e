-- Access, after an independent attack review (docs/access.md). Closes:
-- 1. An approver could rewrite a pending grant's time box (standing,
--    backdated, over the maximum) in the approving UPDATE. A decision now
--    changes nothing but the decision; the box moves to the approval, keeping
--    its length, re-checked against the policy then.
-- 2. "Ending earlier" into the past erased history that access who reads.
--    A grant can end no earlier than now.
-- 3. An operator could grant another organisation's staff access. Users of
--    another organisation must be the platform's support staff.
-- 4. The platform's request path could forge the recorded requester and
--    decisions, backdate, rewrite or delete grants. The same history rules now
--    hold for every caller but superusers (migrations) and reviewed
--    functions (trustctl_definer).
-- 5. One operator could loosen a policy and then grant under it, or chain
--    extensions past the maximum, without a second operator. A grant made by
--    the operator who changed that role's policy in the last 24 hours, or one
--    that makes continuous access longer than the policy's maximum, is now
--    pending until another operator approves it.
-- 6. Teacher caseloads and guardian links matched the user's id alone.
-- The doctor's statement probe counts a refusal by these guards (SQLSTATE
-- class TC, raised before row-level security is reached) as a refusal.

alter table access_policies add column updated_by text;

create or replace function app.stamp_access_policy() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  new.updated_by := session_user;
  new.updated_at := pg_catalog.statement_timestamp();
  return new;
end
$$;
alter function app.stamp_access_policy() owner to trustctl_owner;
revoke all on function app.stamp_access_policy() from public;
create trigger access_policies_stamp before insert or update on access_policies
  for each row execute function app.stamp_access_policy();

-- Is (org, id) a member of the platform's support staff?
create function app.is_support_user(p_org uuid, p_user uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from public.users u join public.organisations o on o.org_id = u.org_id
                 where u.org_id = p_org and u.id = p_user and u.kind = 'support' and o.kind = 'platform')
$$;

-- The earliest start of the continuous access (this grant and any live or
-- pending grant of the same user, role and site that overlaps or abuts it).
create function app.continuous_access_start(p_org uuid, p_site uuid, p_user_org uuid, p_user uuid, p_role text,
  p_starts timestamptz, p_expires timestamptz) returns timestamptz
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_start timestamptz := p_starts;
  v_prev timestamptz;
begin
  perform app.require_operator_org(p_org);
  loop
    v_prev := v_start;
    select least(v_start, pg_catalog.min(ra.starts_at)) into v_start
    from public.role_assignments ra
    where ra.org_id = p_org and ra.site_id is not distinct from p_site and ra.user_org_id = p_user_org and ra.user_id = p_user
      and ra.role = p_role and ra.revoked_at is null and ra.approval_state in ('not_required', 'approved', 'pending')
      and ra.starts_at < p_expires and coalesce(ra.expires_at, 'infinity') >= v_start - interval '1 minute';
    exit when v_start is null or v_start >= v_prev;
  end loop;
  return coalesce(v_start, p_starts);
end
$$;

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
begin
  -- Migrations and seeds (superusers) and reviewed functions are not held here.
  if current_user = 'trustctl_definer'
     or exists (select 1 from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  v_operator := pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER');

  -- An operator outside its session: row-level security refuses it (42501).
  -- (Nested: an expression naming operator functions must not even be
  -- prepared for app_user, which may not execute them.)
  if v_operator and tg_op <> 'DELETE' then
    if not (new.org_id = any (app.operator_org_ids())) then
      return new;
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
    new.granted_by_session := app.current_operator_session_id();
    if new.approved_at is not null or new.approved_by is not null or new.denied_at is not null or new.denied_by is not null
       or new.revoked_at is not null or new.revoked_by is not null or new.approval_state not in ('not_required', 'pending') then
      raise exception 'a new grant cannot be approved, denied or revoked already' using errcode = 'TC024';
    end if;
    if new.starts_at < v_now - interval '1 minute' then
      raise exception 'a grant cannot start in the past' using errcode = 'TC022';
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

-- For the platform's request path: after row-level security has accepted a
-- new grant, refuse one that arrives decided, revoked or backdated.
create function app.check_new_role_assignment() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if current_user = 'trustctl_definer'
     or exists (select 1 from pg_catalog.pg_roles r where r.rolname = current_user and r.rolsuper)
     or pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER') then
    return null;
  end if;
  if new.approved_at is not null or new.approved_by is not null or new.denied_at is not null or new.denied_by is not null
     or new.revoked_at is not null or new.revoked_by is not null or new.approval_state not in ('not_required', 'pending') then
    raise exception 'a new grant cannot be approved, denied or revoked already' using errcode = 'TC024';
  end if;
  if new.starts_at < new.created_at - interval '1 minute' then
    raise exception 'a grant cannot start in the past' using errcode = 'TC022';
  end if;
  return null;
end
$$;
alter function app.check_new_role_assignment() owner to trustctl_owner;
revoke all on function app.check_new_role_assignment() from public;
create trigger role_assignments_check_new after insert on role_assignments
  for each row execute function app.check_new_role_assignment();

-- A teacher's classes and a guardian's children, for the current user's
-- organisation and id (the pair), at sites where the role is live.
create or replace function app.user_teacher_children() returns table (org_id uuid, site_id uuid, child_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct c.org_id, c.site_id, c.child_id
  from public.group_memberships t
  join public.group_memberships c
    on c.org_id = t.org_id and c.site_id = t.site_id and c.group_id = t.group_id and c.child_id is not null
  where t.org_id = app.current_user_org_id() and t.staff_id = app.current_user_id()
    and t.role in ('teacher', 'assistant')
    and (t.org_id, t.site_id) in (select r.org_id, r.site_id from app.live_roles() r where r.role = 'teacher')
$$;

create or replace function app.user_guardian_children() returns table (org_id uuid, site_id uuid, child_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct g.org_id, g.site_id, g.child_id
  from public.guardianships g
  where g.org_id = app.current_user_org_id() and g.guardian_id = app.current_user_id()
    and (g.org_id, g.site_id) in (select r.org_id, r.site_id from app.live_roles() r where r.role = 'guardian')
$$;

create or replace function app.probe_boundary(p_org uuid, p_site uuid, p_tables text[], p_rows jsonb)
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  t text;
  rel regclass;
  n bigint;
  cols text;
  row_json jsonb;
  k text;
  v_outcome text;
  v_detail text;
  v_out jsonb := '[]';
begin
  begin
    foreach t in array p_tables loop
      rel := pg_catalog.to_regclass(pg_catalog.format('public.%I', t));
      if rel is null or not exists (select 1 from pg_catalog.pg_attribute a
          where a.attrelid = rel and a.attname = 'org_id' and not a.attisdropped) then
        raise exception 'probe_boundary: % is not a tenant table in schema public', t using errcode = '22023';
      end if;
      begin
        execute pg_catalog.format('select count(*) from (select 1 from %s where %s limit 1000) x', rel,
          app.probe_foreign(p_org, p_site, rel)) into n;
        v_outcome := case when n > 0 then 'violation' else 'ok' end;
        v_detail := n::text;
      exception when insufficient_privilege then
        v_outcome := 'refused'; v_detail := sqlerrm;
      when others then
        v_outcome := 'error'; v_detail := sqlstate || ': ' || sqlerrm;
      end;
      v_out := v_out || pg_catalog.jsonb_build_object('table_name', t, 'probe', 'select', 'outcome', v_outcome, 'detail', v_detail);

      row_json := p_rows -> t;
      continue when row_json is null;
      begin
        -- A copy of another tenant's row, with fresh uuid keys other than the tenant key.
        for k in
          select a.attname from pg_catalog.pg_index i
          join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
          where i.indrelid = rel and i.indisunique and a.atttypid = 'uuid'::regtype and a.attname not in ('org_id', 'site_id')
        loop
          row_json := pg_catalog.jsonb_set(row_json, array[k], pg_catalog.to_jsonb(pg_catalog.gen_random_uuid()));
        end loop;
        select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum) into cols
        from pg_catalog.pg_attribute a
        where a.attrelid = rel and a.attnum > 0 and not a.attisdropped and a.attidentity <> 'a' and a.attgenerated = ''
          and row_json ? a.attname;
        execute pg_catalog.format('insert into %1$s (%2$s) select %2$s from pg_catalog.jsonb_populate_record(null::%1$s, $1)', rel, cols)
          using row_json;
        v_outcome := 'violation'; v_detail := '1';
      exception when insufficient_privilege then
        v_outcome := 'refused'; v_detail := sqlerrm;
      when others then
        -- A refusal by trustctl's own guards (SQLSTATE class TC, e.g. the
        -- grant guard, which runs before row-level security) is a refusal;
        -- the policies themselves are checked by app.doctor_policy_reach.
        if sqlstate like 'TC%' then
          v_outcome := 'refused'; v_detail := sqlstate || ': ' || sqlerrm;
        else
          v_outcome := 'error'; v_detail := sqlstate || ': ' || sqlerrm;
        end if;
      end;
      v_out := v_out || pg_catalog.jsonb_build_object('table_name', t, 'probe', 'insert', 'outcome', v_outcome, 'detail', v_detail);
    end loop;
    raise exception 'probe_boundary undoes its own changes' using errcode = 'TCP01';
  exception when sqlstate 'TCP01' then
    null;
  end;
  return query select x.table_name, x.probe, x.outcome, x.detail
    from pg_catalog.jsonb_to_recordset(v_out) as x(table_name text, probe text, outcome text, detail text);
end
$$;

alter function app.is_support_user(uuid, uuid) owner to trustctl_definer;
alter function app.continuous_access_start(uuid, uuid, uuid, uuid, text, timestamptz, timestamptz) owner to trustctl_definer;
revoke all on function app.is_support_user(uuid, uuid), app.continuous_access_start(uuid, uuid, uuid, uuid, text, timestamptz, timestamptz) from public;
grant execute on function app.is_support_user(uuid, uuid), app.continuous_access_start(uuid, uuid, uuid, uuid, text, timestamptz, timestamptz)
  to trustctl_operator;
grant execute on function app.access_policy_for(uuid, text) to app_user;
grant select on organisations to trustctl_definer;

select app.record_reviewed_definer(x.f::regprocedure, x.why) from (values
  ('app.user_teacher_children()', 'children in classes the current user (organisation and id) teaches, where the teacher role is live'),
  ('app.user_guardian_children()', 'the current user''s (organisation and id) own children, where the guardian link is live'),
  ('app.is_support_user(uuid, uuid)', 'whether one user is platform support staff: no personal data'),
  ('app.continuous_access_start(uuid, uuid, uuid, uuid, text, timestamptz, timestamptz)', 'one timestamp about one user''s grants in an organisation the caller''s session covers'),
  ('app.access_policy_for(uuid, text)', 'one organisation''s access policy row: not personal data'),
  ('app.operator_session_user(uuid)', 'the operator role name of a session, for the self-approval check')
) x(f, why);
