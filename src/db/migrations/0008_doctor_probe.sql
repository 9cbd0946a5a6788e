-- The doctor's live probe, rebuilt (replaces 0007's entry point; docs/doctor.md).
--
-- 0007 let the operator create the synthetic user with plain SQL and relied
-- on the caller rolling back. An independent review showed that an operator
-- could then act as a real user of another organisation (same id) and commit
-- what the probe changed, and that UPDATE and DELETE leaks went unseen
-- whenever SELECT was tight (the probe's statements read rows, which brings
-- in the SELECT policy). Now:
--
--   app.doctor_probe        the only entry point, for an operator in a
--                           session covering the home organisation. It makes
--                           the synthetic people itself, runs every probe,
--                           and undoes all of it (a subtransaction ended by an
--                           exception), so nothing survives even if the caller
--                           commits. It picks the rows to aim at itself.
--   app.probe_boundary      real statements through row-level security as the
--                           current role and settings: other tenants' rows
--                           seen, and a copy of one inserted. Undoes itself.
--   app.doctor_policy_reach evaluates a role's combined policies (permissive
--                           OR-ed, restrictive AND-ed) for a command over
--                           other tenants' rows, under the current settings,
--                           without row-level security: what UPDATE (USING
--                           and WITH CHECK), DELETE and INSERT would admit.
--                           Internal to app.doctor_probe.

grant insert on users, role_assignments, groups, group_memberships, guardianships to trustctl_definer;
grant select on all tables in schema public to trustctl_definer;

-- p_org null: every row is another tenant's. p_site null: rows outside
-- p_org are. Otherwise rows outside (p_org, p_site), except organisation-level
-- rows (site_id null) of p_org.
create function app.probe_foreign(p_org uuid, p_site uuid, p_table regclass) returns text
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select case
    when p_org is null then 'true'
    when p_site is null or not exists (select 1 from pg_catalog.pg_attribute a
        where a.attrelid = p_table and a.attname = 'site_id' and not a.attisdropped)
      then pg_catalog.format('org_id is distinct from %L::uuid', p_org)
    else pg_catalog.format('(org_id is distinct from %L::uuid or (site_id is not null and site_id is distinct from %L::uuid))', p_org, p_site)
  end
$$;

drop function app.probe_boundary(uuid, uuid, text[], jsonb);
create function app.probe_boundary(p_org uuid, p_site uuid, p_tables text[], p_rows jsonb)
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
        v_outcome := 'error'; v_detail := sqlstate || ': ' || sqlerrm;
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

drop function app.doctor_probe_as_user(uuid, text[], jsonb);
-- probe_boundary as a given app user (both settings set). Internal to app.doctor_probe.
create function app.doctor_probe_as_user(p_user_org uuid, p_user uuid, p_org uuid, p_site uuid, p_tables text[], p_rows jsonb)
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_catalog.set_config('app.user_org_id', p_user_org::text, true);
  perform pg_catalog.set_config('app.user_id', p_user::text, true);
  return query select * from app.probe_boundary(p_org, p_site, p_tables, p_rows);
end
$$;

-- How many other tenants' rows (up to 1000) the combined policies of p_role
-- admit for a command, under the current settings, per table:
-- select/delete: USING; update: USING, then WITH CHECK (or USING); insert: WITH CHECK.
create function app.doctor_policy_reach(p_role regrole, p_org uuid, p_site uuid, p_tables text[])
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  t text;
  rel regclass;
  v_roles oid[];
  v_cmd text;
  v_step record;
  v_perm text;
  v_restr text;
  n bigint;
  v_foreign text;
