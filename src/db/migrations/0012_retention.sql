-- Retention policies and legal holds (docs/retention.md): known categories
-- only, a keep-for that is not negative (one policy per organisation or site
-- and category is 0002's retention_policies_scope_key), and a release that
-- says why.
set local role trustctl_owner;

alter table retention_policies
  add constraint retention_policies_keep_for check (keep_for >= interval '0'),
  add constraint retention_policies_category check (category in
    ('access', 'pupil_record', 'attendance', 'notes', 'safeguarding', 'wellbeing', 'staff_rota', 'staff_activity', 'media', 'audit_events', 'dsar'));
alter table legal_holds
  add constraint legal_holds_released check ((released_at is null) = (release_reason is null));
create index legal_holds_active_idx on legal_holds (org_id) where released_at is null;

reset role;
