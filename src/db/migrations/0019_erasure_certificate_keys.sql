-- Erasure certificates are signed with a key operators cannot use
-- (docs/erasure.md#the-certificate-key).
--
-- Until now a certificate's seal was app.erasure_pseudonym of its SHA-256:
-- a function every operator may call (anonymisation needs it), so any
-- operator could seal any file, and another operator's `dsar erase --replay`
-- erased whoever that file named, recorded under the session it named.
--
-- 1. Each organisation gets a second key, in trustctl_private beside (and
--    independent of) its pseudonym key, created with the organisation like
--    the pseudonym key, so a restored backup holds the key its certificates
--    were signed with.
-- 2. app.erasure_certificate_seal(org, erasure) is the only way to sign. It
--    signs an erasure ledger row written in the caller's own transaction,
--    under the caller's own open session, for a subject with an erasure
--    request of that subject, whose certificate JSON (in the ledger row)
--    says exactly what the row says. The seal is HMAC-SHA256 over the
--    format, organisation, erasure id, subject, request reference, session
--    and the certificate's SHA-256.
-- 3. app.erasure_certificate_valid(...) answers only true or false for a
--    seal over those fields: what a replay checks when the ledger is gone.
-- app.erasure_pseudonym keeps its grant (anonymisation writes pseudonyms
-- with it); nothing accepts its output as a seal any more. Certificates
-- sealed with it (format trustctl-erasure-certificate/1) cannot be verified
-- and are refused by replay.

set local role trustctl_owner;

create table trustctl_private.erasure_certificate_keys (
  org_id uuid primary key references public.organisations (org_id),
  key bytea not null check (octet_length(key) >= 32),
  created_at timestamptz not null default now()
);
revoke all on trustctl_private.erasure_certificate_keys from public;

-- 256 bits from the server's strong random source (gen_random_uuid), without pgcrypto.
insert into trustctl_private.erasure_certificate_keys (org_id, key)
select o.org_id, uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
from public.organisations o;

-- HMAC-SHA256 (RFC 2104) without pgcrypto. Only the definer functions below
-- call it; no run-time role can use schema trustctl_private.
create function trustctl_private.hmac_sha256(p_key bytea, p_message bytea) returns bytea
language plpgsql immutable strict set search_path = pg_catalog, pg_temp
as $$
declare
  v_key bytea := p_key;
  v_inner bytea;
  v_outer bytea;
begin
  if pg_catalog.length(v_key) > 64 then
    v_key := pg_catalog.sha256(v_key);
  end if;
  v_key := v_key || pg_catalog.decode(pg_catalog.repeat('00', 64 - pg_catalog.length(v_key)), 'hex');
  v_inner := v_key;
  v_outer := v_key;
  for i in 0..63 loop
    v_inner := pg_catalog.set_byte(v_inner, i, pg_catalog.get_byte(v_key, i) # 54);  -- 0x36
    v_outer := pg_catalog.set_byte(v_outer, i, pg_catalog.get_byte(v_key, i) # 92);  -- 0x5c
  end loop;
  return pg_catalog.sha256(v_outer || pg_catalog.sha256(v_inner || p_message));
end
$$;
revoke all on function trustctl_private.hmac_sha256(bytea, bytea) from public;

-- What a seal covers, in one canonical text (a jsonb array: no field can run into the next).
create function trustctl_private.erasure_certificate_message(p_org uuid, p_erasure uuid, p_subject_type text, p_subject uuid,
  p_reference text, p_session uuid, p_sha256 text) returns bytea
language sql immutable set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.convert_to(pg_catalog.jsonb_build_array('trustctl-erasure-certificate/2', p_org::text, p_erasure::text,
    p_subject_type, p_subject::text, p_reference, p_session::text, p_sha256)::text, 'UTF8')
$$;
revoke all on function trustctl_private.erasure_certificate_message(uuid, uuid, text, uuid, text, uuid, text) from public;

reset role;

create function app.create_erasure_certificate_key() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
  insert into trustctl_private.erasure_certificate_keys (org_id, key)
  values (new.org_id, pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) || pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                      || pg_catalog.uuid_send(pg_catalog.gen_random_uuid()))
  on conflict (org_id) do nothing;
  return null;
end
$$;

-- Signs the certificate of an erasure the caller is recording right now.
-- Refuses (TC046) unless: the ledger row exists in the organisation, was
-- recorded under the caller's own open session and at this transaction's
-- time (so in this transaction: a seal cannot be minted later for an old
-- row or a backdated one); it is under an erasure request of the same
-- subject; and its certificate JSON has the recorded SHA-256 and names the
-- same format, erasure, organisation, subject, request, session and time as
-- the row. It never returns the key.
create function app.erasure_certificate_seal(p_org uuid, p_erasure uuid) returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  b app.context_bindings := app.bind_context();
  v_session uuid := b.operator_session;
  v_row public.erasures%rowtype;
  v_json text;
  v_cert jsonb;
  v_key bytea;
begin
  perform app.require_operator_org(p_org);
  select e.* into v_row from public.erasures e where e.org_id = p_org and e.id = p_erasure;
  if not found then
    raise exception 'no erasure % in organisation %', p_erasure, p_org using errcode = 'TC046';
  end if;
  -- Only the erasure this transaction is carrying out (migration 0017): not a
  -- ledger row written for a person the transaction had no purpose to erase.
  if b.purpose is distinct from 'erasure' or b.purpose_org is distinct from p_org or b.purpose_subject is distinct from v_row.subject_id then
    raise exception 'erasure % is not the erasure this transaction carries out', p_erasure using errcode = 'TC046';
  end if;
  if v_row.operator_session_id is distinct from v_session then
    raise exception 'erasure % was not recorded by this operator session', p_erasure using errcode = 'TC046';
  end if;
  -- erased_at went through the client (milliseconds) and back.
  if v_row.erased_at is null or pg_catalog.abs(extract(epoch from v_row.erased_at - pg_catalog.transaction_timestamp())) >= 0.001 then
    raise exception 'erasure % was not recorded in this transaction', p_erasure using errcode = 'TC046';
  end if;
  if not exists (
    select 1 from public.dsar_requests d
    where d.org_id = p_org and d.id = v_row.request_id and d.reference = v_row.request_reference
      and d.subject_id = v_row.subject_id and d.subject_type = v_row.subject_type and d.kind = 'erasure'
  ) then
    raise exception 'erasure % is not under an erasure request of its subject', p_erasure using errcode = 'TC046';
  end if;
  v_json := v_row.account ->> 'certificate_json';
  if v_json is null or v_row.certificate_sha256 is distinct from
      pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(v_json, 'UTF8')), 'hex') then
    raise exception 'erasure %: the certificate in the ledger does not match its recorded SHA-256', p_erasure using errcode = 'TC046';
  end if;
  v_cert := v_json::jsonb;
  if v_cert ->> 'format' is distinct from 'trustctl-erasure-certificate/2'
     or v_cert ->> 'erasure_id' is distinct from v_row.id::text
     or v_cert #>> '{organisation,id}' is distinct from p_org::text
     or v_cert #>> '{subject,type}' is distinct from v_row.subject_type
     or v_cert #>> '{subject,id}' is distinct from v_row.subject_id::text
     or v_cert #>> '{request,reference}' is distinct from v_row.request_reference
     or v_cert #>> '{operator_session,id}' is distinct from v_session::text
     or (v_cert ->> 'erased_at')::timestamptz is distinct from v_row.erased_at then
    raise exception 'erasure %: the certificate does not say what the ledger row says', p_erasure using errcode = 'TC046';
  end if;
  select k.key into strict v_key from trustctl_private.erasure_certificate_keys k where k.org_id = p_org;
  return pg_catalog.encode(trustctl_private.hmac_sha256(v_key, trustctl_private.erasure_certificate_message(
    p_org, v_row.id, v_row.subject_type, v_row.subject_id, v_row.request_reference, v_session, v_row.certificate_sha256)), 'hex');
