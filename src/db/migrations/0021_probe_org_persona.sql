-- The doctor's live probe (issue 16, item 11): an organisation admin's
-- insert at another site of their own organisation is legitimate. When the
-- other organisations had no rows of a table (all archived, say), the probe
-- aimed at a row of another site and reported the organisation admin's
-- allowed insert as crossing the boundary. A persona without a site now
-- aims only across organisations.
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
      -- A persona of the whole organisation (no site) may write at any of its
      -- sites: a row of another site of the same organisation is no boundary.
      continue when p_site is null and p_org is not null and (row_json ->> 'org_id')::uuid = p_org;
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
