-- Privileges, row-level security, policies and audit triggers.
--
-- Every tenant table (every table with org_id) gets RLS enabled AND forced,
-- one permissive policy per command for app_user, and one for
-- trustctl_operator. No run-time role gets TRUNCATE or REFERENCES (both
-- ignore RLS) and PUBLIC gets nothing.
set local role trustctl_owner;

-- What the SECURITY DEFINER functions read and write.
grant select on organisations, sites, role_assignments, group_memberships, guardianships,
  operator_sessions, platform_settings to trustctl_definer;
grant insert, update on operator_sessions to trustctl_definer;
-- SELECT so app.audit_record can return the new event's id.
grant select, insert on audit_events to trustctl_definer;

-- The platform's request path.
grant select, insert, update, delete on
  organisations, sites, users, role_assignments, children, guardianships, groups, group_memberships,
  attendance_records, notes, safeguarding_concerns, wellbeing_checkins, rota_shifts, staff_activity,
  media_files
  to app_user;

-- Operators: data in their session's scope. The audit trail is read-only to
-- them (they add to it through app.audit_record); sessions are opened and
-- closed only through app.begin/end_operator_session.
grant select, insert, update, delete on
  organisations, sites, users, role_assignments, children, guardianships, groups, group_memberships,
  attendance_records, notes, safeguarding_concerns, wellbeing_checkins, rota_shifts, staff_activity,
  media_files, retention_policies, legal_holds, retention_runs, dsar_requests, erasures
  to trustctl_operator;
grant select on audit_events, operator_sessions, platform_settings to trustctl_operator;

-- RLS on, and forced, everywhere there is tenant data, plus operator_sessions.
do $$
declare t record;
begin
  for t in
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped)
  loop
    execute format('revoke all on public.%I from public', t.relname);
    execute format('alter table public.%I enable row level security', t.relname);
    execute format('alter table public.%I force row level security', t.relname);
    execute format(
      'create policy %I on public.%I for all to trustctl_operator '
      'using (org_id = any ((select app.operator_org_ids())::uuid[])) '
      'with check (org_id = any ((select app.operator_org_ids())::uuid[]))',
      t.relname || '_operator', t.relname);
  end loop;
end
$$;

alter table operator_sessions enable row level security;
alter table operator_sessions force row level security;
create policy operator_sessions_own on operator_sessions for select to trustctl_operator
  using (db_user = session_user);

-- app_user policies: (table, read, insert, modify). modify is used for
-- UPDATE (USING and WITH CHECK) and DELETE. Shorthands, each an uncorrelated
-- sub-select (evaluated once per statement) matching the row's full tenant key:
--   F  sites where the user sees every child      S  sites where the user is staff
--   A  sites the user administers                 G  sites where the user is safeguarding lead
--   TC children on the user's teaching caseload   GC the guardian's own children
--      (matched on the full tenant key: child ids are unique only per organisation)
--   U  the user
do $$
declare
  p record;
  f constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  s constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''teacher'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  a constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'']) x)';
  g constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''safeguarding_lead'']) x)';
  tc constant text := '(org_id, site_id, child_id) in (select x.org_id, x.site_id, x.child_id from app.user_teacher_children() x)';
  gc constant text := '(org_id, site_id, child_id) in (select x.org_id, x.site_id, x.child_id from app.user_guardian_children() x)';
  -- Grants an app user may make: site admins only the everyday roles, never
  -- to themselves; nobody across organisations or with an approval state
  -- (time-boxed and approved access goes through trustctl access).
  grant_ok constant text := format(
    'user_org_id = org_id and approval_state = ''not_required'' and ('
    '(%s and role in (''teacher'', ''office'', ''senco'', ''guardian'') and user_id <> %s)'
    ' or (org_id = any ((select app.user_admin_org_ids())::uuid[])))',
    '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'']) x)',
    '(select app.current_user_id())');
  u constant text := '(select app.current_user_id())';
  ao constant text := 'org_id = any ((select app.user_admin_org_ids())::uuid[])';
