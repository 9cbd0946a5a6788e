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

-- When the subject's records last changed, for a DSAR bundle's as_of: the
-- newest captured insert, update or delete naming the subject (the request's
-- own row not counted). A definer function because, under RLS, the array
-- containment operator is not leakproof and so cannot use the GIN index on
-- subject_ids: as the operator it would read every event of the
-- organisation. It answers only for organisations the caller's open
-- operator session covers.
create function app.subject_last_change(p_org_id uuid, p_subject_id uuid) returns timestamptz
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if p_org_id is null or not (p_org_id = any (app.operator_org_ids())) then
    raise exception 'no open operator session covers organisation %', p_org_id using errcode = 'TC005';
  end if;
  return (
    select max(e.recorded_at) from public.audit_events e
    where e.org_id = p_org_id and e.subject_ids @> array[p_subject_id]
      and e.target_type is distinct from 'dsar_requests'
      and e.action ~ '\.(insert|update|delete)$');
end
$$;

reset role;
alter function app.subject_last_change(uuid, uuid) owner to trustctl_definer;
revoke all on function app.subject_last_change(uuid, uuid) from public;
grant execute on function app.subject_last_change(uuid, uuid) to trustctl_operator;
