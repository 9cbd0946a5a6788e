-- Operator-proof rules, part 2 (docs/threat-model.md). Closes:
--
-- 1. Rules only the CLI enforced. An operator with psql could DELETE or
--    UPDATE any personal row in its session's scope: skip a legal hold,
--    delete before the retention period, delete a hold itself. Now an
--    operator changes personal data only under a PURPOSE bound to the
--    transaction by a definer function that checks it first:
--      app.begin_retention_batch(run)   a running sweep run whose cut-off the
--                                       current policy allows; rows changed
--                                       must be its table's, in its scope,
--                                       past its cut-off (archived first for
--                                       an archive run)
--      app.begin_erasure(org, ref, id)  an open erasure request for that
--                                       person; rows changed must be about
--                                       them, and none whose statutory
--                                       period is running is deleted
--      app.begin_archive_purge(org)     archived rows of that organisation
--    and, whatever the purpose, never a row an active legal hold covers.
--    A statement-level trigger checks every changed row at once (transition
--    tables), from the data map's rules (app.datamap_rules, written from
--    src/datamap by db migrate). Legal holds are released, never deleted or
--    moved; a request's kind, subject and reference never change.
-- 2. Unaudited schemas. archive tables had no capture and operators held
--    INSERT on them. They are now captured like public tables; operators
--    archive only through app.archive_rows (under a sweep purpose, copying
--    the live rows) and delete archived rows only under a purpose.

set local role trustctl_owner;

-- The data map's rules, per table and schema: written by db migrate from
-- src/datamap (the one definition), read by the guard below.
create table app.datamap_rules (
  schema_name text not null,
  table_name text not null,
  -- Retention category and clock (a column, child_left_on or child_25th_birthday); null if never swept.
  category text,
  clock text,
  -- Erasure keeps rows until this clock has passed.
  statutory_clock text,
  -- Columns that are, or are about, the person: [{"column", "array", "org_column"}].
  own_refs jsonb not null default '[]',
  -- Every column naming a person (a hold on a person covers the row).
  hold_columns text[] not null default '{}',
  hold_array_columns text[] not null default '{}',
  has_site boolean not null,
  -- The row's id column, and what anonymising it may do to each column ({"column": "null|redact|generalise_date|pseudonym"}).
  id_column text not null,
  anonymise jsonb not null default '{}',
  primary key (schema_name, table_name)
);
revoke all on app.datamap_rules from public;

reset role;
grant select on app.datamap_rules to trustctl_definer, trustctl_operator;