begin
  for p in
    select * from (values
      ('organisations',
        'org_id = any ((select app.user_org_ids())::uuid[])', ao, ao),
      ('sites',
        '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(null) x)', ao, ao),
      ('users',
        format('id = %s or %s or (site_id is null and %s)', u, s, ao),
        format('%s or (site_id is null and %s)', a, ao),
        format('%s or (site_id is null and %s)', a, ao)),
      ('role_assignments',
        format('user_id = %s or %s or %s', u, a, ao),
        grant_ok,
        grant_ok),
      ('children',
        format('%s or (org_id, site_id, id) in (select x.org_id, x.site_id, x.child_id from app.user_teacher_children() x)'
               ' or (org_id, site_id, id) in (select x.org_id, x.site_id, x.child_id from app.user_guardian_children() x)', f),
        f, f),
      ('guardianships',
        format('%s or %s or guardian_id = %s', f, tc, u), f, f),
      ('groups', s, f, f),
      ('group_memberships',
        format('%s or staff_id = %s or %s', f, u, tc), f, f),
      ('attendance_records',
        format('%s or %s or %s', f, tc, gc), format('%s or %s', f, tc), format('%s or %s', f, tc)),
      ('notes',
        format('(kind <> ''sensitive'' or %s) and (%s or %s or (guardian_visible and %s))', g, f, tc, gc),
        format('(kind <> ''sensitive'' or %s) and (%s or %s)', g, f, tc),
        format('(kind <> ''sensitive'' or %s) and (%s or %s)', g, f, tc)),
      ('safeguarding_concerns',
        g, format('%s or (%s and reported_by = %s)', g, s, u), g),
      ('wellbeing_checkins',
        format('%s or %s or %s', f, tc, gc), format('%s or %s', f, tc), format('%s or %s', f, tc)),
      ('rota_shifts', s, a, a),
      ('staff_activity',
        format('%s or staff_id = %s', a, u),
        format('staff_id = %s and %s', u, s),
        a),
      ('media_files',
        format('%s or %s or %s', f, tc, gc), format('%s or %s', f, tc), format('%s or %s', f, tc))
    ) v(tbl, read_expr, insert_expr, modify_expr)
  loop
    execute format('create policy %I on public.%I for select to app_user using (%s)',
      p.tbl || '_app_select', p.tbl, p.read_expr);
    execute format('create policy %I on public.%I for insert to app_user with check (%s)',
      p.tbl || '_app_insert', p.tbl, p.insert_expr);
    execute format('create policy %I on public.%I for update to app_user using (%s) with check (%s)',
      p.tbl || '_app_update', p.tbl, p.modify_expr, p.modify_expr);
    execute format('create policy %I on public.%I for delete to app_user using (%s)',
      p.tbl || '_app_delete', p.tbl, p.modify_expr);
  end loop;
end
$$;

-- The definer functions read through RLS-forced tables; trustctl_definer has
-- BYPASSRLS, so it needs no policy there. audit capture inserts likewise.

-- Audit capture on every tenant table but the audit trail itself.
-- Arguments: the id column, then the columns naming data subjects.
create trigger audit_capture after insert or update or delete on organisations
  for each row execute function app.capture_change('org_id');
create trigger audit_capture after insert or update or delete on sites
  for each row execute function app.capture_change('site_id');
create trigger audit_capture after insert or update or delete on users
  for each row execute function app.capture_change('id', 'id');
create trigger audit_capture after insert or update or delete on role_assignments
  for each row execute function app.capture_change('id', 'user_id');
create trigger audit_capture after insert or update or delete on children
  for each row execute function app.capture_change('id', 'id');
create trigger audit_capture after insert or update or delete on guardianships
  for each row execute function app.capture_change('id', 'child_id', 'guardian_id');
create trigger audit_capture after insert or update or delete on groups
  for each row execute function app.capture_change('id');
create trigger audit_capture after insert or update or delete on group_memberships
  for each row execute function app.capture_change('id', 'child_id', 'staff_id');
create trigger audit_capture after insert or update or delete on attendance_records
  for each row execute function app.capture_change('id', 'child_id');
create trigger audit_capture after insert or update or delete on notes
  for each row execute function app.capture_change('id', 'child_id');
create trigger audit_capture after insert or update or delete on safeguarding_concerns
  for each row execute function app.capture_change('id', 'child_id');
create trigger audit_capture after insert or update or delete on wellbeing_checkins
  for each row execute function app.capture_change('id', 'child_id');
create trigger audit_capture after insert or update or delete on rota_shifts
  for each row execute function app.capture_change('id', 'staff_id');
create trigger audit_capture after insert or update or delete on staff_activity
  for each row execute function app.capture_change('id', 'staff_id', 'child_id');
create trigger audit_capture after insert or update or delete on media_files
  for each row execute function app.capture_change('id', 'child_id');
create trigger audit_capture after insert or update or delete on retention_policies
  for each row execute function app.capture_change('id');
create trigger audit_capture after insert or update or delete on legal_holds
  for each row execute function app.capture_change('id', 'subject_id');
create trigger audit_capture after insert or update or delete on retention_runs
  for each row execute function app.capture_change('id');
create trigger audit_capture after insert or update or delete on dsar_requests
  for each row execute function app.capture_change('id', 'subject_id');
create trigger audit_capture after insert or update or delete on erasures
  for each row execute function app.capture_change('id', 'subject_id');

-- The audit trail is append-only for everyone, the owner included.
create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function app.refuse_audit_change();
create trigger audit_events_no_truncate before truncate on audit_events
  for each statement execute function app.refuse_audit_change();
