-- Retention sweeps (docs/retention.md): the archive schema, where archived
-- rows go with the run that moved them, under the same row-level security
-- as their source tables; and a run per organisation, site, category and
-- table, resumable from its cursor.
create schema if not exists archive authorization trustctl_owner;
revoke all on schema archive from public;
grant usage on schema archive to trustctl_operator;

set local role trustctl_owner;

do $$
declare t text;
begin
  foreach t in array array['attendance_records', 'notes', 'safeguarding_concerns', 'wellbeing_checkins', 'rota_shifts',
                           'staff_activity', 'media_files', 'dsar_requests']
  loop
    execute format('create table archive.%1$I (like public.%1$I including defaults, '
      'archived_at timestamptz not null default statement_timestamp(), run_id uuid not null, primary key (org_id, id))', t);
    execute format('revoke all on archive.%I from public', t);
    execute format('alter table archive.%I enable row level security', t);
    execute format('alter table archive.%I force row level security', t);
    execute format('create policy %1$I on archive.%2$I for all to trustctl_operator '
      'using (org_id = any ((select app.operator_org_ids())::uuid[])) '
      'with check (org_id = any ((select app.operator_org_ids())::uuid[]))', t || '_operator', t);
    execute format('grant select, insert, delete on archive.%I to trustctl_operator', t);
  end loop;
end
$$;

-- The foreign key from a correction to the record it corrects had no index:
-- deleting one attendance record scanned the whole table to check it.
create index attendance_corrects_idx on attendance_records (org_id, site_id, corrects_id) where corrects_id is not null;

alter table retention_runs
  add column table_name text,
  add column action text check (action in ('delete', 'anonymise', 'archive')),
  add column error text;
-- At most one unfinished run per organisation, site, category and table: the next sweep resumes it.
create unique index retention_runs_unfinished_key on retention_runs
  (org_id, coalesce(site_id, '00000000-0000-0000-0000-000000000000'::uuid), category, table_name)
  where status in ('running', 'interrupted');

reset role;
