-- Sealing the audit trail into a hash chain per organisation, with
-- checkpoints and prunable prefixes (docs/audit.md).
--
-- The chain lives in its own append-only table, audit_chain, not in seal
-- columns of audit_events as first planned: audit_events then never needs an
-- UPDATE exception in its append-only trigger, and sealing inserts narrow rows
-- instead of rewriting wide ones (with their GIN index) — the difference
-- between a few thousand and a hundred thousand events a second.
--
--   audit_chain        (org_id, chain_seq) -> event_id, prev_hash, hash
--   audit_checkpoints  a chain head after each seal, with the seal's horizon;
--                      optionally Ed25519-signed by a key held outside the database
--   audit_anchors      where verification starts after a prefix was pruned
set local role trustctl_owner;

drop index audit_events_chain_idx;
alter table audit_events drop column chain_seq, drop column prev_hash, drop column hash;

create table audit_chain (
  org_id uuid not null references organisations (org_id),
  chain_seq bigint not null check (chain_seq > 0),
  event_id bigint not null,
  prev_hash bytea not null check (length(prev_hash) = 32),
  hash bytea not null check (length(hash) = 32),
  sealed_at timestamptz not null default statement_timestamp(),
  -- Who sealed it: the database cannot recompute hashes cheaply, so a seal
  -- that wrote wrong ones (verify reports them) is attributable.
  operator_session_id uuid,
  primary key (org_id, chain_seq),
  unique (org_id, event_id)
  -- No foreign key to audit_events: its row-by-row check would cost more
  -- than the rest of sealing together, and neither table can lose a row
  -- anyway (append-only triggers); verify reports an entry whose event is gone.
);

create table audit_checkpoints (
  org_id uuid not null references organisations (org_id),
  id bigint generated always as identity,
  chain_seq bigint not null check (chain_seq >= 0),
  head_hash bytea not null check (length(head_hash) = 32),
  -- Events the seal run that wrote this checkpoint added to the chain.
  rows bigint not null check (rows >= 0),
  -- Every event whose inserting transaction is older than this was sealed by
  -- the run that wrote the checkpoint: an unsealed one is a forgery.
  horizon xid8 not null,
  created_at timestamptz not null default statement_timestamp(),
  operator_session_id uuid references operator_sessions (id),
  key_id text,
  signature bytea check (signature is null or length(signature) = 64),
  primary key (org_id, id),
  constraint audit_checkpoints_signed check ((key_id is null) = (signature is null))
);

create table audit_anchors (
  org_id uuid not null references organisations (org_id),
  chain_seq bigint not null check (chain_seq > 0),
  hash bytea not null check (length(hash) = 32),
  pruned_at timestamptz not null default statement_timestamp(),
  operator_session_id uuid references operator_sessions (id),
  primary key (org_id, chain_seq)
);

-- Append-only, for everyone: only the definer functions below add rows, and
-- only audit_prune removes them (a whole sealed prefix, behind an anchor).
create function app.refuse_seal_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' and tg_table_name = 'audit_chain' and current_user = 'trustctl_definer'
     and old.chain_seq <= coalesce(
       (select max(a.chain_seq) from public.audit_anchors a where a.org_id = old.org_id), 0) then
    return old;
  end if;
  raise exception '% is append-only: % refused', tg_table_name, tg_op
    using errcode = 'TC010', hint = 'See docs/audit.md';
end
$$;
create trigger audit_chain_append_only before update or delete on audit_chain
  for each row execute function app.refuse_seal_change();
create trigger audit_chain_no_truncate before truncate on audit_chain
  for each statement execute function app.refuse_seal_change();
create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
  for each row execute function app.refuse_seal_change();
create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
  for each statement execute function app.refuse_seal_change();
create trigger audit_anchors_append_only before update or delete on audit_anchors
  for each row execute function app.refuse_seal_change();
create trigger audit_anchors_no_truncate before truncate on audit_anchors
  for each statement execute function app.refuse_seal_change();

