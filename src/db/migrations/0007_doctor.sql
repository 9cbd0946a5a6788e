-- trustctl doctor (docs/doctor.md): the live probe's persona, and the
-- schema's two deliberate exceptions to the doctor's key checks, recorded
-- where a reviewer sees them (in the catalog, as comments).
--
-- The probe acts as a synthetic user of one site. An operator cannot become
-- app_user (that would let it read as any user without an operator session),
-- so the app side of the probe runs inside app.doctor_probe_as_user, a
-- SECURITY DEFINER function owned by trustctl_probe: a NOLOGIN member of
-- app_user, subject to app_user's policies, not BYPASSRLS, owning no table.
-- It acts only as a user created by the calling transaction, which an
-- operator can do only inside an operator session covering that user's
-- organisation (and which the doctor rolls back), so it gives an operator no
-- data it could not already read.
do $$
begin
  if not exists (select from pg_roles where rolname = 'trustctl_probe') then
    create role trustctl_probe nologin;
  end if;
end
$$;
alter role trustctl_probe nologin nosuperuser nobypassrls nocreatedb nocreaterole noreplication;
grant app_user to trustctl_probe;

-- Probes every table in p_tables as the current role, in the caller's
-- transaction: rows outside (p_org, p_site) visible (counted up to 1000),
-- UPDATE and DELETE of such rows, and INSERT of p_rows' copy of a foreign row
-- (with fresh uuid keys). p_org null: every row is foreign (an operator
-- without a session). SECURITY INVOKER: it runs with the caller's rights.
-- Each attempt runs in its own subtransaction; the caller rolls back.
-- outcome: 'ok' | 'refused' (SQLSTATE 42501) | 'violation' | 'error'.
create function app.probe_boundary(p_org uuid, p_site uuid, p_tables text[], p_rows jsonb)
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  t text;
  rel regclass;
  has_site boolean;
  foreign_rows text;
  n bigint;
  cols text;
  row_json jsonb;
  k text;
begin
  foreach t in array p_tables loop
    rel := pg_catalog.to_regclass(pg_catalog.format('public.%I', t));
    if rel is null or not exists (select 1 from pg_catalog.pg_attribute a
        where a.attrelid = rel and a.attname = 'org_id' and not a.attisdropped) then
      raise exception 'probe_boundary: % is not a tenant table in schema public', t using errcode = '22023';
    end if;
    has_site := exists (select 1 from pg_catalog.pg_attribute a where a.attrelid = rel and a.attname = 'site_id' and not a.attisdropped);
    foreign_rows := case
      when p_org is null then 'true'
      when has_site then pg_catalog.format('(org_id, site_id) is distinct from (%L::uuid, %L::uuid)', p_org, p_site)
      else pg_catalog.format('org_id is distinct from %L::uuid', p_org) end;

    table_name := t;
    foreach probe in array array['select', 'update', 'delete'] loop
      begin
        if probe = 'select' then
          execute pg_catalog.format('select count(*) from (select 1 from %s where %s limit 1000) x', rel, foreign_rows) into n;
        else
          execute pg_catalog.format(case probe
              when 'update' then 'update %1$s set org_id = org_id where ctid in (select ctid from %1$s where %2$s limit 10)'
              else 'delete from %1$s where ctid in (select ctid from %1$s where %2$s limit 10)' end,
            rel, foreign_rows);
          get diagnostics n = row_count;
        end if;
        outcome := case when n > 0 then 'violation' else 'ok' end;
        detail := n::text;
      exception when insufficient_privilege then
        outcome := 'refused'; detail := sqlerrm;
      when others then
        outcome := 'error'; detail := sqlstate || ': ' || sqlerrm;
      end;
      return next;
    end loop;

    row_json := p_rows -> t;
    if row_json is null then
      probe := 'insert'; outcome := 'skipped'; detail := 'no row of another site to copy';
      return next;
      continue;
    end if;
    -- Fresh values for uuid key columns other than the tenant key, so the
    -- copy is a new row rather than a conflict.
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
    probe := 'insert';
    begin
      execute pg_catalog.format('insert into %1$s (%2$s) select %2$s from pg_catalog.jsonb_populate_record(null::%1$s, $1)', rel, cols)
        using row_json;
      outcome := 'violation'; detail := 'a row of another tenant was accepted';
    exception when insufficient_privilege then
      outcome := 'refused'; detail := sqlerrm;
    when others then
      outcome := 'error'; detail := sqlstate || ': ' || sqlerrm;
    end;
    return next;
  end loop;
end
$$;

-- Runs app.probe_boundary as the synthetic user p_user (app.user_id set for
-- the rest of the transaction), confined to that user's own organisation and
-- site. p_user must have been inserted by the calling transaction.
create function app.doctor_probe_as_user(p_user uuid, p_tables text[], p_rows jsonb)
returns table (table_name text, probe text, outcome text, detail text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_org uuid;
  v_site uuid;
begin
  perform pg_catalog.set_config('app.user_id', p_user::text, true);
  select u.org_id, u.site_id into v_org, v_site
  from public.users u
  where u.id = p_user and u.xmin = pg_catalog.pg_current_xact_id()::xid and u.site_id is not null;
  if v_org is null then
    perform pg_catalog.set_config('app.user_id', '', true);
    raise exception 'doctor_probe_as_user: % is not a site user created by this transaction', p_user
      using errcode = '42501';
  end if;
  return query select * from app.probe_boundary(v_org, v_site, p_tables, p_rows);
  perform pg_catalog.set_config('app.user_id', '', true);
end
$$;

revoke all on function app.probe_boundary(uuid, uuid, text[], jsonb) from public;
revoke all on function app.doctor_probe_as_user(uuid, text[], jsonb) from public;
alter function app.probe_boundary(uuid, uuid, text[], jsonb) owner to trustctl_owner;
alter function app.doctor_probe_as_user(uuid, text[], jsonb) owner to trustctl_probe;
grant execute on function app.probe_boundary(uuid, uuid, text[], jsonb) to trustctl_operator, trustctl_probe;
grant execute on function app.doctor_probe_as_user(uuid, text[], jsonb) to trustctl_operator;

-- Deliberate exceptions, accepted in the catalog (docs/doctor.md#accepted).
comment on index organisations_slug_key is
  'trustctl-doctor: accept unique-without-tenant-key: the organisation slug names the tenant itself and is unique platform-wide';
comment on constraint role_assignments_user_org_id_user_id_fkey on role_assignments is
  'trustctl-doctor: accept foreign-key-without-tenant-key: a grant may name a support user of the platform organisation (user_org_id); the grant itself is scoped by its own org_id';
