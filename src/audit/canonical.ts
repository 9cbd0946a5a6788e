// The canonical form of an audit event and the chain hash over it: what
// `audit seal` writes and `audit verify` and `audit export` recompute. It is
// specified in docs/audit.md so that anyone can re-implement verification.
import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';

export const CANONICAL_VERSION = 'trustctl-audit-event/1';

/** prev_hash of the first entry of a chain that has never been pruned. */
export const GENESIS_HASH = Buffer.alloc(32);

/** An event's fields as the canonical form reads them: all text, exactly as selected by canonicalColumns. */
export interface CanonicalEventFields {
  readonly org_id: string;
  readonly id: string;
  readonly txid: string;
  readonly site_id: string | null;
  readonly occurred_at: string;
  readonly recorded_at: string;
  readonly actor_type: string;
  readonly actor_id: string | null;
  readonly operator_session_id: string | null;
  readonly action: string;
  readonly target_type: string | null;
  readonly target_id: string | null;
  readonly subject_ids: readonly string[];
  readonly outcome: string;
  readonly reason: string | null;
  readonly ticket: string | null;
  readonly source_ip: string | null;
  readonly request_id: string | null;
  /** PostgreSQL's jsonb text of the context, exactly as stored (no re-serialising). */
  readonly context: string;
}

const UTC_MICROS = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

/** A timestamptz as canonical text: UTC, microseconds, ' BC' for years before 1 AD (to_char has no sign). */
function utcText(column: RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`(to_char(${column} at time zone 'UTC', ${sql.lit(UTC_MICROS)})
    || case when ${column} < '0001-01-01 00:00:00+00'::timestamptz then ' BC' else '' end)`;
}

/**
 * The select list that yields CanonicalEventFields from audit_events
 * aliased `alias`: ids and txid as decimal text, times in UTC with
 * microseconds, addresses as PostgreSQL prints inet.
 *
 * @example
 * sql`select ${canonicalColumns('e')} from audit_events e`
 */
export function canonicalColumns(alias: string): RawBuilder<unknown> {
  const c = (column: string) => sql.ref(`${alias}.${column}`);
  return sql`${c('org_id')}::text as org_id, ${c('id')}::text as id, ${c('txid')}::text as txid,
    ${c('site_id')}::text as site_id,
    ${utcText(c('occurred_at'))} as occurred_at, ${utcText(c('recorded_at'))} as recorded_at,
    ${c('actor_type')} as actor_type, ${c('actor_id')} as actor_id,
    ${c('operator_session_id')}::text as operator_session_id, ${c('action')} as action,
    ${c('target_type')} as target_type, ${c('target_id')} as target_id,
    ${c('subject_ids')}::text[] as subject_ids, ${c('outcome')} as outcome, ${c('reason')} as reason,
    ${c('ticket')} as ticket, ${c('source_ip')}::text as source_ip, ${c('request_id')} as request_id,
    ${c('context')}::text as context`;
}

/**
 * The canonical bytes of an event at a position of its chain.
 *
 * @example
 * canonicalEvent(fields, 1n).toString() // '["trustctl-audit-event/1","1","8cc6…",…]'
 */
export function canonicalEvent(e: CanonicalEventFields, chainSeq: bigint | string): Buffer {
  const fields: unknown[] = [
    CANONICAL_VERSION,
    String(chainSeq),
    e.org_id,
    e.id,
    e.txid,
    e.site_id,
    e.occurred_at,
    e.recorded_at,
    e.actor_type,
    e.actor_id,
    e.operator_session_id,
    e.action,
    e.target_type,
    e.target_id,
    e.subject_ids,
    e.outcome,
    e.reason,
    e.ticket,
    e.source_ip,
    e.request_id,
  ];
  return Buffer.from(JSON.stringify([...fields, e.context]), 'utf8');
}

/**
 * hash = SHA-256(prev_hash || canonical(event)).
 *
 * @example
 * const h = chainHash(GENESIS_HASH, canonicalEvent(fields, 1n))
 */
export function chainHash(prev: Buffer, canonical: Buffer): Buffer {
  return createHash('sha256').update(prev).update(canonical).digest();
}