-- SQL over alias t (a row of the rule's table): the retention clock.
create function app.rule_clock_sql(p_clock text) returns text
language sql immutable set search_path = pg_catalog, pg_temp
as $$
  select case p_clock
    when 'child_left_on' then '(select c.left_on::timestamptz from public.children c where c.org_id = t.org_id and c.id = t.child_id)'
    when 'child_25th_birthday' then '(select (c.date_of_birth + interval ''25 years'')::timestamptz from public.children c where c.org_id = t.org_id and c.id = t.child_id)'
    else pg_catalog.format('t.%I::timestamptz', p_clock)
  end
$$;

-- SQL over alias t: an active legal hold covers the row.
create function app.rule_held_sql(r app.datamap_rules) returns text
language plpgsql immutable set search_path = pg_catalog, pg_temp
as $$
declare
  v_subject text := 'h.subject_id is null';
  c text;
begin
  foreach c in array r.hold_columns loop
    v_subject := v_subject || pg_catalog.format(' or h.subject_id = t.%I', c);
  end loop;
  foreach c in array r.hold_array_columns loop
    v_subject := v_subject || pg_catalog.format(' or h.subject_id = any (t.%I)', c);
  end loop;
  return pg_catalog.format(
    'exists (select 1 from public.legal_holds h where h.org_id = t.org_id and h.released_at is null'
    ' and (h.site_id is null%s) and (h.category is null%s) and (%s))',
    case when r.has_site then ' or h.site_id = t.site_id' else '' end,
    case when r.category is null then '' else pg_catalog.format(' or h.category = %L', r.category) end,
    v_subject);
end
$$;

-- SQL over alias t: the row is, or is about, person p_subject of p_org.
create function app.rule_own_sql(r app.datamap_rules, p_org uuid, p_subject uuid) returns text
language plpgsql immutable set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := '{}';
  x jsonb;
begin
  for x in select * from pg_catalog.jsonb_array_elements(r.own_refs) loop
    v_parts := v_parts || (
      case when (x ->> 'array')::boolean
        then pg_catalog.format('t.%I @> array[%L::uuid]', x ->> 'column', p_subject)
        else pg_catalog.format('t.%I = %L::uuid', x ->> 'column', p_subject) end
      || case when x ->> 'org_column' is not null then pg_catalog.format(' and t.%I = %L::uuid', x ->> 'org_column', p_org) else '' end);
  end loop;
  if pg_catalog.cardinality(v_parts) = 0 then return 'false'; end if;
  return pg_catalog.format('(t.org_id = %L::uuid and coalesce((%s), false))', p_org, pg_catalog.array_to_string(v_parts, ') or ('));
end
$$;

-- SQL over aliases o (a row before an UPDATE) and n (after): n is o with
-- nothing changed but columns set to their anonymised values, as the data
-- map anonymises them (src/datamap/anonymise.ts), or left as they were.
create function app.rule_anonymised_update_sql(r app.datamap_rules) returns text
language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := array[pg_catalog.format('(pg_catalog.to_jsonb(o) - %L::text[]) = (pg_catalog.to_jsonb(n) - %L::text[])',
    (select coalesce(pg_catalog.array_agg(k), '{}') from pg_catalog.jsonb_object_keys(r.anonymise) k),
    (select coalesce(pg_catalog.array_agg(k), '{}') from pg_catalog.jsonb_object_keys(r.anonymise) k))];
  x record;
begin
  for x in select * from pg_catalog.jsonb_each_text(r.anonymise) loop
    v_parts := v_parts || pg_catalog.format('(n.%1$I is not distinct from o.%1$I or %2$s)', x.key,
      case x.value
        when 'null' then pg_catalog.format('n.%I is null', x.key)
        when 'redact' then pg_catalog.format('n.%1$I::text is not distinct from (case when o.%1$I is null then null else ''[redacted]'' end)', x.key)
        when 'generalise_date' then pg_catalog.format('n.%1$I is not distinct from (pg_catalog.date_trunc(''year'', o.%1$I) + interval ''1 year - 1 day'')::date', x.key)
        when 'pseudonym' then pg_catalog.format('n.%1$I::text is not distinct from (case when o.%1$I is null then null else app.erasure_pseudonym(o.org_id, o.%2$I) end)', x.key, r.id_column)
        else 'false' end);
  end loop;
  return pg_catalog.array_to_string(v_parts, ' and ');
end
$$;

-- The purposes. Each binds the context first, then records the purpose in
-- the binding; one purpose per transaction.
create function app.set_purpose(p_purpose text, p_org uuid, p_site uuid, p_table text, p_run uuid, p_action text,
  p_cutoff timestamptz, p_subject uuid) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
begin
  if not b.session_ok then
    raise exception 'no open operator session' using errcode = 'TC005';
  end if;
  if b.purpose is not null and (b.purpose, b.purpose_org, b.purpose_run, b.purpose_subject)
       is distinct from (p_purpose, p_org, p_run, p_subject) then
    raise exception 'this transaction already acts for %; one purpose per transaction', b.purpose using errcode = 'TC042';
  end if;
  update app.context_bindings c
     set purpose = p_purpose, purpose_org = p_org, purpose_site = p_site, purpose_table = p_table, purpose_run = p_run,
         purpose_action = p_action, purpose_cutoff = p_cutoff, purpose_subject = p_subject
   where c.backend_pid = pg_catalog.pg_backend_pid() and c.xact = b.xact;
end
$$;

-- A batch of a retention sweep run: the run must be running, in the
-- session's scope, and its cut-off allowed by the policy in force now.
create function app.begin_retention_batch(p_run uuid) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_run public.retention_runs;
  v_policy public.retention_policies;
begin
  perform app.bind_context();
  select * into v_run from public.retention_runs r where r.id = p_run and r.org_id = any (app.operator_org_ids());
  if not found then
    raise exception 'retention run % is not in the open session''s organisations', p_run using errcode = 'TC005';
  end if;
  if v_run.status <> 'running' then
    raise exception 'retention run % is %, not running', p_run, v_run.status using errcode = 'TC043';
  end if;
  select * into v_policy from public.retention_policies p
   where p.org_id = v_run.org_id and p.category = v_run.category and (p.site_id = v_run.site_id or p.site_id is null)
   order by p.site_id nulls last limit 1;
  if not found or v_policy.action is distinct from v_run.action
     or v_run.cutoff > pg_catalog.statement_timestamp() - v_policy.keep_for then
    raise exception 'retention run %: the policy in force does not allow its cut-off or action', p_run using errcode = 'TC043';
  end if;
  perform app.check_policy_author(v_policy.set_by_session, v_policy.updated_at);
  if not exists (select 1 from app.datamap_rules d where d.schema_name = 'public' and d.table_name = v_run.table_name
                 and d.category = v_run.category) then
    raise exception 'retention run %: % is not a table of category %', p_run, v_run.table_name, v_run.category using errcode = 'TC043';
  end if;
  perform app.set_purpose('retention', v_run.org_id, v_run.site_id, v_run.table_name, v_run.id, v_run.action, v_run.cutoff, null);
end
$$;

-- Erasure of one person under an open erasure request naming them.
create function app.begin_erasure(p_org uuid, p_reference text, p_subject uuid) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.require_operator_org(p_org);
  if not exists (select 1 from public.dsar_requests d where d.org_id = p_org and d.reference = p_reference
                   and d.kind = 'erasure' and d.status = 'open' and d.subject_id = p_subject) then
    raise exception 'no open erasure request % for this person', p_reference using errcode = 'TC044';
  end if;
  perform app.set_purpose('erasure', p_org, null, null, null, null, null, p_subject);
end
$$;

-- Purging archived rows of one organisation (after retention archive export).
create function app.begin_archive_purge(p_org uuid) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.require_operator_org(p_org);
  perform app.set_purpose('archive_purge', p_org, null, null, null, null, null, null);
end
$$;

-- Copies rows of the sweep batch's table into its archive table, only those
-- the batch may take (its scope, past the cut-off, under no hold). Returns
-- how many were copied.
create function app.archive_rows(p_ids uuid[]) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  r app.datamap_rules;
  v_cols text;
  n bigint;
begin
  if b.purpose is distinct from 'retention' or b.purpose_action is distinct from 'archive' then
    raise exception 'archive_rows: only inside a retention batch of an archive run (app.begin_retention_batch)' using errcode = 'TC040';
  end if;
  perform app.require_operator_org(b.purpose_org);
  select * into strict r from app.datamap_rules d where d.schema_name = 'public' and d.table_name = b.purpose_table;
  select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum) into v_cols
    from pg_catalog.pg_attribute a
   where a.attrelid = pg_catalog.format('archive.%I', b.purpose_table)::regclass and a.attnum > 0 and not a.attisdropped
     and a.attname not in ('archived_at', 'run_id')
     and exists (select 1 from pg_catalog.pg_attribute p where p.attrelid = pg_catalog.format('public.%I', b.purpose_table)::regclass
                  and p.attname = a.attname and not p.attisdropped);
  execute pg_catalog.format(
    'insert into archive.%1$I (%2$s, archived_at, run_id) select %3$s, pg_catalog.statement_timestamp(), $1 from public.%1$I t'
    ' where t.org_id = $2 and t.id = any ($3) %4$s and %5$s <= $4 and not %6$s',
    b.purpose_table, v_cols, (select pg_catalog.string_agg('t.' || c, ', ') from pg_catalog.unnest(pg_catalog.string_to_array(v_cols, ', ')) c),
    case when r.has_site then 'and t.site_id is not distinct from $5' else '' end,
    app.rule_clock_sql(r.clock), app.rule_held_sql(r))
  using b.purpose_run, b.purpose_org, p_ids, b.purpose_cutoff, b.purpose_site;
  get diagnostics n = row_count;
  return n;
