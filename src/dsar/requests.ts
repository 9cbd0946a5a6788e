// Subject access requests: opened with the day they were received, due one
// calendar month later, extended by up to two further months with a reason,
// closed with a note. Every change is captured in the audit trail by the
// table's trigger, with the operator session's reason and ticket.
import { sql, type Transaction, type UpdateObject } from 'kysely';
import { RefusedError } from '../errors.js';
import type { Database } from '../db/schema.js';
import { daysUntil, extendedDueDate, legalDueDate, parseIsoDate, type IsoDate } from './due-date.js';
import type { DsarSubject, OrganisationRef, SubjectType } from './subject.js';

/** What the person asked for: their data (Article 15), or its erasure (Article 17). */
export type RequestKind = 'access' | 'erasure';
export const REQUEST_KINDS: readonly RequestKind[] = ['access', 'erasure'];

export interface DsarRequest {
  readonly id: string;
  readonly org: string;
  readonly reference: string;
  readonly kind: RequestKind;
  readonly subjectType: SubjectType;
  readonly subjectId: string;
  readonly siteId: string | null;
  readonly receivedOn: IsoDate;
  readonly dueOn: IsoDate;
  readonly extendedDueOn: IsoDate | null;
  readonly extensionReason: string | null;
  /** The date that counts: the extended one if any. */
  readonly effectiveDueOn: IsoDate;
  readonly status: 'open' | 'exported' | 'sent' | 'closed';
  readonly lastExportedAt: string | null;
  readonly lastBundleSha256: string | null;
  readonly closedAt: string | null;
  readonly closureNote: string | null;
}

export interface DueRequest extends DsarRequest {
  /** Days until the effective due date; negative when overdue. */
  readonly daysLeft: number;
  readonly overdue: boolean;
}

/**
 * Parses --kind.
 *
 * @example
 * parseRequestKind('erasure') // 'erasure'
 */
export function parseRequestKind(value: string): RequestKind {
  if (!(REQUEST_KINDS as readonly string[]).includes(value)) {
    throw new RefusedError(`--kind "${value}" is not a request kind`, `Kinds: ${REQUEST_KINDS.join(', ')}`);
  }
  return value as RequestKind;
}

/**
 * Parses a request reference as the database will accept it.
 *
 * @example
 * parseReference('DSAR-2026-001') // 'DSAR-2026-001'
 */
export function parseReference(value: string): string {
  const v = value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/.test(v)) {
    throw new RefusedError(
      `request reference "${value}" is not valid`,
      'Use up to 64 letters, digits, dots, dashes, slashes or underscores, e.g. DSAR-2026-001',
    );
  }
  return v;
}

const columns = [
  'dsar_requests.id',
  'dsar_requests.reference',
  'dsar_requests.kind',
  'dsar_requests.subject_type',
  'dsar_requests.subject_id',
  'dsar_requests.site_id',
  'dsar_requests.received_on',
  'dsar_requests.due_on',
  'dsar_requests.extended_due_on',
  'dsar_requests.extension_reason',
  'dsar_requests.status',
  'dsar_requests.last_exported_at',
  'dsar_requests.last_bundle_sha256',
  'dsar_requests.closed_at',
  'dsar_requests.closure_note',
  'organisations.slug',
] as const;

type Row = {
  id: string;
  reference: string;
  kind: string;
  subject_type: string;
  subject_id: string;
  site_id: string | null;
  received_on: string;
  due_on: string;
  extended_due_on: string | null;
  extension_reason: string | null;
  status: string;
  last_exported_at: Date | null;
  last_bundle_sha256: string | null;
  closed_at: Date | null;
  closure_note: string | null;
  slug: string;
};

function toRequest(r: Row): DsarRequest {
  return {
    id: r.id,
    org: r.slug,
    reference: r.reference,
    kind: r.kind as RequestKind,
    subjectType: r.subject_type as SubjectType,
    subjectId: r.subject_id,
    siteId: r.site_id,
    receivedOn: r.received_on,
    dueOn: r.due_on,
    extendedDueOn: r.extended_due_on,
    extensionReason: r.extension_reason,
    effectiveDueOn: r.extended_due_on ?? r.due_on,
    status: r.status as DsarRequest['status'],
    lastExportedAt: r.last_exported_at?.toISOString() ?? null,
    lastBundleSha256: r.last_bundle_sha256,
    closedAt: r.closed_at?.toISOString() ?? null,
    closureNote: r.closure_note,
  };
}

function selectRequests(trx: Transaction<Database>) {
  return trx
    .selectFrom('dsar_requests')
    .innerJoin('organisations', 'organisations.org_id', 'dsar_requests.org_id')
    .select(columns);
}

/**
 * The request with this reference in the organisation; RefusedError if none.
 *
 * @example
 * const request = await findDsarRequest(trx, org, 'DSAR-2026-001')
 */
export async function findDsarRequest(
  trx: Transaction<Database>,
  org: OrganisationRef,
  reference: string,
): Promise<DsarRequest> {
  const row = await selectRequests(trx)
    .where('dsar_requests.org_id', '=', org.id)
    .where('dsar_requests.reference', '=', reference)
    .executeTakeFirst();
  if (!row) {
    throw new RefusedError(
      `no request "${reference}" in ${org.slug}`,
      'Record it first: trustctl dsar request open --org ORG --subject ID --request REF --received YYYY-MM-DD',
    );
  }
  return toRequest(row as Row);
}

