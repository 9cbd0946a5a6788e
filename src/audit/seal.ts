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

async function chainHead(trx: AnyTrx, orgId: string): Promise<Head> {
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

/** A batch read and hashed, ready to append on top of `from`. */
interface PreparedBatch {
  readonly from: Head;
  readonly head: Head;
  readonly horizon: string;
  readonly ids: string[];
  readonly prevs: Buffer[];
  readonly hashes: Buffer[];
}

/** Reads the next final events after `from` (below this snapshot's horizon) and hashes them. */
async function prepareBatch(trx: AnyTrx, orgId: string, from: Head, batchSize: number): Promise<PreparedBatch> {
  const horizon = (await sql<{ h: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as h`.execute(trx)).rows[0]!.h;
  const after = from.last ? sql`and (e.txid, e.id) > (${from.last.txid}::xid8, ${from.last.id}::bigint)` : sql``;
  const res = await sql<CanonicalEventFields>`
    select ${canonicalColumns('e')} from public.audit_events e
    where e.org_id = ${orgId}::uuid and e.txid < ${horizon}::xid8 ${after}
    order by e.txid, e.id limit ${batchSize}`.execute(trx);
  const ids: string[] = [];
  const prevs: Buffer[] = [];
  const hashes: Buffer[] = [];
  let prev = from.hash;
  let seq = from.seq;
  for (const e of res.rows) {
    seq += 1n;
    const hash = chainHash(prev, canonicalEvent(e, seq));
    ids.push(e.id);
    prevs.push(prev);
    hashes.push(hash);
    prev = hash;
  }
  const last = res.rows[res.rows.length - 1];
  const head = last ? { seq, hash: prev, last: { txid: last.txid, id: last.id } } : from;
  return { from, head, horizon, ids, prevs, hashes };
}

/** SQLSTATE of a batch or checkpoint that no longer continues the head: another seal got there first. */
const HEAD_MOVED = 'TC012';
const MAX_STALLS = 3;

/**
 * Seals one organisation. Reading and hashing the next batch overlaps with
 * the database appending the current one (two connections); each append
 * re-checks the head under the advisory lock, and if another seal moved it
 * in between (TC011), sealing starts again from the new head.
 */
async function sealOrganisation(
  session: OperatorSession,
  org: { readonly org_id: string; readonly slug: string },
  options: SealOptions,
  logger: Logger,
): Promise<OrgSealResult> {
  let sealed = 0;
  let lastStart: bigint | null = null;
  let stalls = 0;
  for (;;) {
    const start = await session.transaction((trx) => chainHead(trx as unknown as AnyTrx, org.org_id));
    // Starting again is fine while the other seal makes progress (it always
    // does: it moved the head); a head that did not move means something else.
    if (lastStart !== null && start.seq <= lastStart && (stalls += 1) > MAX_STALLS) {
      throw new Error(`sealing ${org.slug}: the chain head stopped at ${start.seq} but appends keep being refused`);
    }
    lastStart = start.seq;
    let next: Promise<PreparedBatch> = session.transaction((trx) =>
      prepareBatch(trx as unknown as AnyTrx, org.org_id, start, options.batchSize),
    );
    try {
      for (;;) {
        const batch = await next;
        const full = batch.ids.length === options.batchSize;
        const appending = session.transaction(async (trxTyped) => {
          const trx = trxTyped as unknown as AnyTrx;
          await sql`select pg_advisory_xact_lock(hashtext('trustctl.audit_seal'), hashtext(${org.org_id}))`.execute(trx);
          if (batch.ids.length > 0) {
            await sql`select app.audit_seal_append(${org.org_id}::uuid, ${batch.ids}::bigint[], ${batch.prevs}::bytea[],
              ${batch.hashes}::bytea[])`.execute(trx);
          }
          if (full) return null;
          // Fewer than a full batch below the horizon: every older event is
          // sealed. Checkpoint under the same lock, so the head cannot move.
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
              ${sealed + batch.ids.length}::bigint, ${claim.horizon}::xid8, ${signedBy}, ${signature}) as id`.execute(trx);
          return { claim, signedBy, checkpointId: String(checkpoint.rows[0]!.id) };
        });
        if (full) {
          next = session.transaction((trx) => prepareBatch(trx as unknown as AnyTrx, org.org_id, batch.head, options.batchSize));
          next.catch(() => undefined); // awaited on the next turn, or abandoned on a restart
        }
        const done = await appending;
        sealed += batch.ids.length;
        if (batch.ids.length > 0) options.onProgress?.({ org: org.slug, sealed });
        if (done) {
          return {
            orgId: org.org_id,
            org: org.slug,
            sealed,
            headSeq: done.claim.chain_seq,
            headHash: done.claim.head_hash,
            horizon: done.claim.horizon,
            checkpointId: done.checkpointId,
            signedBy: done.signedBy,
          };
        }
      }
    } catch (error) {
      if ((error as { code?: string }).code !== HEAD_MOVED) throw error;
      logger.info({ org: org.slug }, 'another seal moved the head; starting again from it');
      await next.catch(() => undefined);
    }
  }
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
    const done = await sealOrganisation(session, org, options, logger);
    logger.info({ org: org.slug, sealed: done.sealed, head: done.headSeq }, 'audit chain sealed');
    results.push(done);
  }
  return results;
}