-- The audit trail's own trigger gains exactly one exception: audit_prune
-- may delete events whose chain entries are behind an anchor.
create or replace function app.refuse_audit_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' and current_user = 'trustctl_definer'
     and exists (select 1 from public.audit_anchors a where a.org_id = old.org_id)
     and not exists (select 1 from public.audit_chain c where c.org_id = old.org_id and c.event_id = old.id)
     and old.id <= coalesce(pg_catalog.current_setting('trustctl.audit_prune_through_id', true), '0')::bigint
     and old.org_id::text = pg_catalog.current_setting('trustctl.audit_prune_org', true) then
    return old;
  end if;
  raise exception 'audit_events is append-only: % refused', tg_op
    using errcode = 'TC010', hint = 'Audit events can only be added; see docs/audit.md';
end
$$;

-- RLS: operators read what their session covers; nobody writes directly.
do $$
declare t text;
begin
  foreach t in array array['audit_chain', 'audit_checkpoints', 'audit_anchors'] loop
    execute format('revoke all on public.%I from public', t);
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
    execute format(
      'create policy %I on public.%I for select to trustctl_operator '
      'using (org_id = any ((select app.operator_org_ids())::uuid[]))', t || '_operator', t);
    execute format('grant select on public.%I to trustctl_operator', t);
  end loop;
end
$$;
grant select, insert, delete on audit_chain to trustctl_definer;
grant select, insert on audit_checkpoints, audit_anchors to trustctl_definer;
grant select, delete on audit_events to trustctl_definer;

-- Appends a batch to an organisation's chain. The caller (trustctl audit
-- seal) computes the hashes; the database checks everything that makes the
-- chain an append-only, ordered, gapless sequence of final events:
--   * an open operator session covers the organisation;
--   * the batch continues the head (first seq = head + 1, first prev = head hash);
--   * each prev_hash is the previous entry's hash;
--   * events are unsealed, strictly after the last sealed event in
--     (txid, id) order, in that order, and older than this transaction's
--     snapshot horizon (their inserting transactions have all ended).
-- It cannot check the hashes themselves without the canonical form; verify does.
-- TC012: the head moved (another seal appended first; start again from it).
-- TC011: the batch itself is wrong.
create function app.audit_seal_append(
  p_org_id uuid, p_event_ids bigint[], p_prev_hashes bytea[], p_hashes bytea[]
) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_head_seq bigint;
  v_head_hash bytea;
  v_last_txid xid8;
  v_last_id bigint;
  v_horizon xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
  v_n int := coalesce(array_length(p_event_ids, 1), 0);
  v_bad int;
  v_z_txid xid8;
  v_z_id bigint;