/**
 * Records a new request; its due date is one calendar month after receipt.
 *
 * @example
 * await openDsarRequest(trx, { org, reference: 'DSAR-7', subject, receivedOn: '2026-11-20', today: '2026-11-25', sessionId })
 */
export async function openDsarRequest(
  trx: Transaction<Database>,
  input: {
    readonly org: OrganisationRef;
    readonly reference: string;
    readonly kind?: RequestKind;
    readonly subject: DsarSubject;
    readonly receivedOn: IsoDate;
    readonly today: IsoDate;
    readonly sessionId: string;
  },
): Promise<DsarRequest> {
  parseIsoDate(input.receivedOn, '--received', { latest: input.today });
  const existing = await selectRequests(trx)
    .where('dsar_requests.org_id', '=', input.org.id)
    .where('dsar_requests.reference', '=', input.reference)
    .executeTakeFirst();
  if (existing) {
    throw new RefusedError(
      `request "${input.reference}" already exists in ${input.org.slug} (received ${existing.received_on})`,
      'Use another reference, or see: trustctl dsar request list',
    );
  }
  const inserted = await trx
    .insertInto('dsar_requests')
    .values({
      org_id: input.org.id,
      site_id: input.subject.siteId,
      reference: input.reference,
      kind: input.kind ?? 'access',
      subject_type: input.subject.type,
      subject_id: input.subject.id,
      received_on: input.receivedOn,
      due_on: legalDueDate(input.receivedOn),
      created_by_session: input.sessionId,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const row = await selectRequests(trx)
    .where('dsar_requests.org_id', '=', input.org.id)
    .where('dsar_requests.id', '=', inserted.id)
    .executeTakeFirstOrThrow();
  return toRequest(row as Row);
}

async function updateRequest(
  trx: Transaction<Database>,
  org: OrganisationRef,
  request: DsarRequest,
  values: UpdateObject<Database, 'dsar_requests'>,
): Promise<DsarRequest> {
  await trx.updateTable('dsar_requests').set(values).where('org_id', '=', org.id).where('id', '=', request.id).execute();
  return findDsarRequest(trx, org, request.reference);
}

/**
 * Extends an open request to `furtherMonths` (1 or 2) beyond its first month.
 *
 * @example
 * await extendDsarRequest(trx, { org, reference: 'DSAR-7', furtherMonths: 2, reason: 'complex: 3 sites' })
 */
export async function extendDsarRequest(
  trx: Transaction<Database>,
  input: {
    readonly org: OrganisationRef;
    readonly reference: string;
    readonly furtherMonths: number;
    readonly reason: string;
  },
): Promise<DsarRequest> {
  const request = await findDsarRequest(trx, input.org, input.reference);
  if (request.status === 'closed') {
    throw new RefusedError(`request "${input.reference}" is closed; it cannot be extended`);
  }
  if (input.reason.trim() === '') {
    throw new RefusedError('an extension needs a reason', 'Pass --extension-reason "why more time is needed"');
  }
  const extended = extendedDueDate(request.receivedOn, input.furtherMonths);
  if (request.extendedDueOn && extended <= request.extendedDueOn) {
    throw new RefusedError(
      `request "${input.reference}" is already due on ${request.extendedDueOn}; ${input.furtherMonths} further month(s) would not move it later`,
      'The longest extension the law allows is two further months (--months 2)',
    );
  }
  return updateRequest(trx, input.org, request, { extended_due_on: extended, extension_reason: input.reason.trim() });
}

/**
 * Closes a request with a note (e.g. "bundle sent by secure email").
 *
 * @example
 * await closeDsarRequest(trx, { org, reference: 'DSAR-7', note: 'sent 2026-12-01' })
 */
export async function closeDsarRequest(
  trx: Transaction<Database>,
  input: { readonly org: OrganisationRef; readonly reference: string; readonly note: string | null },
): Promise<DsarRequest> {
  const request = await findDsarRequest(trx, input.org, input.reference);
  if (request.status === 'closed') {
    throw new RefusedError(`request "${input.reference}" was already closed at ${request.closedAt}`);
  }
  return updateRequest(trx, input.org, request, {
    status: 'closed',
    closed_at: sql<Date>`statement_timestamp()`,
    closure_note: input.note,
  });
}

/**
 * Requests in the session's organisations, soonest due first, with days left.
 * Closed requests only with `includeClosed`.
 *
 * @example
 * const due = await listDsarRequests(trx, { today: '2026-11-25', includeClosed: false })
 */
export async function listDsarRequests(
  trx: Transaction<Database>,
  input: { readonly today: IsoDate; readonly includeClosed: boolean; readonly orgIds?: readonly string[] },
): Promise<DueRequest[]> {
  let query = selectRequests(trx);
  if (!input.includeClosed) query = query.where('dsar_requests.status', '<>', 'closed');
  if (input.orgIds) query = query.where('dsar_requests.org_id', 'in', [...input.orgIds]);
  const rows = await query
    .orderBy(sql`coalesce(dsar_requests.extended_due_on, dsar_requests.due_on)`)
    .orderBy('organisations.slug')
    .orderBy('dsar_requests.reference')
    .execute();
  return rows.map((r) => {
    const request = toRequest(r as Row);
    const daysLeft = daysUntil(input.today, request.effectiveDueOn);
    return { ...request, daysLeft, overdue: request.status !== 'closed' && daysLeft < 0 };
  });
}
