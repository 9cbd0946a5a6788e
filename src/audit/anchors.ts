// Where an organisation's chain starts after pruning, and whether to believe
// it. An anchor (audit_anchors: org, chain_seq, hash) is a row a superuser
// can insert like any other, so it proves nothing by itself: verify and
// export accept one only with the audit.prune event app.audit_prune records
// beside it, sealed into the chain after the anchor. Both start from what
// this module accepts, and report what it does not.
import { sql, type Transaction } from 'kysely';
import { canonicalColumns, canonicalEvent, chainHash, GENESIS_HASH, type CanonicalEventFields } from './canonical.js';

/**
 * - `proven`: its audit.prune event is sealed after it, names it, and matches its seal.
 * - `pending`: its audit.prune event exists but is not sealed yet (a prune since the last seal).
 * - `superseded`: no event, but a later proven or pending anchor exists, whose prune
 *   removed the prefix this anchor's event was sealed in.
 * - `unproven`: none of these.
 */
export type AnchorStatus = 'proven' | 'pending' | 'superseded' | 'unproven';

export interface CheckedAnchor {
  readonly seq: string;
  readonly hash: Buffer;
  readonly status: AnchorStatus;
  /** Where its audit.prune event is sealed (proven anchors only). */
  readonly pruneEventSeq: string | null;
}

/** One problem, formatted by the caller as `<kind> at <org>[ seq <seq>]: <detail>`. */
export interface AnchorProblem {
  readonly kind: 'unproven anchor' | 'anchor mismatch' | 'rows below anchor';
  readonly seq: string | null;
  readonly detail: string;
}

