// Verification of the audit chain, from each organisation's newest proven
// anchor (src/audit/anchors.ts: every anchor needs its sealed audit.prune
// event): every chain entry's event is present and hashes to the stored
// hash, every entry links to the one before, no entry is missing, nothing
// is left below the anchor, no event older than the last seal's horizon is
// left unsealed, and every checkpoint (in the database, and in a file kept
// outside it) matches the chain, with a valid signature where a public key
// is given.
import type { KeyObject } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { OperatorSession } from '../db/operator-session.js';
import { checkAnchors, type AnchorStatus } from './anchors.js';
import { canonicalColumns, canonicalEvent, chainHash, GENESIS_HASH, type CanonicalEventFields } from './canonical.js';
import { readCheckpoints, type Checkpoint } from './checkpoints.js';
import { checkpointSignatureValid, keyId } from './keys.js';

export interface OrgVerifyResult {
  readonly orgId: string;
  readonly org: string;
  /** Chain entries checked (after the anchor). */
  readonly entries: number;
  /** Where the check started: the newest proven anchor, or 0. */
  readonly anchorSeq: string;
  /** Every anchor, oldest first, and what became of it (src/audit/anchors.ts). */
  readonly anchors: readonly { readonly seq: string; readonly status: AnchorStatus; readonly pruneEventSeq: string | null }[];
  readonly headSeq: string;
  readonly checkpointsChecked: number;
  readonly problems: readonly string[];
}

export interface VerifyAuditResult {
  readonly ok: boolean;
  readonly orgs: readonly OrgVerifyResult[];
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Problems past this many per kind are summarised, so a wrecked chain gives a readable report. */
const MAX_PER_KIND = 20;

class ProblemList {
  readonly lines: string[] = [];
  readonly #counts = new Map<string, number>();
  constructor(private readonly org: string) {}
  add(kind: string, seq: string | null, detail: string): void {
    const n = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, n);
    if (n <= MAX_PER_KIND) this.lines.push(`${kind} at ${this.org}${seq === null ? '' : ` seq ${seq}`}: ${detail}`);
  }
  finish(): string[] {
    for (const [kind, n] of this.#counts) {
      if (n > MAX_PER_KIND) this.lines.push(`${kind} at ${this.org}: ${n - MAX_PER_KIND} more not shown`);
    }
    return this.lines;
  }
}

/**
 * With a key, checkpoints must carry signatures: none at all, or an unsigned
 * one further along the chain than a signed one, is a downgrade (a signature
 * stripped so that the head under it could be rewritten). Unsigned ones up
 * to the first signed one are from before signing began. Chain order, not
 * the database's ids, which whoever inserts a row can choose.
 */
function requireSignatures(problems: ProblemList, checkpoints: ReadonlyArray<Checkpoint & { readonly source: string }>, none: string): void {
  const firstSigned = checkpoints.filter((c) => c.signature).map((c) => BigInt(c.chain_seq)).sort((a, b) => (a < b ? -1 : 1))[0];
  if (firstSigned === undefined) {
    problems.add('signature mismatch', null, none);
    return;
  }
  for (const c of checkpoints) {
    if (!c.signature && BigInt(c.chain_seq) > firstSigned) {
      problems.add('signature mismatch', c.chain_seq, `${c.source} checkpoint ${c.id || '?'}: not signed, after signed ones`);
    }
  }
}