begin
  perform app.require_operator_org(p_org_id);
  if v_n = 0 then return 0; end if;
  if coalesce(array_length(p_prev_hashes, 1), 0) <> v_n or coalesce(array_length(p_hashes, 1), 0) <> v_n then
    raise exception 'audit_seal_append: arrays of different lengths' using errcode = '22023';
  end if;
  -- One sealer per organisation at a time.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('trustctl.audit_seal'), pg_catalog.hashtext(p_org_id::text));

  select c.chain_seq, c.hash, e.txid, e.id into v_head_seq, v_head_hash, v_last_txid, v_last_id
    from public.audit_chain c join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
   where c.org_id = p_org_id order by c.chain_seq desc limit 1;
  if not found then
    select a.chain_seq, a.hash into v_head_seq, v_head_hash
      from public.audit_anchors a where a.org_id = p_org_id order by a.chain_seq desc limit 1;
    v_head_seq := coalesce(v_head_seq, 0);
    v_head_hash := coalesce(v_head_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  end if;
  if p_prev_hashes[1] <> v_head_hash then
    raise exception 'audit_seal_append: the batch does not continue the chain head (another seal ran?)'
      using errcode = 'TC012';
  end if;

  -- Each event exists, is final, comes after the one before it in (txid,
  -- id) order, and is linked to it; the first comes after the last sealed.
  select count(*) into v_bad
  from (
    select b.n, b.prev_hash, e.id, e.txid,
           lag(e.txid) over w as p_txid, lag(e.id) over w as p_id, lag(b.hash) over w as p_hash
    from unnest(p_event_ids, p_prev_hashes, p_hashes) with ordinality b(event_id, prev_hash, hash, n)
    left join public.audit_events e on e.org_id = p_org_id and e.id = b.event_id
    window w as (order by b.n)
  ) x
  where x.id is null
     or x.txid >= v_horizon
     or (x.n > 1 and ((x.p_txid, x.p_id) >= (x.txid, x.id) or x.prev_hash <> x.p_hash))
     or (x.n = 1 and v_last_txid is not null and (v_last_txid, v_last_id) >= (x.txid, x.id));
  if v_bad > 0 then
    raise exception 'audit_seal_append: % event(s) out of order, not final, missing or not linked', v_bad
      using errcode = 'TC011';
  end if;
  -- Gapless: every event between the last sealed one and the batch's last,
  -- in chain order, is in the batch. (Two forms, so the index range scan has
  -- its lower bound whenever there is one.)
  select e.txid, e.id into v_z_txid, v_z_id from public.audit_events e
   where e.org_id = p_org_id and e.id = p_event_ids[v_n];
  if v_last_txid is null then
    select count(*) into v_bad from public.audit_events e
     where e.org_id = p_org_id and (e.txid, e.id) <= (v_z_txid, v_z_id);
  else
    select count(*) into v_bad from public.audit_events e
     where e.org_id = p_org_id and (e.txid, e.id) <= (v_z_txid, v_z_id) and (e.txid, e.id) > (v_last_txid, v_last_id);
  end if;
  if v_bad <> v_n then
    raise exception 'audit_seal_append: the batch skips % event(s)', v_bad - v_n using errcode = 'TC011';
  end if;

  insert into public.audit_chain (org_id, chain_seq, event_id, prev_hash, hash, operator_session_id)
  select p_org_id, v_head_seq + b.n, b.event_id, b.prev_hash, b.hash, app.current_operator_session_id()
  from unnest(p_event_ids, p_prev_hashes, p_hashes) with ordinality b(event_id, prev_hash, hash, n);
  return v_head_seq + v_n;
end
$$;

-- Records the head after a seal: the caller names the head it saw and the
-- horizon it sealed up to; the database checks the head is the chain's.
create function app.audit_checkpoint(
  p_org_id uuid, p_chain_seq bigint, p_head_hash bytea, p_rows bigint, p_horizon xid8,
  p_key_id text, p_signature bytea
) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_hash bytea;
  v_id bigint;
  v_last_txid xid8;
  v_last_id bigint;
begin
  perform app.require_operator_org(p_org_id);
  if p_horizon > pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) then
    raise exception 'audit_checkpoint: horizon % is in the future', p_horizon using errcode = '22023';
  end if;
  if p_chain_seq = 0 then
    v_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  else
    select c.hash into v_hash from public.audit_chain c where c.org_id = p_org_id and c.chain_seq = p_chain_seq;
    if not found then
      select a.hash into v_hash from public.audit_anchors a where a.org_id = p_org_id and a.chain_seq = p_chain_seq;
    end if;
  end if;
  if v_hash is distinct from p_head_hash
     or exists (select 1 from public.audit_chain c where c.org_id = p_org_id and c.chain_seq > p_chain_seq) then
    raise exception 'audit_checkpoint: % is not the head of the chain', p_chain_seq using errcode = 'TC012';
  end if;
  -- The horizon claims every older event is sealed; sealing is gapless, so
  -- the only candidates are events after the last sealed one.
  select e.txid, e.id into v_last_txid, v_last_id
    from public.audit_chain c join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
   where c.org_id = p_org_id and c.chain_seq = p_chain_seq;
  if exists (select 1 from public.audit_events e
              where e.org_id = p_org_id and e.txid < p_horizon
                and (v_last_txid is null or (e.txid, e.id) > (v_last_txid, v_last_id))
                and not exists (select 1 from public.audit_chain c where c.org_id = e.org_id and c.event_id = e.id)) then
    raise exception 'audit_checkpoint: events older than horizon % are not sealed', p_horizon using errcode = 'TC011';
  end if;
  insert into public.audit_checkpoints
    (org_id, chain_seq, head_hash, rows, horizon, operator_session_id, key_id, signature)
  values (p_org_id, p_chain_seq, p_head_hash, p_rows, p_horizon, app.current_operator_session_id(), p_key_id, p_signature)
  returning id into v_id;
  return v_id;