end
$$;

-- Whether a seal is the organisation's signature over these fields: true or
-- false, nothing else, for an operator whose open session covers the
-- organisation.
create function app.erasure_certificate_valid(p_org uuid, p_erasure uuid, p_subject_type text, p_subject uuid,
  p_reference text, p_session uuid, p_sha256 text, p_seal text) returns boolean
language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_key bytea;
begin
  perform app.require_operator_org(p_org);
  if p_seal is null or p_seal !~ '^[0-9a-f]{64}$' or p_sha256 is null or p_sha256 !~ '^[0-9a-f]{64}$' then
    return false;
  end if;
  select k.key into v_key from trustctl_private.erasure_certificate_keys k where k.org_id = p_org;
  if v_key is null then
    return false;
  end if;
  return pg_catalog.encode(trustctl_private.hmac_sha256(v_key, trustctl_private.erasure_certificate_message(
    p_org, p_erasure, p_subject_type, p_subject, p_reference, p_session, p_sha256)), 'hex') = p_seal;
end
$$;

-- Replay after a restore, where the request may be closed or gone: the
-- transaction may erase the person a genuine certificate names (its seal
-- verifies over exactly these fields), with the same checks on every row as
-- app.begin_erasure (migration 0017).
create function app.begin_erasure_replay(p_org uuid, p_erasure uuid, p_subject_type text, p_subject uuid,
  p_reference text, p_session uuid, p_sha256 text, p_seal text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app.require_operator_org(p_org);
  if not app.erasure_certificate_valid(p_org, p_erasure, p_subject_type, p_subject, p_reference, p_session, p_sha256, p_seal) then
    raise exception 'the certificate''s seal does not verify: nothing is replayed' using errcode = 'TC046';
  end if;
  perform app.set_purpose('erasure', p_org, null, null, null, null, null, p_subject);
end
$$;
alter function app.begin_erasure_replay(uuid, uuid, text, uuid, text, uuid, text, text) owner to trustctl_definer;
revoke all on function app.begin_erasure_replay(uuid, uuid, text, uuid, text, uuid, text, text) from public;
grant execute on function app.begin_erasure_replay(uuid, uuid, text, uuid, text, uuid, text, text) to trustctl_operator;
select app.record_reviewed_definer('app.begin_erasure_replay(uuid, uuid, text, uuid, text, uuid, text, text)'::regprocedure,
  'binds an erasure purpose only for the person a certificate names whose seal verifies under the organisation''s key');

grant select, insert on trustctl_private.erasure_certificate_keys to trustctl_definer;
grant execute on function trustctl_private.hmac_sha256(bytea, bytea),
  trustctl_private.erasure_certificate_message(uuid, uuid, text, uuid, text, uuid, text) to trustctl_definer;
alter function app.create_erasure_certificate_key() owner to trustctl_definer;
alter function app.erasure_certificate_seal(uuid, uuid) owner to trustctl_definer;
alter function app.erasure_certificate_valid(uuid, uuid, text, uuid, text, uuid, text, text) owner to trustctl_definer;
revoke all on function app.create_erasure_certificate_key(), app.erasure_certificate_seal(uuid, uuid),
  app.erasure_certificate_valid(uuid, uuid, text, uuid, text, uuid, text, text) from public;
grant execute on function app.erasure_certificate_seal(uuid, uuid),
  app.erasure_certificate_valid(uuid, uuid, text, uuid, text, uuid, text, text) to trustctl_operator;
grant execute on function app.create_erasure_certificate_key() to trustctl_owner;

set local role trustctl_owner;
create trigger organisations_erasure_certificate_key after insert on organisations
  for each row execute function app.create_erasure_certificate_key();
reset role;

-- Reviewed (docs/doctor.md#definer-bypasses-rls).
select app.record_reviewed_definer('app.erasure_certificate_seal(uuid, uuid)'::regprocedure,
  'requires an open session covering the organisation; signs only a ledger row of the caller''s own session, written in this transaction, under an erasure request of its subject; returns the seal, never the key');
select app.record_reviewed_definer('app.erasure_certificate_valid(uuid, uuid, text, uuid, text, uuid, text, text)'::regprocedure,
  'requires an open session covering the organisation; answers only whether a seal is valid, never the key');