async function verifyOrg(
  trx: AnyTrx,
  org: { org_id: string; slug: string },
  external: readonly Checkpoint[],
  publicKey: KeyObject | undefined,
): Promise<OrgVerifyResult> {
  const problems = new ProblemList(org.slug);
  const anchor = await checkAnchors(trx, org.org_id);
  for (const p of anchor.problems) problems.add(p.kind, p.seq, p.detail);
  const checkpoints = [...(await readCheckpoints(trx, [org.org_id])).map((c) => ({ ...c, source: 'database' })),
    ...external.filter((c) => c.org_id === org.org_id).map((c) => ({ ...c, source: 'file' }))];
  // Hashes to remember while streaming: those the checkpoints name.
  const wanted = new Map<string, Buffer | null>(checkpoints.map((c) => [c.chain_seq, null]));

  let expected = BigInt(anchor.seq) + 1n;
  let prev: Buffer = anchor.hash;
  let entries = 0;
  let head = anchor.seq;
  const stream = sql<CanonicalEventFields & { seq: string; event_id: string; prev_hash: Buffer; hash: Buffer; present: boolean }>`
    select c.chain_seq::text as seq, c.event_id::text as event_id, c.prev_hash, c.hash, e.id is not null as present,
           ${canonicalColumns('e')}
    from public.audit_chain c left join public.audit_events e on e.org_id = c.org_id and e.id = c.event_id
    where c.org_id = ${org.org_id}::uuid and c.chain_seq > ${anchor.seq}::bigint
    order by c.chain_seq`;
  const compiled = stream.compile(trx);
  for await (const chunk of trx.getExecutor().stream(compiled, 5000)) {
    for (const r of chunk.rows as Array<CanonicalEventFields & { seq: string; event_id: string; prev_hash: Buffer; hash: Buffer; present: boolean }>) {
      const seq = BigInt(r.seq);
      if (seq !== expected) {
        problems.add('removed row', String(expected), `chain entries ${expected}..${seq - 1n} are missing`);
      }
      if (!r.prev_hash.equals(prev)) {
        problems.add('broken link', r.seq, 'prev_hash is not the previous entry’s hash');
      }
      if (!r.present) {
        problems.add('removed row', r.seq, `event ${r.event_id} is missing`);
      } else if (!chainHash(r.prev_hash, canonicalEvent(r, r.seq)).equals(r.hash)) {
        problems.add('changed row', r.seq, `event ${r.event_id} does not match its seal`);
      }
      if (wanted.has(r.seq)) wanted.set(r.seq, r.hash);
      prev = r.hash;
      expected = seq + 1n;
      head = r.seq;
      entries += 1;
    }
  }
  if (wanted.has(anchor.seq)) wanted.set(anchor.seq, anchor.hash);

  // Events the last seal should have sealed but that are not in the chain.
  const horizon = checkpoints.reduce<bigint | null>((h, c) => (h === null || BigInt(c.horizon) > h ? BigInt(c.horizon) : h), null);
  if (horizon !== null) {
    // EXCEPT, not NOT EXISTS: a set operation stays linear even when the
    // planner has no statistics for a chain the seal has just written (a
    // nested-loop anti-join with a sequential inner scan took minutes on
    // PostgreSQL 15 right after a first seal).
    const unsealed = await sql<{ id: string; txid: string }>`
      select x.id::text as id, u.txid::text as txid from (
        select e.id from public.audit_events e
        where e.org_id = ${org.org_id}::uuid and e.txid < ${horizon.toString()}::xid8
        except
        select c.event_id from public.audit_chain c where c.org_id = ${org.org_id}::uuid
        order by 1 limit ${MAX_PER_KIND + 1}
      ) x join public.audit_events u on u.org_id = ${org.org_id}::uuid and u.id = x.id
      order by x.id`.execute(trx);
    // Below the horizon of the anchor's checkpoint, an event was sealed at or
    // below the anchor and should have gone with the pruned prefix.
    const pruned = anchor.prunedHorizon === null ? null : BigInt(anchor.prunedHorizon);
    for (const u of unsealed.rows) {
      if (pruned !== null && BigInt(u.txid) < pruned) {
        problems.add('rows below anchor', anchor.seq, `event ${u.id} was sealed at or below the anchor (older than its checkpoint’s horizon) but is still present`);
      } else {
        problems.add('inserted row', null, `event ${u.id} is older than the last seal’s horizon but not sealed`);
      }
    }
  }

  let checked = 0;
  const pubId = publicKey ? keyId(publicKey) : null;
  for (const c of checkpoints) {
    const where = `${c.source} checkpoint ${c.id || '?'}`;
    const atSeq = BigInt(c.chain_seq);
    if (publicKey && c.signature) {
      if (c.key_id !== pubId) {
        problems.add('signature mismatch', c.chain_seq, `${where}: signed by key ${c.key_id}, not ${pubId}`);
      } else if (!checkpointSignatureValid(publicKey, c, Buffer.from(c.signature, 'base64'))) {
        problems.add('signature mismatch', c.chain_seq, `${where}: the signature does not verify`);
      }
    }
    if (atSeq < BigInt(anchor.seq)) continue; // pruned; the anchor carries on from there
    const hash = wanted.get(c.chain_seq);
    if (atSeq === 0n ? c.head_hash !== GENESIS_HASH.toString('hex') : !hash) {
      problems.add('checkpoint mismatch', c.chain_seq, `${where}: the chain has no entry ${c.chain_seq} (truncated?)`);
    } else if (atSeq !== 0n && hash!.toString('hex') !== c.head_hash) {
      problems.add('checkpoint mismatch', c.chain_seq, `${where}: head hash differs from the chain`);
    }
    checked += 1;
  }

  const fileCheckpoints = checkpoints.filter((c) => c.source === 'file');
  if (fileCheckpoints.length > 0) {
    // Pruning happens only at a checkpoint, so every genuine anchor is one of
    // the exported checkpoints; a forged one (hiding a prefix) is not.
    for (const a of anchor.anchors) {
      const hex = a.hash.toString('hex');
      if (!fileCheckpoints.some((c) => c.chain_seq === a.seq && c.head_hash === hex)) {
        problems.add('anchor mismatch', a.seq, 'the anchor is not one of the external checkpoints');
      }
    }
  }
  if (publicKey) {
    if (fileCheckpoints.length > 0) requireSignatures(problems, fileCheckpoints, 'the external checkpoints carry no signature');
    const dbCheckpoints = checkpoints.filter((c) => c.source === 'database');
    if (dbCheckpoints.length > 0) requireSignatures(problems, dbCheckpoints, 'the database checkpoints carry no signature');
  }
  return {
    orgId: org.org_id,
    org: org.slug,
    entries,
    anchorSeq: anchor.seq,
    anchors: anchor.anchors.map((a) => ({ seq: a.seq, status: a.status, pruneEventSeq: a.pruneEventSeq })),
    headSeq: head,
    checkpointsChecked: checked,
    problems: problems.finish(),
  };
}