begin
  -- The role, PUBLIC, and every role it belongs to.
  with recursive up(r) as (select p_role::oid union select m.roleid from pg_catalog.pg_auth_members m join up on m.member = up.r)
  select pg_catalog.array_agg(r) || '{0}'::oid[] into v_roles from up;
  foreach t in array p_tables loop
    rel := pg_catalog.to_regclass(pg_catalog.format('public.%I', t));
    v_foreign := app.probe_foreign(p_org, p_site, rel);
    for v_step in select * from (values ('select', 'r', false), ('insert', 'a', true), ('update', 'w', false), ('update', 'w', true), ('delete', 'd', false)) s(probe, cmd, is_check) loop
      select
        pg_catalog.string_agg('(' || coalesce(pg_catalog.pg_get_expr(case when v_step.is_check then coalesce(p.polwithcheck, case when p.polcmd <> 'a' then p.polqual end) else p.polqual end, p.polrelid), 'false') || ')', ' or ')
          filter (where p.polpermissive),
        pg_catalog.string_agg('(' || coalesce(pg_catalog.pg_get_expr(case when v_step.is_check then coalesce(p.polwithcheck, case when p.polcmd <> 'a' then p.polqual end) else p.polqual end, p.polrelid), 'false') || ')', ' and ')
          filter (where not p.polpermissive)
        into v_perm, v_restr
      from pg_catalog.pg_policy p
      where p.polrelid = rel and p.polcmd in (v_step.cmd, '*') and p.polroles && v_roles;
      -- No privilege for the command: refused before any policy.
      if not pg_catalog.has_table_privilege(p_role, rel, upper(v_step.probe)) then
        table_name := t; probe := v_step.probe; outcome := 'refused'; detail := 'no privilege';
      elsif v_perm is null then
        table_name := t; probe := v_step.probe; outcome := 'refused'; detail := 'no policy';
      else
        begin
          execute pg_catalog.format('select count(*) from (select 1 from %s where (%s) and (%s) and %s limit 1000) x',
            rel, v_perm, coalesce(v_restr, 'true'), v_foreign) into n;
          table_name := t; probe := v_step.probe;
          outcome := case when n > 0 then 'violation' else 'ok' end;
          detail := n::text || case when v_step.is_check and v_step.probe = 'update' then ' (as new rows)' else '' end;
        exception when others then
          table_name := t; probe := v_step.probe; outcome := 'error'; detail := sqlstate || ': ' || sqlerrm;
        end;
      end if;
      return next;
    end loop;
  end loop;
end
$$;

-- The probe. For an operator in a session covering p_org: personas are a
-- synthetic site user at p_site (every site role, teaching a class with a
-- child of the site in it, guardian of that child), a synthetic organisation
-- admin (and organisation-wide safeguarding lead) of p_org, and operators
-- without a session, with a made-up session id, and in the caller's own
-- session (which must cover p_org only). Returns, per persona, table and
-- probe: how (statement or policy), the outcome and a detail. Undoes every
-- change before returning.
create function app.doctor_probe(p_org uuid, p_site uuid, p_tables text[])
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

revoke all on function app.probe_foreign(uuid, uuid, regclass) from public;
revoke all on function app.probe_boundary(uuid, uuid, text[], jsonb) from public;
revoke all on function app.doctor_probe_as_user(uuid, uuid, uuid, uuid, text[], jsonb) from public;
revoke all on function app.doctor_policy_reach(regrole, uuid, uuid, text[]) from public;
revoke all on function app.doctor_probe(uuid, uuid, text[]) from public;
alter function app.probe_foreign(uuid, uuid, regclass) owner to trustctl_owner;
alter function app.probe_boundary(uuid, uuid, text[], jsonb) owner to trustctl_owner;
alter function app.doctor_probe_as_user(uuid, uuid, uuid, uuid, text[], jsonb) owner to trustctl_probe;
alter function app.doctor_policy_reach(regrole, uuid, uuid, text[]) owner to trustctl_definer;
alter function app.doctor_probe(uuid, uuid, text[]) owner to trustctl_definer;
grant execute on function app.probe_foreign(uuid, uuid, regclass) to trustctl_operator, trustctl_probe, trustctl_definer;
grant execute on function app.probe_boundary(uuid, uuid, text[], jsonb) to trustctl_operator, trustctl_probe;
grant execute on function app.doctor_probe_as_user(uuid, uuid, uuid, uuid, text[], jsonb) to trustctl_definer;
grant execute on function app.doctor_policy_reach(regrole, uuid, uuid, text[]) to trustctl_definer;
grant execute on function app.doctor_probe(uuid, uuid, text[]) to trustctl_operator;
