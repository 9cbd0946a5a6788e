-- Guardians' contact details only for children the user may see.
--
-- users_app_select (0004, rewritten by 0010) let anyone with a staff role at
-- a site read every user row there, so a teacher read the email and phone of
-- every guardian at the site, with no child of theirs on the caseload. Now:
--   staff and support rows: as before (the user's own row, staff at the site
--     (S), and organisation admins for rows with no site);
--   guardian rows: the guardian themself, the roles that see every child at
--     the user row's site (F), organisation admins for rows with no site, and
--     otherwise only through a guardian link to a child the user sees: at a
--     site where they see every child (F), or on their teaching caseload (TC).
-- users.kind is written only by site and organisation admins (users insert
-- and update policies), who see every row at their sites anyway, so a row's
-- kind is theirs to decide; a guardian recorded as staff is shown as staff.
-- Shorthands as in 0004 and 0010, each an uncorrelated sub-select evaluated
-- once per statement and matching the full tenant key.
do $$
declare
  u constant text := '((select app.current_user_org_id()), (select app.current_user_id()))';
  f constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  s constant text := '(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''teacher'', ''senco'', ''safeguarding_lead'', ''office'']) x)';
  ao constant text := 'org_id = any ((select app.user_admin_org_ids())::uuid[])';
  -- Guardians linked to a child the user sees. The guardianship's own tenant key is matched, not the guardian's site.
  linked constant text :=
    '(org_id, id) in (select gl.org_id, gl.guardian_id from public.guardianships gl'
    ' where (gl.org_id, gl.site_id) in (select x.org_id, x.site_id from app.user_sites(array[''org_admin'', ''site_admin'', ''senco'', ''safeguarding_lead'', ''office'']) x)'
    ' or (gl.org_id, gl.site_id, gl.child_id) in (select x.org_id, x.site_id, x.child_id from app.user_teacher_children() x))';
begin
  execute format(
    'alter policy users_app_select on public.users using ('
    '(org_id, id) = %1$s or (site_id is null and %2$s)'
    ' or (kind <> ''guardian'' and %3$s)'
    ' or (kind = ''guardian'' and (%4$s or %5$s)))',
    u, ao, s, f, linked);
end
$$;