/**
 * Verifies the chains of every organisation the session covers.
 *
 * @example
 * const r = await verifyAuditChain(session, { checkpoints: await loadCheckpointsFile(f), publicKey }, { logger })
 */
export async function verifyAuditChain(
  session: OperatorSession,
  options: {
    readonly checkpoints?: readonly Checkpoint[];
    readonly publicKey?: KeyObject;
    /** Only these organisations (slugs); the checkpoints file's others are then ignored. */
    readonly only?: readonly string[];
  },
  { logger }: { logger: Logger },
): Promise<VerifyAuditResult> {
  const orgs = await session.transaction((trx) =>
    trx.selectFrom('organisations').select(['org_id', 'slug']).orderBy('slug').execute(),
  );
  const results: OrgVerifyResult[] = [];
  // An organisation in the checkpoints file that the database no longer
  // shows (deleted, say) would otherwise go unchecked.
  if (!options.only) {
    const known = new Set(orgs.map((o) => o.org_id));
    const missing = [...new Set((options.checkpoints ?? []).map((c) => c.org_id))].filter((id) => !known.has(id));
    for (const id of missing) {
      const slug = options.checkpoints!.find((c) => c.org_id === id)?.org || id;
      results.push({
        orgId: id,
        org: slug,
        entries: 0,
        anchorSeq: '0',
        anchors: [],
        headSeq: '0',
        checkpointsChecked: 0,
        problems: [`removed organisation at ${slug}: it has checkpoints in the file but is not in the database`],
      });
    }
  }
  for (const org of orgs) {
    const r = await session.transaction(
      (trx) => verifyOrg(trx as unknown as AnyTrx, org, options.checkpoints ?? [], options.publicKey),
      { isolation: 'repeatable read', readOnly: true },
    );
    logger.info({ org: org.slug, entries: r.entries, problems: r.problems.length }, 'audit chain verified');
    results.push(r);
  }
  return { ok: results.every((r) => r.problems.length === 0), orgs: results };
}