end
$$;

-- AFTER each UPDATE or DELETE statement on a personal table, for an
-- operator: every changed row must be outside every active hold and inside
-- the transaction's purpose. Runs as the caller (it reads under the
-- caller's row-level security, which covers every row it just changed).
create function app.guard_operator_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  r app.datamap_rules;
  b app.context_bindings;
  v_bad text;
  n bigint;
begin
  if not pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER')
     or exists (select 1 from pg_catalog.pg_roles x where x.rolname = current_user and x.rolsuper) then
    return null;
  end if;
  select * into r from app.datamap_rules d where d.schema_name = tg_table_schema and d.table_name = tg_table_name;
  if not found then
    raise exception '%.% has no data map rule; refusing an operator''s change', tg_table_schema, tg_table_name using errcode = 'TC040';
  end if;
  -- A statement that changed no row changed nothing to guard.
  if not exists (select 1 from old_rows) then
    return null;
  end if;
  b := app.bind_context();

  execute pg_catalog.format('select count(*) from old_rows t where %s', app.rule_held_sql(r)) into n;
  if n > 0 then
    raise exception '% row(s) of %.% are under an active legal hold: refused', n, tg_table_schema, tg_table_name
      using errcode = 'TC041', hint = 'Release the hold first (trustctl hold release), with its reason';
  end if;

  if tg_table_name in ('erasures', 'retention_runs') then
    v_bad := pg_catalog.format('%s rows are kept as history', tg_table_name);
  elsif b.purpose = 'retention' then
    if tg_table_schema <> 'public' or tg_table_name <> b.purpose_table
       or (tg_op = 'UPDATE') <> (b.purpose_action = 'anonymise') then
      v_bad := pg_catalog.format('a % of %.% is not what retention run % does (%s of %s)', lower(tg_op), tg_table_schema, tg_table_name,
                                 b.purpose_run, b.purpose_action, b.purpose_table);
    else
      execute pg_catalog.format('select count(*) from old_rows t where not (t.org_id = $1 %s and coalesce(%s <= $3, false) %s)',
        case when r.has_site then 'and t.site_id is not distinct from $2' else '' end,
        app.rule_clock_sql(r.clock),
        case when b.purpose_action = 'archive'
          then pg_catalog.format('and exists (select 1 from archive.%I a where a.org_id = t.org_id and a.id = t.id and a.run_id = $4)', tg_table_name)
          else '' end)
        into n using b.purpose_org, b.purpose_site, b.purpose_cutoff, b.purpose_run;
      if n > 0 then
        v_bad := pg_catalog.format('%s row(s) are outside retention run %s (scope, cut-off%s)', n, b.purpose_run,
                                   case when b.purpose_action = 'archive' then ', or not archived first' else '' end);
      end if;
    end if;
  elsif b.purpose = 'erasure' then
    -- A statutory period whose clock cannot be read is still running.
    execute pg_catalog.format('select count(*) from old_rows t where not %s %s',
      app.rule_own_sql(r, b.purpose_org, b.purpose_subject),
      case when tg_op = 'DELETE' and r.statutory_clock is not null
        then pg_catalog.format('or coalesce(%s > pg_catalog.transaction_timestamp(), true)', app.rule_clock_sql(r.statutory_clock))
        else '' end) into n;
    if n > 0 then
      v_bad := pg_catalog.format('%s row(s) are not the erased person''s, or are kept by a statutory rule', n);
    end if;
  elsif b.purpose = 'archive_purge' then
    if tg_op <> 'DELETE' or tg_table_schema <> 'archive' then
      v_bad := 'an archive purge only deletes archived rows';
    else
      execute 'select count(*) from old_rows t where t.org_id <> $1' into n using b.purpose_org;
      if n > 0 then v_bad := 'archived rows of another organisation'; end if;
    end if;
  else
    v_bad := 'no purpose';
  end if;
  -- Whatever the purpose, an UPDATE only anonymises, as the data map says:
  -- no other column changes, and no person, date or clock moves elsewhere.
  if v_bad is null and tg_op = 'UPDATE' then
    execute pg_catalog.format('select count(*) from new_rows n where not exists (select 1 from old_rows o'
      ' where o.org_id = n.org_id and o.%1$I = n.%1$I and %2$s)', r.id_column, app.rule_anonymised_update_sql(r)) into n;
    if n > 0 then
      v_bad := pg_catalog.format('%s row(s) changed other than by anonymising them as the data map says', n);
    end if;
  end if;
  if v_bad is not null then
    raise exception 'an operator changes personal data only through trustctl (retention sweep, dsar erase, archive export): %', v_bad
      using errcode = 'TC040';
  end if;
  return null;
