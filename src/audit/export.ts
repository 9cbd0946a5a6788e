// Streaming export of an organisation's audit trail: a cursor into
// csv-stringify or JSON Lines (optionally gzip), in constant memory, checking
// each sealed event against its seal as it goes, with a manifest beside the
// file (filters, rows, chain range, SHA-256, verification). The CSV holds
// PostgreSQL's own text forms, so `\copy … FROM … CSV HEADER` into a table of
// the same shape gives back the same rows. A CSV for people to open in a
// spreadsheet (forPeople) has formula-like cells escaped instead, and is no
// longer exact; the manifest's file.cells says which a file is.
import { basename } from 'node:path';
import { createGzip } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { parseTimeOption } from '../access/duration.js';
import { RefusedError } from '../errors.js';
import { onInterrupt } from '../lifecycle.js';
import type { OperatorSession } from '../db/operator-session.js';
import { HashedFileWriter, type WrittenFile } from '../io/hashed-file.js';
import { checkAnchors } from './anchors.js';
import { canonicalEvent, chainHash, type CanonicalEventFields } from './canonical.js';

export const EXPORT_FORMAT = 'trustctl-audit-export/1';

export interface AuditExportFilters {
  readonly site?: string; // slug
  readonly from?: string; // ISO time, inclusive
  readonly to?: string; // ISO time, exclusive
  readonly actor?: string;
  /** An action, or a prefix ending in '*' (e.g. 'dsar.*'). */
  readonly action?: string;
  readonly subject?: string; // uuid
}

export interface AuditExportInput {
  readonly org: string; // slug
  readonly filters: AuditExportFilters;
  readonly format: 'csv' | 'jsonl';
  readonly gzip: boolean;
  readonly out: string;
  /**
   * CSV only: put a ' before every cell that starts with = + - @ tab or CR,
   * so a spreadsheet shows it as text; the file is then not exact.
   */
  readonly forPeople?: boolean;
  readonly onProgress?: (rows: number) => void;
}

export interface AuditExportManifest {
  readonly format: string;
  readonly organisation: { readonly id: string; readonly slug: string };
  readonly filters: AuditExportFilters;
  readonly file: {
    readonly name: string;
    readonly format: 'csv' | 'jsonl';
    readonly gzip: boolean;
    readonly bytes: number;
    readonly sha256: string;
    /** 'exact': every value as stored (re-importable, verifiable); 'formulas_escaped': a CSV for people to open in a spreadsheet. */
    readonly cells: ExportCells;
  };
  readonly rows: number;
  readonly sealed_rows: number;
  readonly unsealed_rows: number;
  readonly first_chain_seq: string | null;
  readonly last_chain_seq: string | null;
  readonly verification: {
    readonly ok: boolean;
    /** What the check covers: the whole chain (unfiltered) or only the exported rows. */
    readonly scope: string;
    /** Sealed rows whose hash was recomputed from their prev_hash and content. */
    readonly checked: number;
    /** Links checked between consecutive chain entries both in the export. */
    readonly links_checked: number;
    readonly problems: readonly string[];
    readonly problems_total: number;
  };
  readonly operator_session: string;
  readonly exported_at: string;
}