export interface ChainStart {
  /** Every anchor of the organisation, oldest first. */
  readonly anchors: readonly CheckedAnchor[];
  /** The newest proven (or pending, itself a problem) anchor: chain entries after it are checked. Else the genesis. */
  readonly seq: string;
  readonly hash: Buffer;
  /**
   * The highest horizon of a checkpoint at or below the start: every event
   * older than it was sealed at or below the start, so should have been
   * pruned with it. Null at the genesis.
   */
  readonly prunedHorizon: string | null;
  readonly problems: readonly AnchorProblem[];
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

type PruneEventRow = CanonicalEventFields & {
  readonly anchor_seq: string;
  readonly through_seq: string | null;
  readonly anchor_hash: string | null;
  readonly event_seq: string | null;
  readonly event_prev_hash: Buffer | null;
  readonly event_hash: Buffer | null;
};

type Verdict = { readonly ok: true; readonly seq: string } | { readonly ok: false; readonly pending: boolean; readonly detail: string };

/** Whether one audit.prune event proves an anchor. */
function judge(anchor: { seq: string; hash: Buffer }, e: PruneEventRow): Verdict {
  const what = `its audit.prune event ${e.id}`;
  if (e.anchor_hash !== anchor.hash.toString('hex')) return { ok: false, pending: false, detail: `${what} names another anchor hash` };
  if (e.event_seq === null) return { ok: false, pending: true, detail: `${what} is not sealed yet; seal, then verify again` };
  if (BigInt(e.event_seq) <= BigInt(anchor.seq)) {
    return { ok: false, pending: false, detail: `${what} is sealed at seq ${e.event_seq}, not after the anchor` };
  }
  if (!chainHash(e.event_prev_hash!, canonicalEvent(e, e.event_seq)).equals(e.event_hash!)) {
    return { ok: false, pending: false, detail: `${what} at seq ${e.event_seq} does not match its seal` };
  }
  return { ok: true, seq: e.event_seq };
}

/**
 * Checks every anchor of an organisation, newest first (a later prune
 * removes an earlier one's event with its prefix), and says where the chain
 * starts: each anchor needs its audit.prune event, sealed after it, naming
 * its seq and hash, and a database checkpoint at its seq and hash (a prune
 * happens only at one); chain entries at or below the start are reported.
 *
 * @example
 * const start = await checkAnchors(trx, orgId)
 * // stream audit_chain where chain_seq > start.seq, linking from start.hash
 */
export async function checkAnchors(trx: AnyTrx, orgId: string): Promise<ChainStart> {
  const anchors = (await sql<{ seq: string; hash: Buffer; checkpointed: boolean }>`
    select a.chain_seq::text as seq, a.hash,
           exists (select 1 from public.audit_checkpoints k
                    where k.org_id = a.org_id and k.chain_seq = a.chain_seq and k.head_hash = a.hash) as checkpointed
    from public.audit_anchors a where a.org_id = ${orgId}::uuid order by a.chain_seq`.execute(trx)).rows;
  // app.audit_prune inserts the anchor and records its event in one
  // statement, so the event's occurred_at is the anchor's pruned_at (both
  // statement_timestamp()): found through the (org_id, occurred_at) index
  // instead of a scan of the trail. An event elsewhere does not count.
  const events = anchors.length === 0 ? [] : (await sql<PruneEventRow>`
    select a.chain_seq::text as anchor_seq, e.context->>'through_seq' as through_seq, e.context->>'anchor_hash' as anchor_hash,
           c.chain_seq::text as event_seq, c.prev_hash as event_prev_hash, c.hash as event_hash, ${canonicalColumns('e')}
    from public.audit_anchors a
    join public.audit_events e on e.org_id = a.org_id and e.occurred_at = a.pruned_at and e.action = 'audit.prune'
    left join public.audit_chain c on c.org_id = e.org_id and c.event_id = e.id
    where a.org_id = ${orgId}::uuid
    order by a.chain_seq, c.chain_seq nulls last, e.id`.execute(trx)).rows;

  const checked: CheckedAnchor[] = [];
  const unproven = new Map<string, string>();
  let later = false; // a later anchor is proven or pending
  for (const a of [...anchors].reverse()) {
    const verdicts = events.filter((e) => e.anchor_seq === a.seq && e.through_seq === a.seq).map((e) => judge(a, e));
    const proof = verdicts.find((v) => v.ok);
    const pending = verdicts.find((v) => !v.ok && v.pending);
    let status: AnchorStatus;
    if (proof?.ok) status = 'proven';
    else if (pending) status = 'pending';
    else if (verdicts.length === 0 && later) status = 'superseded';
    else status = 'unproven';
    if (status === 'proven' || status === 'pending') later = true;
    const failed = pending ?? verdicts.find((v) => !v.ok);
    if (status === 'pending' || status === 'unproven') {
      unproven.set(a.seq, failed && !failed.ok ? failed.detail : 'no audit.prune event records it');
    }
    checked.unshift({ seq: a.seq, hash: a.hash, status, pruneEventSeq: proof?.ok ? proof.seq : null });
  }

  const problems: AnchorProblem[] = [];
  for (const a of anchors) {
    const why = unproven.get(a.seq);
    if (why) problems.push({ kind: 'unproven anchor', seq: a.seq, detail: why });
    if (!a.checkpointed) problems.push({ kind: 'anchor mismatch', seq: a.seq, detail: 'no database checkpoint has the anchor’s seq and hash' });
  }
  const start = [...checked].reverse().find((a) => a.status === 'proven' || a.status === 'pending');
  if (!start) return { anchors: checked, seq: '0', hash: GENESIS_HASH, prunedHorizon: null, problems };

  const below = (await sql<{ n: string; first: string | null; last: string | null; horizon: string | null }>`
    select count(*)::text as n, min(c.chain_seq)::text as first, max(c.chain_seq)::text as last,
           (select max(k.horizon)::text from public.audit_checkpoints k
             where k.org_id = ${orgId}::uuid and k.chain_seq <= ${start.seq}::bigint) as horizon
    from public.audit_chain c where c.org_id = ${orgId}::uuid and c.chain_seq <= ${start.seq}::bigint`.execute(trx)).rows[0]!;
  if (below.n !== '0') {
    const n = Number(below.n);
    problems.push({
      kind: 'rows below anchor',
      seq: start.seq,
      detail: `${n} chain entr${n === 1 ? 'y' : 'ies'} (seq ${below.first}..${below.last}) ${n === 1 ? 'is' : 'are'} still present`,
    });
  }
  return { anchors: checked, seq: start.seq, hash: start.hash, prunedHorizon: below.horizon, problems };
}
