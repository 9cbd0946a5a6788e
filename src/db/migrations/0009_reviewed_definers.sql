-- The SECURITY DEFINER functions that run as trustctl_definer (which
-- bypasses row-level security) and that run-time roles may call: each was
-- reviewed to confine what it reads or writes to the caller's own user,
-- session or organisation. The doctor reports any such function that is not
-- recorded here, and any recorded one whose body has changed since (the
-- comment pins the sha256 of its body). A migration that adds such a
-- function, or changes one of these bodies, records it with
-- app.record_reviewed_definer (docs/doctor.md#definer-bypasses-rls).
create function app.record_reviewed_definer(p_function regprocedure, p_why text) returns void
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  execute pg_catalog.format('comment on function %s is %L', p_function,
    pg_catalog.format('trustctl-doctor: accept definer-bypasses-rls sha256=%s: %s',
      (select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(coalesce(p.prosrc, ''), 'UTF8')), 'hex')
       from pg_catalog.pg_proc p where p.oid = p_function), p_why));
end
$$;
revoke all on function app.record_reviewed_definer(regprocedure, text) from public;

select app.record_reviewed_definer(x.f::regprocedure, x.why) from (values
    ('app.live_roles()', 'reads only the current user''s own grants (org and id from the transaction''s settings)'),
    ('app.user_sites(text[])', 'the current user''s live (organisation, site) pairs'),
    ('app.user_org_ids()', 'the current user''s live organisations'),
    ('app.user_admin_org_ids()', 'organisations where the current user is a live org admin'),
    ('app.user_teacher_children()', 'children in the current user''s own classes at sites where they teach'),
    ('app.user_guardian_children()', 'the current user''s own children where their guardian link is live'),
    ('app.operator_org_ids()', 'the organisations of the connected operator''s own open session'),
    ('app.begin_operator_session(text, text, text[], boolean, text, text, text)', 'opens a session for session_user after checking membership, reason and ticket'),
    ('app.end_operator_session(uuid, text)', 'closes only the connected operator''s own session'),
    ('app.audit_record(uuid, uuid, text, text, text, uuid[], text, jsonb)', 'appends an event only inside an open session covering the organisation'),
    ('app.organisation_directory()', 'organisation slugs, names and site counts: not personal data'),
    ('app.subject_last_change(uuid, uuid, text[])', 'requires an open session covering the organisation; returns one timestamp'),
    ('app.audit_seal_append(uuid, bigint[], bytea[], bytea[])', 'requires an open session covering the organisation; appends checked chain entries'),
    ('app.audit_checkpoint(uuid, bigint, bytea, bigint, xid8, text, bytea)', 'requires an open session covering the organisation; appends a checked checkpoint'),
    ('app.audit_prune(uuid, bigint)', 'requires an open session covering the organisation; deletes only a sealed, checkpointed prefix'),
    ('app.doctor_probe(uuid, uuid, text[])', 'requires an open session covering only that organisation; undoes every change it makes')
  ) x(f, why);