export interface AuditExportResult {
  readonly path: string;
  readonly manifestPath: string;
  readonly manifest: AuditExportManifest;
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The exported columns, in order: audit_events' own, then the seal. */
export const EXPORT_COLUMNS = [
  'org_id', 'id', 'site_id', 'occurred_at', 'recorded_at', 'txid', 'actor_type', 'actor_id', 'operator_session_id',
  'action', 'target_type', 'target_id', 'subject_ids', 'outcome', 'reason', 'ticket', 'source_ip', 'request_id',
  'context', 'chain_seq', 'prev_hash', 'hash',
] as const;

/** Whether an export's values are exact or have spreadsheet formulas escaped (a CSV for people). */
export type ExportCells = 'exact' | 'formulas_escaped';

type TextRow = Record<(typeof EXPORT_COLUMNS)[number], string | null>;

/**
 * '2026-11-25 21:05:16.7871+00' (PostgreSQL text, UTC) -> '2026-11-25T21:05:16.787100Z',
 * the canonical form's timestamp (' BC' kept for years before 1 AD).
 */
export function isoMicros(pgText: string): string {
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00( BC)?$/.exec(pgText);
  if (!m) throw new Error(`unexpected timestamp text ${pgText}`);
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z${m[4] ?? ''}`;
}

/** '{a,b}' (a uuid[] as PostgreSQL prints it) -> ['a', 'b'] */
function uuidArray(pgText: string): string[] {
  const inner = pgText.slice(1, -1);
  return inner === '' ? [] : inner.split(',');
}

function canonicalFields(r: TextRow): CanonicalEventFields {
  return {
    org_id: r.org_id!,
    id: r.id!,
    txid: r.txid!,
    site_id: r.site_id,
    occurred_at: isoMicros(r.occurred_at!),
    recorded_at: isoMicros(r.recorded_at!),
    actor_type: r.actor_type!,
    actor_id: r.actor_id,
    operator_session_id: r.operator_session_id,
    action: r.action!,
    target_type: r.target_type,
    target_id: r.target_id,
    subject_ids: uuidArray(r.subject_ids!),
    outcome: r.outcome!,
    reason: r.reason,
    ticket: r.ticket,
    source_ip: r.source_ip,
    request_id: r.request_id,
    context: r.context!,
  };
}

function jsonLine(r: TextRow, f: CanonicalEventFields): string {
  return `${JSON.stringify({
    org_id: r.org_id,
    id: r.id,
    site_id: r.site_id,
    occurred_at: f.occurred_at,
    recorded_at: f.recorded_at,
    txid: r.txid,
    actor_type: r.actor_type,
    actor_id: r.actor_id,
    operator_session_id: r.operator_session_id,
    action: r.action,
    target_type: r.target_type,
    target_id: r.target_id,
    subject_ids: f.subject_ids,
    outcome: r.outcome,
    reason: r.reason,
    ticket: r.ticket,
    source_ip: r.source_ip,
    request_id: r.request_id,
    context: JSON.parse(f.context),
    chain_seq: r.chain_seq,
    prev_hash: r.prev_hash === null ? null : r.prev_hash.slice(2),
    hash: r.hash === null ? null : r.hash.slice(2),
  })}\n`;
}

const MAX_PROBLEMS = 50;
const BATCH = 2000;

/**
 * Parses --from / --to: an ISO 8601 time or a calendar date (midnight UTC),
 * in years 1 to 9999.
 *
 * @example
 * parseExportTime('2026-09-01', '--from') // '2026-09-01T00:00:00.000Z'
 */
export function parseExportTime(value: string, what: string): string {
  const iso = parseTimeOption(value, what, { dates: 'utc' }).toISOString();
  if (iso < '0001' || iso.startsWith('+')) {
    throw new RefusedError(`${what} "${value}" is not a date or time in years 1 to 9999`, 'Use YYYY-MM-DD or an ISO 8601 time, e.g. 2026-09-01T08:00:00Z');
  }
  return iso;
}

/**
 * Checks --action: an action as recorded (`dsar.export`,
 * `attendance_records.update`), or a prefix of one ending in `*`.
 *
 * @example
 * parseActionFilter('dsar.*') // 'dsar.*'
 */
export function parseActionFilter(value: string): string {
  if (!/^(?:[a-z][a-z0-9_.]*)?\*?$/.test(value)) {
    throw new RefusedError(`--action "${value}" is not an action`, 'Use an action as recorded, e.g. dsar.export, or a prefix ending in *, e.g. "dsar.*"');
  }
  return value;
}

/**
 * Exports an organisation's audit trail through an open operator session.
 *
 * @example
 * await exportAuditTrail(session, { org: 'oak-trust', filters: {}, format: 'csv', gzip: false, out: 'trail.csv' }, { logger })
 */
export async function exportAuditTrail(
  session: OperatorSession,
  input: AuditExportInput,
  { logger }: { logger: Logger },
): Promise<AuditExportResult> {
  if (input.forPeople && input.format !== 'csv') {
    throw new RefusedError('--for-people applies to CSV only', 'JSON Lines are for programs and always exact: leave out --for-people');
  }
  const cells: ExportCells = input.forPeople ? 'formulas_escaped' : 'exact';
  const manifestPath = `${input.out}.manifest.json`;
  // Written at a random temp name beside --out (src/io/private-file.ts) and
  // moved into place only once the export's audit event is committed.
  const out = new HashedFileWriter(input.out, { commit: 'manual' });
  const unregister = onInterrupt(() => out.destroy());
  try {
    const manifest = await session.transaction(
      async (trxTyped) => {
        const trx = trxTyped as unknown as AnyTrx;
        await sql`set local timezone = 'UTC'`.execute(trx);
        await sql`set local datestyle = 'ISO, YMD'`.execute(trx);
        await sql`set local intervalstyle = 'postgres'`.execute(trx);
        await sql`set local extra_float_digits = 1`.execute(trx);
        const org = (await sql<{ org_id: string }>`select org_id from public.organisations where slug = ${input.org}`.execute(trx)).rows[0];
        if (!org) throw new RefusedError(`organisation "${input.org}" is not in this operator session’s scope`);
        const conditions = [sql`e.org_id = ${org.org_id}::uuid`];
        const f = input.filters;
        if (f.site) {
          const site = (await sql<{ site_id: string }>`select site_id from public.sites where org_id = ${org.org_id}::uuid and slug = ${f.site}`.execute(trx)).rows[0];
          if (!site) throw new RefusedError(`no site "${f.site}" in ${input.org}`, `See: trustctl org show ${input.org}`);
          conditions.push(sql`e.site_id = ${site.site_id}::uuid`);
        }
        if (f.from) conditions.push(sql`e.occurred_at >= ${f.from}::timestamptz`);
        if (f.to) conditions.push(sql`e.occurred_at < ${f.to}::timestamptz`);
        if (f.actor) conditions.push(sql`e.actor_id = ${f.actor}`);
        if (f.action) {
          conditions.push(
            f.action.endsWith('*')
              ? sql`starts_with(e.action, ${f.action.slice(0, -1)})`
              : sql`e.action = ${f.action}`,
          );
        }
        if (f.subject) conditions.push(sql`${f.subject}::uuid = any (e.subject_ids)`);
        const where = sql.join(conditions, sql` and `);
        // Unfiltered, the export holds the whole chain: it must start at the
        // newest proven anchor (or genesis; src/audit/anchors.ts, as verify)
        // and have no gaps. Filtered, only each row's own seal can be
        // checked, and the manifest says so.
        const complete = Object.keys(f).length === 0;
        const start = complete ? await checkAnchors(trx, org.org_id) : null;
        const cols = sql.join(
          EXPORT_COLUMNS.map((c) =>
            c === 'chain_seq' || c === 'prev_hash' || c === 'hash' ? sql`c.${sql.ref(c)}::text as ${sql.ref(c)}` : sql`e.${sql.ref(c)}::text as ${sql.ref(c)}`,
          ),
          sql`, `,
        );
        // Sealed events in chain order, then the not yet sealed in the order they will be.
        const query = sql<TextRow>`
          select ${cols} from public.audit_events e
          left join public.audit_chain c on c.org_id = e.org_id and c.event_id = e.id
          where ${where}
          order by c.chain_seq nulls last, e.txid, e.id`.compile(trx);

        const gzip = input.gzip ? createGzip({ level: 6 }) : null;
        const piping = gzip ? out.pipeFrom(gzip) : null;
        const emit = async (text: string): Promise<void> => {
          if (!gzip) return out.write(text);
          if (!gzip.write(text)) await new Promise<void>((resolve) => gzip.once('drain', resolve));
        };

        if (input.format === 'csv') await emit(stringify([[...EXPORT_COLUMNS]]));
        let rows = 0;
        let sealed = 0;
        let checked = 0;
        let links = 0;
        let firstSeq: string | null = null;
        let lastSeq: string | null = null;
        let prev: { seq: bigint; hash: string } | null = start ? { seq: BigInt(start.seq), hash: `\\x${start.hash.toString('hex')}` } : null;
        const problems: string[] = [];
        let problemsTotal = 0;
        const problem = (line: string): void => {
          problemsTotal += 1;
          if (problems.length < MAX_PROBLEMS) problems.push(line);
        };
        for (const p of start?.problems ?? []) problem(`${p.kind} at ${input.org}${p.seq === null ? '' : ` seq ${p.seq}`}: ${p.detail}`);
        for await (const chunk of trx.getExecutor().stream(query, BATCH)) {
          const batch = chunk.rows as TextRow[];
          const lines: string[] = [];
          for (const r of batch) {
            const fields = canonicalFields(r);
            if (r.chain_seq !== null) {
              sealed += 1;
              firstSeq ??= r.chain_seq;
              lastSeq = r.chain_seq;
              const seq = BigInt(r.chain_seq);
              const computed = chainHash(Buffer.from(r.prev_hash!.slice(2), 'hex'), canonicalEvent(fields, seq)).toString('hex');
              checked += 1;
              if (`\\x${computed}` !== r.hash) problem(`changed row at ${input.org} seq ${r.chain_seq}: event ${r.id} does not match its seal`);
              // An entry left below the anchor is reported once, by checkAnchors; the chain starts after it.
              if (!start || seq > BigInt(start.seq)) {
                if (complete && prev && prev.seq + 1n !== seq) {
                  problem(`removed row at ${input.org} seq ${prev.seq + 1n}: chain entries ${prev.seq + 1n}..${seq - 1n} are missing`);
                } else if (prev && prev.seq + 1n === seq) {
                  links += 1;
                  if (prev.hash !== r.prev_hash) problem(`broken link at ${input.org} seq ${r.chain_seq}`);
                }
                prev = { seq, hash: r.hash! };
              }
            }
            if (input.format === 'jsonl') lines.push(jsonLine(r, fields));
          }
          if (input.format === 'csv') {
            // An empty string is quoted ("") and NULL left empty, as PostgreSQL's CSV reads them.
            await emit(
              stringify(batch.map((r) => EXPORT_COLUMNS.map((c) => r[c])), { quoted_match: /^$/, escape_formulas: cells === 'formulas_escaped' }),
            );
          } else {
            await emit(lines.join(''));
          }
          rows += batch.length;
          input.onProgress?.(rows);
        }
        if (complete) {
          // Gaps show only between exported entries: the newest ones could be
          // gone unnoticed (their events moved to another organisation or
          // given another id, or the entries themselves moved). The chain must
          // reach its own newest entry and every checkpoint's head.
          const end = (await sql<{ seq: string | null }>`
            select greatest((select max(c.chain_seq) from public.audit_chain c where c.org_id = ${org.org_id}::uuid),
                            (select max(k.chain_seq) from public.audit_checkpoints k where k.org_id = ${org.org_id}::uuid))::text as seq`
            .execute(trx)).rows[0]!.seq;
          const reached = prev?.seq ?? 0n;
          if (end !== null && BigInt(end) > reached) {
            problem(`removed row at ${input.org} seq ${reached + 1n}: chain entries ${reached + 1n}..${end} are missing`);
          }
        }
        let written: WrittenFile;
        if (gzip) {
          gzip.end();
          await piping;
          written = await out.close();
        } else {
          written = await out.close();
        }
        const manifest: AuditExportManifest = {
          format: EXPORT_FORMAT,
          organisation: { id: org.org_id, slug: input.org },
          filters: f,
          file: { name: basename(input.out), format: input.format, gzip: input.gzip, bytes: written.bytes, sha256: written.sha256, cells },
          rows,
          sealed_rows: sealed,
          unsealed_rows: rows - sealed,
          first_chain_seq: firstSeq,
          last_chain_seq: lastSeq,
          verification: {
            ok: problemsTotal === 0,
            scope: complete
              ? 'whole chain from its anchor: every seal, link and gap'
              : 'filtered: each exported row against its own seal, and links between consecutive exported rows; not completeness',
            checked,
            links_checked: links,
            problems,
            problems_total: problemsTotal,
          },
          operator_session: session.id,
          exported_at: new Date().toISOString(),
        };
        // Every export is itself an audit event.
        await sql`select app.audit_record(${org.org_id}::uuid, null, 'audit.export', 'audit_events', null, '{}'::uuid[],
          ${problemsTotal === 0 ? 'success' : 'failure'}, ${JSON.stringify({
            filters: f,
            rows,
            format: input.format,
            gzip: input.gzip,
            cells,
            sha256: written.sha256,
            first_chain_seq: firstSeq,
            last_chain_seq: lastSeq,
            problems: problemsTotal,
          })}::jsonb)`.execute(trx);
        return manifest;
      },
      { isolation: 'repeatable read' },
    );
    await out.commit();
    const manifestFile = new HashedFileWriter(manifestPath);
    await manifestFile.write(`${JSON.stringify(manifest, null, 2)}\n`);
    await manifestFile.close();
    logger.info({ org: input.org, rows: manifest.rows, sha256: manifest.file.sha256 }, 'audit trail exported');
    return { path: input.out, manifestPath, manifest };
  } catch (error) {
    await out.destroy();
    throw error;
  } finally {
    unregister();
  }
}
