// What the erasures ledger says about a subject, for their DSAR bundle:
// when they were erased, under which request, and what was kept and why.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';

/** Why rows about the subject were kept. */
export type KeptReason = 'legal_hold' | 'statutory' | 'identifies_kept_records' | 'made_by_subject' | 'record_keeping';

export const KEPT_REASONS: Record<KeptReason, string> = {
  legal_hold: 'under an active legal hold',
  statutory: 'a statutory retention rule applies',
  identifies_kept_records: 'identifies the person in records that are kept',
  made_by_subject: 'records the person made about other people; the person is named by id only',
  record_keeping: 'a record the platform must keep',
};

interface CertificateTables {
  readonly tables?: ReadonlyArray<{
    readonly table: string;
    readonly anonymised: number;
    readonly columns: Readonly<Record<string, string>>;
    readonly kept: ReadonlyArray<{ reason: KeptReason; rows: number; why: string }>;
  }>;
}

const STRATEGY_WORDS: Record<string, string> = {
  null: 'removed',
  redact: 'replaced with [redacted]',
  pseudonym: 'replaced with a pseudonym',
  generalise_date: 'reduced to the year',
};

/** Erasures recorded for a subject, for the DSAR bundle: when, under which request, and what was kept and why. */
export interface ErasureRecord {
  readonly erasure_id: string;
  readonly request: string | null;
  readonly erased_at: string;
  /** Rows kept (with a reason) or anonymised, per table. */
  readonly kept: ReadonlyArray<{ readonly table: string; readonly rows: number; readonly reason: KeptReason | 'anonymised'; readonly why: string }>;
}

/** How a reason reads to the person. */
export function keptReasonText(reason: KeptReason | 'anonymised'): string {
  return reason === 'anonymised' ? 'personal details removed' : KEPT_REASONS[reason];
}

export async function erasuresOf(trx: Transaction<Database>, orgId: string, subjectId: string): Promise<ErasureRecord[]> {
  const r = await sql<{ id: string; request_reference: string | null; erased_at: Date; account: { certificate_json?: string } }>`
    select id, request_reference, erased_at, account from public.erasures
    where org_id = ${orgId}::uuid and subject_id = ${subjectId}::uuid order by erased_at, id`.execute(trx);
  return r.rows.map((row) => ({
    erasure_id: row.id,
    request: row.request_reference,
    erased_at: row.erased_at.toISOString(),
    kept: ((row.account.certificate_json ? (JSON.parse(row.account.certificate_json) as CertificateTables) : null)?.tables ?? []).flatMap((t) => [
      ...(t.anonymised > 0
        ? [{
            table: t.table,
            rows: t.anonymised,
            reason: 'anonymised' as const,
            why: `${Object.entries(t.columns).map(([c, how]) => `${c.replace(/_/g, ' ')} ${STRATEGY_WORDS[how] ?? how}`).join('; ')}.`,
          }]
        : []),
      ...t.kept.map((k) => ({ table: t.table, rows: k.rows, reason: k.reason, why: k.why })),
    ]),
  }));
}