end
$$;

-- History the database writes itself, whoever inserts: holds are created
-- active and released once, with a reason, at the moment of the release,
-- never deleted or moved; a request's identity never changes after it is
-- recorded; an erasure ledger row is written only under an erasure purpose
-- for its person, and changes only in its pending media removals, its seal
-- (once) and the certificate's delivery. Every operator session column is
-- stamped with the transaction's bound session, never taken from the row.
create function app.guard_history_columns() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  v_operator boolean := pg_catalog.pg_has_role(current_user, 'trustctl_operator', 'MEMBER');
  b app.context_bindings;
  v_session uuid;
begin
  if exists (select 1 from pg_catalog.pg_roles x where x.rolname = current_user and x.rolsuper) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  if v_operator and tg_op <> 'DELETE' then
    b := app.bind_context();
    v_session := case when b.session_ok then b.operator_session end;
  end if;
  if tg_table_name = 'legal_holds' then
    if tg_op = 'DELETE' then
      raise exception 'legal holds are released (trustctl hold release), never deleted' using errcode = 'TC041';
    elsif tg_op = 'INSERT' then
      if (new.released_at, new.released_by_session, new.release_reason) is distinct from (null, null, null) then
        raise exception 'a legal hold is created active; release it afterwards' using errcode = 'TC041';
      end if;
      new.created_at := pg_catalog.statement_timestamp();
      if v_operator then new.created_by_session := v_session; end if;
    else
      if (new.org_id, new.site_id, new.id, new.subject_id, new.category, new.reason, new.created_at, new.created_by_session)
         is distinct from (old.org_id, old.site_id, old.id, old.subject_id, old.category, old.reason, old.created_at, old.created_by_session)
         or (old.released_at is not null and row(new.*) is distinct from row(old.*))
         or (new.released_at is null and (new.released_by_session, new.release_reason) is distinct from (old.released_by_session, old.release_reason)) then
        raise exception 'a legal hold can only be released, once' using errcode = 'TC041';
      end if;
      if old.released_at is null and new.released_at is not null then
        new.released_at := pg_catalog.statement_timestamp();
        if v_operator then new.released_by_session := v_session; end if;
      end if;
    end if;
  elsif tg_table_name = 'dsar_requests' then
    if tg_op = 'INSERT' then
      if v_operator then new.created_by_session := v_session; end if;
    elsif (new.org_id, new.id, new.reference, new.kind, new.subject_type, new.subject_id, new.received_on, new.created_at, new.created_by_session)
       is distinct from (old.org_id, old.id, old.reference, old.kind, old.subject_type, old.subject_id, old.received_on, old.created_at, old.created_by_session) then
      raise exception 'a request''s reference, kind, person and receipt date never change: record a new request' using errcode = 'TC044';
    end if;
  elsif tg_table_name = 'erasures' then
    if tg_op = 'INSERT' then
      if v_operator then
        if b.purpose is distinct from 'erasure' or b.purpose_org is distinct from new.org_id or b.purpose_subject is distinct from new.subject_id then
          raise exception 'an erasure is recorded only by the erasure itself (app.begin_erasure for this person)' using errcode = 'TC044';
        end if;
        new.operator_session_id := v_session;
      end if;
    elsif (new.org_id, new.site_id, new.id, new.request_id, new.subject_id, new.subject_type, new.erased_at, new.operator_session_id,
        new.counts, new.certificate_sha256, new.request_reference)
       is distinct from (old.org_id, old.site_id, old.id, old.request_id, old.subject_id, old.subject_type, old.erased_at, old.operator_session_id,
        old.counts, old.certificate_sha256, old.request_reference)
       or (new.account - 'certificate_written' - 'seal') is distinct from (old.account - 'certificate_written' - 'seal')
       or (old.account ? 'seal' and new.account -> 'seal' is distinct from old.account -> 'seal') then
      raise exception 'the erasure ledger records what was done: only its pending media removals, its seal (once) and the certificate''s delivery change'
        using errcode = 'TC045';
    end if;
  elsif tg_table_name = 'retention_runs' then
    if v_operator then new.operator_session_id := v_session; end if;
  elsif tg_table_name = 'retention_policies' then
    if v_operator then
      new.set_by_session := v_session;
      new.updated_at := pg_catalog.statement_timestamp();
    end if;
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;