end
$$;

-- Removes a whole sealed prefix of an organisation's trail (chain entries
-- 1..p_through_seq and their events), leaving an anchor (seq, hash) that
-- verification starts from. Used by retention for the audit_events category.
create function app.audit_prune(p_org_id uuid, p_through_seq bigint) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  v_hash bytea;
  v_through_id bigint;
  v_ids bigint[];
  v_n bigint;
begin
  perform app.require_operator_org(p_org_id);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('trustctl.audit_seal'), pg_catalog.hashtext(p_org_id::text));
  select c.hash into v_hash from public.audit_chain c where c.org_id = p_org_id and c.chain_seq = p_through_seq;
  if not found then
    raise exception 'audit_prune: chain entry % of organisation % is not held (already pruned, or not sealed)',
      p_through_seq, p_org_id using errcode = 'TC011';
  end if;
  -- Only at a checkpoint: exported checkpoints then show where every anchor
  -- may legitimately be, and verify can refuse one that is not.
  if not exists (select 1 from public.audit_checkpoints k
                  where k.org_id = p_org_id and k.chain_seq = p_through_seq and k.head_hash = v_hash) then
    raise exception 'audit_prune: % is not a checkpoint of organisation %; prune only at a checkpoint',
      p_through_seq, p_org_id using errcode = 'TC011';
  end if;
  insert into public.audit_anchors (org_id, chain_seq, hash, operator_session_id)
  values (p_org_id, p_through_seq, v_hash, app.current_operator_session_id());
  select array_agg(c.event_id), max(c.event_id) into v_ids, v_through_id
    from public.audit_chain c where c.org_id = p_org_id and c.chain_seq <= p_through_seq;
  delete from public.audit_chain c where c.org_id = p_org_id and c.chain_seq <= p_through_seq;
  -- The trigger on audit_events lets through only events of this
  -- organisation, up to this id, that are no longer in the chain.
  perform pg_catalog.set_config('trustctl.audit_prune_org', p_org_id::text, true);
  perform pg_catalog.set_config('trustctl.audit_prune_through_id', v_through_id::text, true);
  delete from public.audit_events e where e.org_id = p_org_id and e.id = any (v_ids);
  get diagnostics v_n = row_count;
  -- The prune is itself an event, sealed by the next seal.
  perform app.audit_record(p_org_id, null, 'audit.prune', 'audit_chain', p_through_seq::text, '{}'::uuid[], 'success',
    jsonb_build_object('through_seq', p_through_seq, 'events', v_n, 'anchor_hash', encode(v_hash, 'hex')));
  perform pg_catalog.set_config('trustctl.audit_prune_org', '', true);
  perform pg_catalog.set_config('trustctl.audit_prune_through_id', '', true);
  return v_n;
end
$$;

reset role;
alter function app.audit_seal_append(uuid, bigint[], bytea[], bytea[]) owner to trustctl_definer;
alter function app.audit_checkpoint(uuid, bigint, bytea, bigint, xid8, text, bytea) owner to trustctl_definer;
alter function app.audit_prune(uuid, bigint) owner to trustctl_definer;
revoke all on function app.audit_seal_append(uuid, bigint[], bytea[], bytea[]),
  app.audit_checkpoint(uuid, bigint, bytea, bigint, xid8, text, bytea),
  app.audit_prune(uuid, bigint), app.refuse_seal_change() from public;
grant execute on function app.audit_seal_append(uuid, bigint[], bytea[], bytea[]),
  app.audit_checkpoint(uuid, bigint, bytea, bigint, xid8, text, bytea),
  app.audit_prune(uuid, bigint) to trustctl_operator;
-- audit_prune records itself through app.audit_record.
grant execute on function app.audit_record(uuid, uuid, text, text, text, uuid[], text, jsonb) to trustctl_definer;
