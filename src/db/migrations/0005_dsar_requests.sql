-- Subject access request tracking: the legal due date is enforced by the
-- database, not only computed by the CLI, so a request cannot be recorded
-- with a wrong deadline by any client.
--
-- One calendar month from the day of receipt; where that day does not exist
-- in the next month, the last day of that month. PostgreSQL's date + interval
-- '1 month' clamps to the month's end in exactly that way (31 January ->
-- 28/29 February). An extension adds up to two further months, with a reason.
set local role trustctl_owner;

alter table dsar_requests
  add column closed_at timestamptz,
  add column closure_note text,
  add column last_exported_at timestamptz,
  add column last_bundle_sha256 text,
  add constraint dsar_requests_bundle_sha256 check (last_bundle_sha256 ~ '^[0-9a-f]{64}$'),
  add constraint dsar_requests_due_is_one_month check (due_on = (received_on + interval '1 month')::date),
  add constraint dsar_requests_extension_window check (
    extended_due_on is null
    or (extended_due_on > due_on and extended_due_on <= (received_on + interval '3 months')::date)),
  add constraint dsar_requests_closed_at check ((status = 'closed') = (closed_at is not null)),
  add constraint dsar_requests_reference_format check (reference ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$');

create index dsar_requests_due_idx on dsar_requests (org_id, status, (coalesce(extended_due_on, due_on)));