alter function app.set_purpose(text, uuid, uuid, text, uuid, text, timestamptz, uuid) owner to trustctl_definer;
alter function app.begin_retention_batch(uuid) owner to trustctl_definer;
alter function app.begin_erasure(uuid, text, uuid) owner to trustctl_definer;
alter function app.begin_archive_purge(uuid) owner to trustctl_definer;
alter function app.archive_rows(uuid[]) owner to trustctl_definer;
alter function app.guard_operator_change() owner to trustctl_owner;
alter function app.guard_history_columns() owner to trustctl_owner;
alter function app.rule_clock_sql(text) owner to trustctl_owner;
alter function app.rule_held_sql(app.datamap_rules) owner to trustctl_owner;
alter function app.rule_own_sql(app.datamap_rules, uuid, uuid) owner to trustctl_owner;
alter function app.rule_anonymised_update_sql(app.datamap_rules) owner to trustctl_owner;
revoke all on function app.set_purpose(text, uuid, uuid, text, uuid, text, timestamptz, uuid), app.begin_retention_batch(uuid),
  app.begin_erasure(uuid, text, uuid), app.begin_archive_purge(uuid), app.archive_rows(uuid[]),
  app.guard_operator_change(), app.guard_history_columns(), app.rule_clock_sql(text),
  app.rule_held_sql(app.datamap_rules), app.rule_own_sql(app.datamap_rules, uuid, uuid),
  app.rule_anonymised_update_sql(app.datamap_rules) from public;
