-- Erasure (docs/erasure.md): what the erasures ledger needs to rebuild a
-- certificate and to finish an interrupted job, and per-organisation keys
-- for pseudonyms.
--
-- 1. erasures gains the request's reference (the request row itself may be
--    gone after a restore), the per-table account the certificate is built
--    from (counts and reasons only, never values), and the storage keys of
--    media files still to be removed from the store after the commit.
-- 2. Pseudonym keys live in schema trustctl_private, which no run-time role
--    can use. Every organisation gets its key when it is created, so a
--    database restored from any backup holds the key its erasures used, and
--    a replayed erasure writes the same pseudonyms.
-- 3. app.erasure_pseudonym(org, id) is the keyed pseudonym of one id, for an
--    operator whose open session covers the organisation.

set local role trustctl_owner;

alter table erasures
  add column request_reference text,
  add column account jsonb not null default '{}',
  add column media_pending text[] not null default '{}';

-- One erasure per request and subject: a rerun of the same request finds it.
create unique index erasures_request_subject_key on erasures (org_id, request_reference, subject_id)
  where request_reference is not null;

create schema trustctl_private authorization trustctl_owner;
revoke all on schema trustctl_private from public;

create table trustctl_private.pseudonym_keys (
  org_id uuid primary key references public.organisations (org_id),
  key bytea not null check (octet_length(key) >= 32),
  created_at timestamptz not null default now()
);
revoke all on trustctl_private.pseudonym_keys from public;

-- 256 bits from the server's strong random source (gen_random_uuid), without pgcrypto.
insert into trustctl_private.pseudonym_keys (org_id, key)
select o.org_id, uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
from public.organisations o;

reset role;

create function app.create_pseudonym_key() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
  insert into trustctl_private.pseudonym_keys (org_id, key)
  values (new.org_id, pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) || pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                      || pg_catalog.uuid_send(pg_catalog.gen_random_uuid()))
  on conflict (org_id) do nothing;
  return null;
end
$$;

-- 'erased-' and 96 bits of a keyed SHA-256 of the id: stable within an
-- organisation, unlinkable across organisations, and not reversible without
-- the key.
create function app.erasure_pseudonym(p_org uuid, p_id uuid) returns text
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_key bytea;
begin
  perform app.require_operator_org(p_org);
  select k.key into strict v_key from trustctl_private.pseudonym_keys k where k.org_id = p_org;
  return 'erased-' || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(
    pg_catalog.sha256(v_key || pg_catalog.uuid_send(p_id)) || v_key), 'hex'), 24);
end
$$;

grant usage on schema trustctl_private to trustctl_definer;
grant select, insert on trustctl_private.pseudonym_keys to trustctl_definer;
alter function app.create_pseudonym_key() owner to trustctl_definer;
alter function app.erasure_pseudonym(uuid, uuid) owner to trustctl_definer;
revoke all on function app.create_pseudonym_key(), app.erasure_pseudonym(uuid, uuid) from public;
grant execute on function app.erasure_pseudonym(uuid, uuid) to trustctl_operator;
grant execute on function app.create_pseudonym_key() to trustctl_owner;

set local role trustctl_owner;
create trigger organisations_pseudonym_key after insert on organisations
  for each row execute function app.create_pseudonym_key();
reset role;

-- Reviewed (docs/doctor.md#definer-bypasses-rls).
select app.record_reviewed_definer('app.erasure_pseudonym(uuid, uuid)'::regprocedure,
  'requires an open session covering the organisation; returns a keyed hash of the id, never the key');
