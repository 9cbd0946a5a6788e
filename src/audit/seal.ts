// Sealing, CloudTrail-style: inserts never wait on each other; a seal takes,
// per organisation, the events whose inserting transaction has ended (older
// than its snapshot's xmin horizon), in (txid, id) order, and appends them to
// the organisation's hash chain. Every event below a horizon is final, so a
// later seal only ever appends. The database checks order, gaplessness and
// linkage (app.audit_seal_append); an advisory lock per organisation makes
// concurrent seals take turns.
import type { KeyObject } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { OperatorSession } from '../db/operator-session.js';
import { canonicalColumns, canonicalEvent, chainHash, GENESIS_HASH, type CanonicalEventFields } from './canonical.js';
import { keyId, signCheckpoint } from './keys.js';

export interface SealOptions {
  /** Events per transaction. */
  readonly batchSize: number;
  /** Signs each checkpoint when given. */
  readonly signingKey?: KeyObject;
  /** Called after each batch. */
  readonly onProgress?: (progress: { readonly org: string; readonly sealed: number }) => void;
}

export interface OrgSealResult {
  readonly orgId: string;
  readonly org: string;
  readonly sealed: number;
  readonly headSeq: string;
  readonly headHash: string;
  readonly horizon: string;
  readonly checkpointId: string;
  readonly signedBy: string | null;
}

interface Head {
  readonly seq: bigint;
  readonly hash: Buffer;
  /** The last sealed event's position in chain order; null when the chain holds none (new, or pruned). */
  readonly last: { readonly txid: string; readonly id: string } | null;
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function chainHead(trx: AnyTrx, orgId: string): Promise<Head> {
  const res = await sql<{ seq: string; hash: Buffer; txid: string; id: string }>`
    select c.chain_seq::text as seq, c.hash, e.txid::text as txid, e.id::text as id
    from public.audit_chain c join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
    where c.org_id = ${orgId}::uuid order by c.chain_seq desc limit 1`.execute(trx);
  const row = res.rows[0];
  if (row) return { seq: BigInt(row.seq), hash: row.hash, last: { txid: row.txid, id: row.id } };
  const anchor = await sql<{ seq: string; hash: Buffer }>`
    select chain_seq::text as seq, hash from public.audit_anchors
    where org_id = ${orgId}::uuid order by chain_seq desc limit 1`.execute(trx);
  const a = anchor.rows[0];
  return a ? { seq: BigInt(a.seq), hash: a.hash, last: null } : { seq: 0n, hash: GENESIS_HASH, last: null };
}

async function sealBatch(
  trx: AnyTrx,
  orgId: string,
  batchSize: number,
): Promise<{ sealed: number; head: Head; horizon: string }> {
  // Take turns with other sealers before reading the head (READ COMMITTED:
  // every statement after the lock sees what they committed).
  await sql`select pg_advisory_xact_lock(hashtext('trustctl.audit_seal'), hashtext(${orgId}))`.execute(trx);
  const head = await chainHead(trx, orgId);
  const horizon = (await sql<{ h: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as h`.execute(trx)).rows[0]!.h;
  const after = head.last ? sql`and (e.txid, e.id) > (${head.last.txid}::xid8, ${head.last.id}::bigint)` : sql``;
  const res = await sql<CanonicalEventFields>`
    select ${canonicalColumns('e')} from public.audit_events e
    where e.org_id = ${orgId}::uuid and e.txid < ${horizon}::xid8 ${after}
    order by e.txid, e.id limit ${batchSize}`.execute(trx);
  if (res.rows.length === 0) return { sealed: 0, head, horizon };
  const ids: string[] = [];
  const prevs: Buffer[] = [];
  const hashes: Buffer[] = [];
  let prev = head.hash;
  let seq = head.seq;
  for (const e of res.rows) {
    seq += 1n;
    const hash = chainHash(prev, canonicalEvent(e, seq));
    ids.push(e.id);
    prevs.push(prev);
    hashes.push(hash);
    prev = hash;
  }
  await sql`select app.audit_seal_append(${orgId}::uuid, ${ids}::bigint[], ${prevs}::bytea[], ${hashes}::bytea[])`.execute(trx);
  const last = res.rows[res.rows.length - 1]!;
  return { sealed: res.rows.length, head: { seq, hash: prev, last: { txid: last.txid, id: last.id } }, horizon };
}

/**
 * Seals every organisation the session covers, then writes a checkpoint per
 * organisation (signed when a key is given).
 *
 * @example
 * const results = await sealAuditChain(session, { batchSize: 10_000 }, { logger })
 */
export async function sealAuditChain(
  session: OperatorSession,
  options: SealOptions,
  { logger }: { logger: Logger },
): Promise<OrgSealResult[]> {
  const orgs = await session.transaction((trx) =>
    trx.selectFrom('organisations').select(['org_id', 'slug']).orderBy('slug').execute(),
  );
  const results: OrgSealResult[] = [];
  for (const org of orgs) {
    let sealed = 0;
    let done: OrgSealResult | null = null;
    while (!done) {
      done = await session.transaction(async (trxTyped) => {
        const trx = trxTyped as unknown as AnyTrx;
        const batch = await sealBatch(trx, org.org_id, options.batchSize);
        sealed += batch.sealed;
        if (batch.sealed > 0) options.onProgress?.({ org: org.slug, sealed });
        if (batch.sealed === options.batchSize) return null;
        // Fewer than a full batch below the horizon: every event older than
        // it is sealed. Checkpoint in the same transaction, under the lock,
        // so no other seal can move the head in between.
        const claim = {
          org_id: org.org_id,
          chain_seq: batch.head.seq.toString(),
          head_hash: batch.head.hash.toString('hex'),
          horizon: batch.horizon,
        };
        const signature = options.signingKey ? signCheckpoint(options.signingKey, claim) : null;
        const signedBy = options.signingKey ? keyId(options.signingKey) : null;
        const checkpoint = await sql<{ id: string }>`
          select app.audit_checkpoint(${org.org_id}::uuid, ${claim.chain_seq}::bigint, ${batch.head.hash},
            ${sealed}::bigint, ${claim.horizon}::xid8, ${signedBy}, ${signature}) as id`.execute(trx);
        return {
          orgId: org.org_id,
          org: org.slug,
          sealed,
          headSeq: claim.chain_seq,
          headHash: claim.head_hash,
          horizon: claim.horizon,
          checkpointId: String(checkpoint.rows[0]!.id),
          signedBy,
        };
      });
    }
    logger.info({ org: org.slug, sealed: done.sealed, head: done.headSeq }, 'audit chain sealed');
    results.push(done);
  }
  return results;
}