grant execute on function app.begin_retention_batch(uuid), app.begin_erasure(uuid, text, uuid),
  app.begin_archive_purge(uuid), app.archive_rows(uuid[]) to trustctl_operator;
grant execute on function app.rule_clock_sql(text), app.rule_held_sql(app.datamap_rules),
  app.rule_own_sql(app.datamap_rules, uuid, uuid), app.rule_anonymised_update_sql(app.datamap_rules) to trustctl_operator, trustctl_definer;
grant execute on function app.guard_operator_change(), app.guard_history_columns() to trustctl_owner;
grant update on app.context_bindings to trustctl_definer;

-- The archive: operators no longer insert directly; app.archive_rows does.
-- Captured like the public tables, and bound per transaction.
grant usage on schema archive to trustctl_definer;
do $$
declare
  t record;
begin
  for t in
    select c.relname, (select g.tgargs from pg_trigger g where g.tgrelid = format('public.%I', c.relname)::regclass
                        and g.tgname = 'audit_capture') as args
    from pg_class c where c.relnamespace = 'archive'::regnamespace and c.relkind = 'r'
  loop
    execute format('revoke insert, update on archive.%I from trustctl_operator', t.relname);
    execute format('grant select, insert on archive.%I to trustctl_definer', t.relname);
    execute format('create trigger audit_capture after insert or update or delete on archive.%I for each row execute function app.capture_change(%s)',
      t.relname, (select string_agg(quote_literal(a), ', ') from unnest(array_remove(string_to_array(encode(t.args, 'escape'), '\000'), '')) a));
    execute format('create trigger context_bind before insert or update or delete on archive.%I '
                   'for each statement execute function app.bind_statement_context()', t.relname);
  end loop;
end
$$;

set local role trustctl_owner;
-- The guard on every personal table an operator may change (public and
-- archive), but role_assignments, which has its own guard.
do $$
declare
  t record;
begin
  for t in
    select c.oid::regclass as rel, n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'archive') and c.relkind = 'r'
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
      and c.relname not in ('organisations', 'sites', 'role_assignments', 'audit_events', 'audit_chain', 'audit_checkpoints',
                            'audit_anchors', 'retention_policies', 'access_policies')
  loop
    execute format('create trigger operator_guard_delete after delete on %s referencing old table as old_rows '
                   'for each statement execute function app.guard_operator_change()', t.rel);
    if t.nspname = 'public' and t.relname not in ('legal_holds', 'dsar_requests', 'erasures', 'retention_runs') then
      execute format('create trigger operator_guard_update after update on %s referencing old table as old_rows new table as new_rows '
                     'for each statement execute function app.guard_operator_change()', t.rel);
    end if;
  end loop;
end
$$;
create trigger legal_holds_history before insert or update or delete on legal_holds
  for each row execute function app.guard_history_columns();
create trigger dsar_requests_history before insert or update on dsar_requests
  for each row execute function app.guard_history_columns();
create trigger erasures_history before insert or update on erasures
  for each row execute function app.guard_history_columns();
create trigger retention_runs_history before insert or update on retention_runs
  for each row execute function app.guard_history_columns();
create trigger retention_policies_history before insert or update on retention_policies
  for each row execute function app.guard_history_columns();
reset role;

select app.record_reviewed_definer(x.f::regprocedure, x.why) from (values
  ('app.begin_retention_batch(uuid)', 'binds a running sweep run of the caller''s session whose cut-off the policy in force allows'),
  ('app.begin_erasure(uuid, text, uuid)', 'binds an erasure of one person under an open erasure request naming them, in the caller''s session'),
  ('app.begin_archive_purge(uuid)', 'binds a purge of archived rows of one organisation of the caller''s session'),
  ('app.archive_rows(uuid[])', 'copies only live rows the bound sweep batch may take into their archive table')
) x(f, why);
