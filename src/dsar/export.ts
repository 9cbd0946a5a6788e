// A subject access export: everything the data map links to one person,
// read in one REPEATABLE READ snapshot, streamed into data files, a report
// and a manifest, zipped deterministically, recorded in the audit trail with
// the bundle's SHA-256. The zip is written beside its final name and renamed
// only after the audit event has committed, so a bundle never exists without
// its record.
import { randomBytes, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { RefusedError } from '../errors.js';
import { onInterrupt } from '../lifecycle.js';
import type { OperatorSession } from '../db/operator-session.js';
import type { Database } from '../db/schema.js';
import { HashedFileWriter, MemoryBudget, type StoredFile } from '../io/hashed-file.js';
import { makePrivateDirectory, publishFile } from '../io/private-file.js';
import type { SubjectReference } from '../datamap/index.js';
import { parseReleases, planSubjectRead, type ReviewCategory, type TableReadPlan } from './plan.js';
import {
  article15Section,
  contentsSection,
  erasureSection,
  readmeText,
  reportHead,
  reportTail,
  sectionEnd,
  sectionRow,
  sectionShown,
  sectionStart,
  summarySection,
  withheldSection,
  type ErasureLine,
  type ReportHeader,
  type RetentionLine,
  type SectionInput,
} from './report.js';
import { tallyFor, type SectionTally } from './report-terms.js';
import { erasuresOf, keptReasonText } from './erasure-record.js';
import { findDsarRequest, type DsarRequest } from './requests.js';
import { describeSubject, findOrganisation, findSubjects, type DsarSubject, type OrganisationRef } from './subject.js';
import { writeZip } from './zip.js';
import { bundleExtension, mediaKeyProblem } from './media.js';
import { BUNDLE_FORMAT, DPO_RECORD_FORMAT, MANIFEST_SIGNATURE, signManifest } from './format.js';

export interface ExportInput {
  readonly orgSlug: string;
  readonly subject: { readonly id: string } | { readonly email: string };
  readonly reference: string;
  readonly outDir: string;
  /** Categories released after review; needs a reviewer. */
  readonly include: readonly ReviewCategory[];
  readonly reviewer: string | null;
  /** Where media files live (storage_key is relative to it). */
  readonly mediaDir: string;
  /** Encrypt with a generated passphrase (returned once, never logged). */
  readonly encrypt: boolean;
  /** Replace an existing bundle file. */
  readonly force: boolean;
  /** Picks one of several matching subjects (a prompt on a TTY); refuses without it. */
  readonly pickSubject?: (candidates: readonly DsarSubject[]) => Promise<DsarSubject>;
  readonly toolVersion: string;
  /** Bytes of bundle files kept in memory before they spill to disk (default 32 MiB). */
  readonly memoryBudget?: number;
  /** Signs manifest.json (Ed25519) into manifest.sig, so the bundle's origin can be proved offline. */
  readonly signingKey?: KeyObject;
}

export interface BundleFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly rows?: number;
}

export interface WithheldEntry {
  readonly table: string;
  readonly category: ReviewCategory;
  readonly rows: number;
  readonly reason: string;
}

export interface ReleasedEntry {
  readonly table: string;
  readonly category: ReviewCategory;
  readonly rows: number;
  readonly reviewer: string;
}

export interface UnavailableMedia {
  readonly media_id: string;
  readonly storage_key: string;
  readonly problem: string;
}

/** A media file carried as .bin because its content type could be active (HTML, SVG, scripts…). */
export interface NeutralisedMedia {
  readonly media_id: string;
  readonly path: string;
  readonly content_type: string;
  readonly note: string;
}

export interface Manifest {
  readonly format: string;
  readonly request: {
    readonly reference: string;
    readonly received_on: string;
    readonly due_on: string;
    readonly extended_due_on: string | null;
  };
  readonly organisation: { readonly id: string; readonly slug: string; readonly name: string };
  readonly subject: { readonly type: string; readonly id: string; readonly site_id: string | null };
  readonly as_of: string;
  readonly as_of_basis: string;
  readonly tool: { readonly name: string; readonly version: string };
  readonly schema_version: string;
  readonly files: readonly BundleFile[];
  readonly released: readonly ReleasedEntry[];
  readonly excluded: ReadonlyArray<{ readonly table: string; readonly reason: string }>;
  readonly media_unavailable: readonly UnavailableMedia[];
  readonly media_neutralised: readonly NeutralisedMedia[];
  /** Earlier erasures of the person, and what of this bundle they kept, with reasons. */
  readonly erasures: readonly ErasureLine[];
}

export interface ExportResult {
  readonly path: string;
  /** The DPO's record beside the bundle: what was withheld, with row ids. */
  readonly dpoRecordPath: string;
  readonly dpoRecordSha256: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly manifestSha256: string;
  readonly encrypted: boolean;
  /** Shown once to the person exporting; never logged or stored. */
  readonly passphrase: string | null;
  readonly asOf: string;
  readonly snapshotAt: string;
  readonly organisation: OrganisationRef;
  readonly subject: DsarSubject;
  readonly request: DsarRequest;
  readonly rows: Readonly<Record<string, number>>;
  readonly files: number;
  readonly withheld: readonly WithheldEntry[];
  readonly released: readonly ReleasedEntry[];
  readonly mediaUnavailable: readonly UnavailableMedia[];
  readonly auditEventId: string;
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function bytesOf(contents: Buffer | NodeJS.ReadableStream): Promise<Buffer> {
  if (Buffer.isBuffer(contents)) return contents;
  const chunks: Buffer[] = [];
  for await (const chunk of contents) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The bundle's file name from the request reference. References may hold
 * '/', which becomes '~' (a character references cannot contain), so two
 * references never share a file name.
 */
export function bundleFileName(reference: string, encrypted: boolean): string {
  return `${reference.replace(/\//g, '~')}${encrypted ? '.encrypted' : ''}.zip`;
}

/** The DPO's record of an export, written beside the bundle (never inside it). */
export function dpoRecordFileName(bundleName: string): string {
  return bundleName.replace(/\.zip$/, '.dpo-record.json');
}

// Work directories of exports killed before they could clean up.
const STALE_WORK_DIR_MS = 24 * 60 * 60 * 1000;

async function removeStaleWorkDirs(outDir: string, logger: Logger): Promise<void> {
  for (const name of await readdir(outDir)) {
    if (!name.startsWith('.trustctl-dsar-')) continue;
    const path = join(outDir, name);
    const info = await stat(path).catch(() => null);
    if (info?.isDirectory() && Date.now() - info.mtimeMs > STALE_WORK_DIR_MS) {
      logger.info({ path }, 'removing the work directory of an interrupted export');
      await rm(path, { recursive: true, force: true });
    }
  }
}

/** Moves a finished file into place; refuses to replace an existing one (or a symlink) unless forced. */
async function publish(from: string, to: string, force: boolean): Promise<void> {
  await publishFile(from, to, { replace: force }).catch((error: unknown) => {
    if (error instanceof RefusedError) throw new RefusedError(`${to} already exists`, 'Pass --force to replace it, or --out another directory');
    throw error;
  });
}

/** A passphrase for an encrypted bundle: about 119 random bits, in groups people can read out. */
export function generatePassphrase(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(24);
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
  return chars.match(/.{6}/g)!.join('-');
}

/** Why an export was refused, as recorded in the audit trail: a code, never names or emails. */
export type RefusalCode =
  | 'unknown_request'
  | 'request_closed'
  | 'wrong_kind'
  | 'subject_not_found'
  | 'subject_ambiguous'
  | 'subject_mismatch';

async function recordRefusal(
  session: OperatorSession,
  org: OrganisationRef,
  detail: { readonly reference: string; readonly subjectIds: readonly string[]; readonly code: RefusalCode; readonly action: string },
): Promise<void> {
  await session.transaction(async (trx) => {
    await sql`select app.audit_record(${org.id}::uuid, null, ${detail.action}, 'dsar_request_reference', ${detail.reference},
      ${[...detail.subjectIds]}::uuid[], 'refused', ${JSON.stringify({ refused: detail.code })}::jsonb)`.execute(trx);
  });
}

// Chronological order where a table has a time column, then the id, so the
// same rows always come out in the same order.
function orderColumns(plan: TableReadPlan, columns: readonly string[]): string[] {
  if (plan.map.order) return [...plan.map.order, plan.map.idColumn];
  const clock = plan.map.retention?.clock;
  const order = clock && columns.includes(clock) ? [clock] : [];
  return [...order, plan.map.idColumn];
}

/** Each table's columns in table order (the order row_to_json uses). */
/** Columns of each table, by the name the plan uses (`notes`, or `archive.notes`). */
async function tableColumns(trx: AnyTrx, tables: readonly string[]): Promise<Map<string, string[]>> {
  const res = await sql<{ table: string; columns: string[] }>`
    select case when c.relnamespace = 'public'::regnamespace then c.relname::text else 'archive.' || c.relname end as table,
           array_agg(a.attname::text order by a.attnum) as columns
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where (c.relnamespace = 'public'::regnamespace and c.relname = any (${[...tables]}::text[]))
       or (c.relnamespace = 'archive'::regnamespace and 'archive.' || c.relname = any (${[...tables]}::text[]))
    group by 1`.execute(trx);
  return new Map(res.rows.map((r) => [r.table, r.columns]));
}

/**
 * The plan's tables, each followed by its archive table where a retention
 * sweep keeps one (`archive.notes`): archived rows about the subject are
 * still held, so the bundle has them too, under the same rules.
 */
async function withArchives(trx: AnyTrx, tables: readonly TableReadPlan[]): Promise<TableReadPlan[]> {
  const res = await sql<{ t: string }>`select c.relname as t from pg_catalog.pg_class c
    where c.relnamespace = 'archive'::regnamespace and c.relkind = 'r'`.execute(trx);
  const archived = new Set(res.rows.map((r) => r.t));
  return tables.flatMap((t) => (archived.has(t.map.table) ? [t, { ...t, map: { ...t.map, table: `archive.${t.map.table}` } }] : [t]));
}

const BATCH = 1000;

/**
 * CSV rows for people: the requester is told to open these in a
 * spreadsheet, so a cell that starts with = + - @ tab or CR (or their
 * full-width forms) is written after a ' and shows as text instead of
 * running as a formula. Numbers stay numbers (-3 is not a formula); the
 * JSON files keep every value exact.
 */
function csvLines(records: ReadonlyArray<readonly unknown[]>): string {
  return stringify(
    records.map((values) =>
      values.map((v) =>
        v === null || v === undefined ? '' : typeof v === 'number' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v),
      ),
    ),
    { escape_formulas: true },
  );
}

/**
 * SQL conditions over a table's rows (alias t) for one subject: OWN (the
 * row is or is about them), BY (made by them, about others, and not their
 * own), HELD (under review: the whole table, or rows matching a column).
 */
function conditions(plan: TableReadPlan, orgId: string, subjectId: string) {
  const match = (r: SubjectReference) =>
    r.orgColumn
      ? sql`(${sql.ref(`t.${r.column}`)} = ${subjectId}::uuid and ${sql.ref(`t.${r.orgColumn}`)} = ${orgId}::uuid)`
      : sql`${sql.ref(`t.${r.column}`)} = ${subjectId}::uuid`;
  const own = plan.own.length > 0 ? sql`(${sql.join(plan.own.map(match), sql` or `)})` : sql`false`;
  const by =
    plan.by.length > 0 ? sql`((${sql.join(plan.by.map(match), sql` or `)}) and not coalesce(${own}, false))` : sql`false`;
  const where = plan.review?.where;
  const held = !plan.review
    ? sql`false`
    : where
      ? sql`coalesce(${sql.ref(`t.${where.column}`)} = ${where.equals}, false)`
      : sql`true`;
  return { own, by, held };
}

/** What a bundle holds of a table, given the categories released. */
function exportedCondition(plan: TableReadPlan, orgId: string, subjectId: string, released: ReadonlySet<string>) {
  const { own, by, held } = conditions(plan, orgId, subjectId);
  const byReleased = released.has(plan.byReview.category) ? by : sql`false`;
  const heldReleased = plan.review && released.has(plan.review.category) ? sql`true` : sql`not ${held}`;
  return sql`(${own} or ${byReleased}) and ${heldReleased}`;
}

/**
 * Which review category keeps a row out of the bundle, as SQL (null when
 * it is in the bundle): its own category if under review and not released,
 * else third-party records if made by the subject and not released.
 */
function withheldCategory(plan: TableReadPlan, orgId: string, subjectId: string, released: ReadonlySet<string>) {
  const { own, by, held } = conditions(plan, orgId, subjectId);
  const heldOut = plan.review && !released.has(plan.review.category) ? held : sql`false`;
  const byOut = released.has(plan.byReview.category) ? sql`false` : by;
  return sql<string | null>`case when not coalesce(${own} or ${by}, false) then null
    when ${heldOut} then ${plan.review?.category ?? null}::text
    when ${byOut} then ${plan.byReview.category}::text end`;
}

interface TableAccount {
  readonly withheld: ReadonlyArray<{ category: ReviewCategory; rows: number; reason: string }>;
  readonly released: ReadonlyArray<{ category: ReviewCategory; rows: number }>;
}

/** Counts, in one query, what is withheld from and what was released into a table's part of the bundle. */
async function accountTable(
  trx: AnyTrx,
  plan: TableReadPlan,
  orgId: string,
  subjectId: string,
  released: ReadonlySet<string>,
): Promise<TableAccount> {
  if (!plan.review && plan.by.length === 0) return { withheld: [], released: [] };
  const { own, by, held } = conditions(plan, orgId, subjectId);
  const res = await sql<{ own_held: string; by_held: string; by_free: string }>`
    select count(*) filter (where ${own} and ${held}) as own_held,
           count(*) filter (where ${by} and ${held}) as by_held,
           count(*) filter (where ${by} and not ${held}) as by_free
    from ${sql.table(plan.map.table)} t
    where t.org_id = ${orgId}::uuid and (${own} or ${by})`.execute(trx);
  const c = res.rows[0]!;
  const [ownHeld, byHeld, byFree] = [Number(c.own_held), Number(c.by_held), Number(c.by_free)];
  const withheld = new Map<ReviewCategory, { rows: number; reason: string }>();
  const out = new Map<ReviewCategory, number>();
  const add = (category: ReviewCategory, reason: string, rows: number, isReleased: boolean): void => {
    if (rows === 0) return;
    if (isReleased) out.set(category, (out.get(category) ?? 0) + rows);
    else withheld.set(category, { rows: (withheld.get(category)?.rows ?? 0) + rows, reason });
  };
  const tp = plan.byReview;
  const tpReleased = released.has(tp.category);
  add(tp.category, tp.reason, byFree, tpReleased);
  if (plan.review) {
    const r = plan.review;
    const rReleased = released.has(r.category);
    add(r.category, r.reason, ownHeld, rReleased);
    // Made by the subject AND under review: out unless both are released.
    if (!rReleased) add(r.category, r.reason, byHeld, false);
    else add(tp.category, tp.reason, byHeld, tpReleased);
  }
  return {
    withheld: [...withheld].map(([category, w]) => ({ category, ...w })),
    released: [...out].map(([category, rows]) => ({ category, rows })),
  };
}

const CLOCK_PHRASES: Record<string, string> = {
  child_25th_birthday: 'the child’s 25th birthday',
  child_left_on: 'the day the child left',
  session_date: 'the day of the session',
  occurred_at: 'the day it happened',
  checked_in_at: 'the day of the check-in',
  created_at: 'the day it was recorded',
  ends_at: 'the end of the shift',
  left_on: 'the day the child left',
};

function retentionLines(
  plans: readonly TableReadPlan[],
  policies: ReadonlyArray<{ category: string; site_id: string | null; keep_for: string; clock: string; action: string }>,
  siteId: string | null,
): RetentionLine[] {
  return plans.map((p) => {
    const category = p.map.retention?.category;
    const policy =
      policies.find((x) => x.category === category && x.site_id !== null && x.site_id === siteId) ??
      policies.find((x) => x.category === category && x.site_id === null);
    if (!category || !policy) {
      return { table: p.map.table, period: 'No fixed period is set; kept while it is needed for the purpose above. Ask our Data Protection Officer.' };
    }
    const from = CLOCK_PHRASES[policy.clock] ?? `the record’s ${policy.clock.replace(/_/g, ' ')}`;
    const then = { delete: 'deleted', anonymise: 'anonymised', archive: 'archived' }[policy.action] ?? policy.action;
    const keep = policy.keep_for === '00:00:00' ? 'Kept until' : `Kept for ${policy.keep_for.replace(/\bmons?\b/, 'months')} after`;
    return { table: p.map.table, period: `${keep} ${from}, then ${then}.` };
  });
}

/**
 * Writes the DPO's record: the head as JSON, then every withheld category of
 * every table with the ids of its rows, streamed from the same snapshot.
 */
async function writeDpoRecord(
  trx: AnyTrx,
  path: string,
  input: {
    readonly head: Record<string, unknown>;
    readonly withheld: readonly WithheldEntry[];
    readonly plans: readonly TableReadPlan[];
    readonly orgId: string;
    readonly subjectId: string;
    readonly released: ReadonlySet<string>;
  },
): Promise<StoredFile> {
  const out = new HashedFileWriter(path);
  const head = JSON.stringify(input.head, null, 2);
  await out.write(`${head.slice(0, -2)},\n  "withheld": [`);
  let first = true;
  for (const w of input.withheld) {
    const plan = input.plans.find((t) => t.map.table === w.table)!;
    await out.write(`${first ? '' : ','}\n    {"table": ${JSON.stringify(w.table)}, "category": ${JSON.stringify(w.category)}, `);
    await out.write(`"reason": ${JSON.stringify(w.reason)}, "rows": ${w.rows}, "ids": [`);
    first = false;
    const ids = trx
      .selectFrom(sql`${sql.table(w.table)}`.as('t'))
      .select(sql<string>`${sql.ref(`t.${plan.map.idColumn}`)}::text`.as('id'))
      .where(sql<boolean>`t.org_id = ${input.orgId}::uuid
        and ${withheldCategory(plan, input.orgId, input.subjectId, input.released)} = ${w.category}`)
      .orderBy(sql.ref(`t.${plan.map.idColumn}`))
      .stream(BATCH);
    let n = 0;
    for await (const { id } of ids as AsyncIterable<{ id: string }>) {
      await out.write(`${n === 0 ? '' : ', '}${JSON.stringify(id)}`);
      n += 1;
    }
    if (n !== w.rows) throw new Error(`${w.table}: counted ${w.rows} withheld rows but listed ${n}`);
    await out.write(']}');
  }
  await out.write(`${first ? '' : '\n  '}]\n}\n`);
  return out.close();
}

/**
 * Streams a table's part of the bundle into data/TABLE.json and .csv and
 * the report's fragment, in batches; returns the row count at once and the
 * files when they have closed.
 */
async function writeTableFiles(
  trx: AnyTrx,
  t: TableReadPlan,
  columns: readonly string[],
  to: {
    readonly orgId: string;
    readonly subjectId: string;
    readonly released: ReadonlySet<string>;
    readonly workDir: string;
    readonly budget: MemoryBudget;
  },
): Promise<{ rows: number; tally: SectionTally | null; closed: Promise<{ json: StoredFile; csv: StoredFile; html: StoredFile }> }> {
  const table = t.map.table;
  const { budget } = to;
  const json = new HashedFileWriter(join(to.workDir, 'files', 'data', `${table}.json`), { budget });
  const csv = new HashedFileWriter(join(to.workDir, 'files', 'data', `${table}.csv`), { budget });
  // The report's rows of this table; its section around them is written once the rows are counted.
  const html = new HashedFileWriter(join(to.workDir, 'fragments', `${table}.html`), { budget });
  const tally = tallyFor(table, columns, t.map);
  await csv.write(csvLines([columns]));
  await json.write('[');
  let n = 0;
  let query = trx
    .selectFrom(sql`${sql.table(table)}`.as('t'))
    .select(sql<Record<string, unknown>>`row_to_json(t)`.as('row'))
    .where(sql<boolean>`t.org_id = ${to.orgId}::uuid and ${exportedCondition(t, to.orgId, to.subjectId, to.released)}`);
  for (const c of orderColumns(t, columns)) query = query.orderBy(sql.ref(`t.${c}`));
  // Rows go out in batches of at most BATCH: bounded memory, and one write
  // per file per batch rather than per row.
  let batch: Array<Record<string, unknown>> = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await json.write(batch.map((row, i) => `${n + i === 0 ? '\n' : ',\n'}${JSON.stringify(row)}`).join(''));
    await csv.write(csvLines(batch.map((row) => columns.map((c) => row[c]))));
    await html.write(batch.map((row) => sectionRow(columns, row)).join(''));
    for (const row of batch) tally?.add(row);
    n += batch.length;
    batch = [];
  };
  for await (const { row } of query.stream(BATCH) as AsyncIterable<{ row: Record<string, unknown> }>) {
    batch.push(row);
    if (batch.length === BATCH) await flush();
  }
  await flush();
  await json.write(n === 0 ? ']\n' : '\n]\n');
  const closed = Promise.all([json.close(), csv.close(), html.close()]).then(([j, c, h]) => ({ json: j, csv: c, html: h }));
  return { rows: n, tally, closed };
}

/**
 * Copies a child's media files from the store into the bundle, each checked
 * against the SHA-256 recorded at upload. Only keys inside the
 * organisation's own part of the store are read (whatever storage_key says),
 * and each file travels under an extension chosen by its content type from a
 * fixed list (anything else as .bin, named in the manifest). A file that is
 * missing, elsewhere or changed is left out and named; no server path is
 * written anywhere.
 */
async function copyChildMedia(
  trx: AnyTrx,
  from: { readonly orgId: string; readonly childId: string; readonly mediaDir: string; readonly workDir: string; readonly budget: MemoryBudget },
): Promise<{ copied: Array<{ name: string; file: StoredFile }>; unavailable: UnavailableMedia[]; neutralised: NeutralisedMedia[] }> {
  const mediaRoot = resolve(from.mediaDir);
  const copied: Array<{ name: string; file: StoredFile }> = [];
  const unavailable: UnavailableMedia[] = [];
  const neutralised: NeutralisedMedia[] = [];
  const media = trx
    .selectFrom('media_files as t')
    .select(['t.id', 't.storage_key', 't.sha256', 't.content_type'])
    .where('t.org_id', '=', from.orgId)
    .where('t.child_id', '=', from.childId)
    .orderBy('t.id')
    .stream(200);
  for await (const m of media as AsyncIterable<{ id: string; storage_key: string; sha256: string; content_type: string | null }>) {
    const leaveOut = (problem: string) => unavailable.push({ media_id: m.id, storage_key: m.storage_key, problem });
    const problem = mediaKeyProblem(from.orgId, mediaRoot, m.storage_key);
    if (problem) {
      leaveOut(problem);
      continue;
    }
    const source = resolve(mediaRoot, m.storage_key);
    if (!(await stat(source).then((st) => st.isFile(), () => false))) {
      leaveOut('file not found in the media store');
      continue;
    }
    const { ext, neutralised: inert } = bundleExtension(m.content_type);
    const name = `media/${m.id}${ext}`;
    const out = new HashedFileWriter(join(from.workDir, 'files', name), { budget: from.budget });
    await out.pipeFrom(createReadStream(source));
    const file = await out.close();
    if (file.sha256 !== m.sha256) {
      leaveOut('file content differs from the SHA-256 recorded at upload');
      continue;
    }
    if (inert) neutralised.push({ media_id: m.id, path: name, content_type: m.content_type ?? '', note: 'stored as .bin: a bundle carries only types that open inertly under their own extension' });
    copied.push({ name, file });
  }
  return { copied, unavailable, neutralised };
}

/** What names the request and subject of a DSAR job. */
export interface RequestSubjectQuery {
  readonly orgSlug: string;
  readonly subject: { readonly id: string } | { readonly email: string };
  readonly reference: string;
  readonly pickSubject?: (candidates: readonly DsarSubject[]) => Promise<DsarSubject>;
}

/**
 * The organisation, request and subject of a DSAR job (an export, an
 * erasure), or a refusal that is audited under `action` (with a code and
 * ids only) before it is thrown.
 */
export async function resolveRequestSubject(
  trx: Transaction<Database>,
  session: OperatorSession,
  input: RequestSubjectQuery,
  action: 'dsar.export' | 'dsar.erase' = 'dsar.export',
): Promise<{ org: OrganisationRef; request: DsarRequest; subject: DsarSubject }> {
    const org = await findOrganisation(trx, input.orgSlug);
    const queriedId = 'id' in input.subject ? [input.subject.id] : [];
    // Every refusal inside the organisation is audited with a code and
    // ids only; the message for the person at the terminal may say more.
    const refuse = async (code: RefusalCode, subjectIds: readonly string[], error: RefusedError): Promise<never> => {
      await recordRefusal(session, org, { reference: input.reference, subjectIds, code, action });
      throw error;
    };
    const request = await findDsarRequest(trx, org, input.reference).catch((error: unknown) =>
      error instanceof RefusedError ? refuse('unknown_request', queriedId, error) : Promise.reject(error),
    );
    if (request.status === 'closed') {
      await refuse(
        'request_closed',
        [request.subjectId],
        new RefusedError(`request "${request.reference}" is closed`, 'Open a new request to export again'),
      );
    }
    // An export answers an access request, an erasure an erasure request.
    const kind = action === 'dsar.erase' ? 'erasure' : 'access';
    if (request.kind !== kind) {
      await refuse(
        'wrong_kind',
        [request.subjectId],
        new RefusedError(
          `request "${request.reference}" is an ${request.kind} request, not an ${kind} request`,
          `Record one with: trustctl dsar request open --kind ${kind} …`,
        ),
      );
    }
    let candidates = await findSubjects(trx, org.id, input.subject);
    if (candidates.length === 0) {
      await refuse(
        'subject_not_found',
        queriedId,
        new RefusedError(
          `no child, guardian or staff member ${'id' in input.subject ? input.subject.id : 'with that email'} in ${org.slug}`,
          'Check the id or email; subjects are looked up only inside --org',
        ),
      );
    }
    if (candidates.length > 1) {
      if (!input.pickSubject) {
        await refuse(
          'subject_ambiguous',
          candidates.map((c) => c.id),
          new RefusedError(
            `--subject matches ${candidates.length} people in ${org.slug}: ${candidates.map(describeSubject).join('; ')}`,
            'Pass the id of the one you mean',
          ),
        );
      }
      candidates = [await input.pickSubject!(candidates)];
    }
    const subject = candidates[0]!;
    if (subject.id !== request.subjectId) {
      await refuse(
        'subject_mismatch',
        [subject.id, request.subjectId],
        new RefusedError(
          `request "${request.reference}" is about ${request.subjectType} ${request.subjectId}, not ${describeSubject(subject)}`,
          'Check --request and --subject',
        ),
      );
    }
  return { org, request, subject };
}

/**
 * Exports one subject's bundle through an open operator session.
 *
 * @example
 * const r = await exportSubjectBundle(session, { orgSlug: 'oak-trust', subject: { id }, reference: 'DSAR-2026-001',
 *   outDir: '.', include: [], reviewer: null, mediaDir, encrypt: false, force: false, toolVersion: '0.1.0' }, { logger })
 */
export async function exportSubjectBundle(
  session: OperatorSession,
  input: ExportInput,
  { logger }: { logger: Logger },
): Promise<ExportResult> {
  parseReleases(input.include, input.reviewer);
  const outDir = resolve(input.outDir);
  await makePrivateDirectory(outDir);
  await removeStaleWorkDirs(outDir, logger);
  const finalPath = join(outDir, bundleFileName(input.reference, input.encrypt));
  if (!input.force && (await access(finalPath).then(() => true, () => false))) {
    throw new RefusedError(`${finalPath} already exists`, 'Pass --force to replace it, or --out another directory');
  }

  const workDir = await mkdtemp(join(outDir, '.trustctl-dsar-'));
  const unregister = onInterrupt(() => rm(workDir, { recursive: true, force: true }));
  const partialPath = join(workDir, 'bundle.zip');
  const finalRecordPath = join(outDir, dpoRecordFileName(basename(finalPath)));
  const partialRecordPath = join(workDir, 'dpo-record.json');
  try {
    const result = await session.transaction(
      async (trxTyped) => {
        const trx = trxTyped as unknown as AnyTrx;
        await sql`set local timezone = 'UTC'`.execute(trx);
        const { org, request, subject } = await resolveRequestSubject(trxTyped, session, input);

        const plan = planSubjectRead(subject.type);
        const tables = await withArchives(trx, plan.tables);
        const snapshot = await sql<{ now: Date; schema: string | null }>`
          select transaction_timestamp() as now,
                 (select max(name) from public.trustctl_migrations) as schema`.execute(trx);
        const snapshotAt = snapshot.rows[0]!.now;
        const released = new Set(input.include);
        // The bundle's as_of is the last recorded change to the subject's
        // records in this snapshot, so the same data gives the same bytes;
        // counted only over tables released in full, so that a change to a
        // withheld record (a new safeguarding concern) moves nothing a parent
        // can see.
        const releasedInFull = tables.filter((t) =>
          (!t.review || released.has(t.review.category)) && (t.by.length === 0 || released.has(t.byReview.category)));
        const lastChange = await sql<{ at: Date | null }>`
          select app.subject_last_change(${org.id}::uuid, ${subject.id}::uuid,
            ${releasedInFull.map((t) => t.map.table)}::text[]) as at`.execute(trx);
        // Nothing recorded: the start of the day of the snapshot, not its exact time.
        const asOfDate = lastChange.rows[0]!.at ?? new Date(Date.UTC(snapshotAt.getUTCFullYear(), snapshotAt.getUTCMonth(), snapshotAt.getUTCDate()));
        const asOfBasis = lastChange.rows[0]!.at
          ? 'last recorded change to the subject’s records of the kinds released in full, in the export’s snapshot'
          : 'no recorded change to those records was found; the day of the export';
        const asOf = asOfDate.toISOString();
        const reviewer = input.reviewer?.trim() ?? '';

        await mkdir(join(workDir, 'files', 'data'), { recursive: true });
        await mkdir(join(workDir, 'files', 'media'), { recursive: true });
        await mkdir(join(workDir, 'fragments'));
        const files: BundleFile[] = [];
        const rows: Record<string, number> = {};
        const withheld: WithheldEntry[] = [];
        const releasedEntries: ReleasedEntry[] = [];
        const sections: Array<{ input: SectionInput; rows: () => StoredFile }> = [];
        const closing: Array<Promise<unknown>> = [];
        // Small bundles stay in memory; past this, files spill to workDir.
        const budget = new MemoryBudget(input.memoryBudget ?? 32 * 1024 * 1024);
        const contentsOf = new Map<string, StoredFile>();
        const fragments = new Map<string, StoredFile>();
        const keep = (path: string, stored: StoredFile, rowCount?: number): void => {
          contentsOf.set(path, stored);
          files.push({ path, ...(rowCount === undefined ? {} : { rows: rowCount }), bytes: stored.bytes, sha256: stored.sha256 });
        };
        const columnsOf = await tableColumns(
          trx,
          tables.map((t) => t.map.table),
        );
        for (const t of tables) {
          const table = t.map.table;
          const account = await accountTable(trx, t, org.id, subject.id, released);
          for (const w of account.withheld) withheld.push({ table, ...w });
          for (const r of account.released) releasedEntries.push({ table, ...r, reviewer });
          // A table under review as a whole, not released: no data file at all.
          if (t.review && t.review.where === null && !released.has(t.review.category)) continue;
          const columns = columnsOf.get(table);
          if (!columns) throw new Error(`table ${table} of the data map does not exist`);
          const written = await writeTableFiles(trx, t, columns, { orgId: org.id, subjectId: subject.id, released, workDir, budget });
          // Files finish closing while the next table is read.
          closing.push(
            written.closed.then(({ json, csv, html }) => {
              fragments.set(table, html);
              keep(`data/${table}.json`, json, written.rows);
              keep(`data/${table}.csv`, csv, written.rows);
            }),
          );
          rows[table] = written.rows;
          sections.push({
            input: { table, purpose: t.map.purpose, rows: written.rows, columns, tally: written.tally },
            rows: () => fragments.get(table)!,
          });
        }

        await Promise.all(closing);

        const mediaUnavailable: UnavailableMedia[] = [];
        const mediaNeutralised: NeutralisedMedia[] = [];
        if (subject.type === 'child') {
          const media = await copyChildMedia(trx, { orgId: org.id, childId: subject.id, mediaDir: input.mediaDir, workDir, budget });
          for (const m of media.copied) keep(m.name, m.file);
          mediaUnavailable.push(...media.unavailable);
          mediaNeutralised.push(...media.neutralised);
          for (const u of media.unavailable) logger.warn({ media: u.media_id, problem: u.problem }, 'media file left out');
        }

        // index.html: the report, assembled from the per-table fragments.
        const header: ReportHeader = {
          organisation: org.name,
          subjectName: subject.name,
          subjectType: subject.type,
          reference: request.reference,
          receivedOn: request.receivedOn,
          dueOn: request.effectiveDueOn,
          asOf,
        };
        const policies = await sql<{
          category: string;
          site_id: string | null;
          keep_for: string;
          clock: string;
          action: string;
        }>`select category, site_id, keep_for::text as keep_for, clock, action from public.retention_policies
           where org_id = ${org.id}::uuid order by category, site_id nulls first`.execute(trx);
        const index = new HashedFileWriter(join(workDir, 'files', 'index.html'), { budget });
        // After an erasure, the bundle says what was kept of what it shows, and why.
        const shown = new Set(Object.keys(rows));
        const erasures: ErasureLine[] = (await erasuresOf(trxTyped, org.id, subject.id)).map((e) => ({
          erased_at: e.erased_at,
          request: e.request,
          kept: e.kept.filter((k) => shown.has(k.table)).map((k) => ({ table: k.table, rows: k.rows, reason: keptReasonText(k.reason), why: k.why })),
        }));
        // A summary and contents first, then each kind of record, then the notices and the Article 15 information.
        const kinds = sections.map((s) => s.input);
        await index.write(reportHead(header));
        await index.write(summarySection(header, kinds, erasures.length > 0));
        await index.write(contentsSection(kinds, erasures.length > 0));
        await index.write(erasureSection(erasures));
        for (const s of sections.filter((x) => sectionShown(x.input))) {
          await index.write(sectionStart(s.input));
          await index.pipeFrom(s.rows().contents());
          await index.write(sectionEnd(s.input));
        }
        await index.write(withheldSection());
        await index.write(
          article15Section({
            organisation: org.name,
            purposes: plan.tables.map((t) => ({ table: t.map.table, purpose: t.map.purpose })),
            retention: retentionLines(plan.tables, policies.rows, subject.siteId),
          }),
        );
        await index.write(reportTail());
        keep('index.html', await index.close());

        const readme = new HashedFileWriter(join(workDir, 'files', 'README.txt'), { budget });
        await readme.write(readmeText({ ...header, files: files.length + 1, withheld }));
        keep('README.txt', await readme.close());

        files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
        const manifest: Manifest = {
          format: BUNDLE_FORMAT,
          request: {
            reference: request.reference,
            received_on: request.receivedOn,
            due_on: request.dueOn,
            extended_due_on: request.extendedDueOn,
          },
          organisation: { id: org.id, slug: org.slug, name: org.name },
          subject: { type: subject.type, id: subject.id, site_id: subject.siteId },
          as_of: asOf,
          as_of_basis: asOfBasis,
          tool: { name: 'trustctl', version: input.toolVersion },
          schema_version: snapshot.rows[0]!.schema ?? 'unknown',
          files,
          released: releasedEntries,
          excluded: plan.excluded,
          media_unavailable: mediaUnavailable,
          media_neutralised: mediaNeutralised,
          erasures,
        };
        const manifestFile = new HashedFileWriter(join(workDir, 'files', 'manifest.json'), { budget });
        await manifestFile.write(`${JSON.stringify(manifest, null, 2)}\n`);
        const manifestWritten = await manifestFile.close();
        contentsOf.set('manifest.json', manifestWritten);

        // Entry order: what a person opens first, then the data.
        const first = ['README.txt', 'index.html', 'manifest.json'];
        const entries = [...first, ...files.map((f) => f.path).filter((p) => !first.includes(p))].map((name) => ({
          name,
          contents: contentsOf.get(name)!.contents(),
        }));
        if (input.signingKey) {
          // Ed25519 signatures are deterministic: a signed bundle is as reproducible as an unsigned one.
          const manifestBytes = await bytesOf(manifestWritten.contents());
          entries.splice(3, 0, { name: MANIFEST_SIGNATURE, contents: Buffer.from(signManifest(input.signingKey, manifestBytes)) });
        }
        const fileCount = entries.length;
        const passphrase = input.encrypt ? generatePassphrase() : null;
        const zip = await writeZip(partialPath, entries, { time: asOfDate, ...(passphrase ? { passphrase } : {}) });

        // The DPO's record: what was withheld, down to the row ids, which the
        // requester's copy must not reveal.
        const record = await writeDpoRecord(trx, partialRecordPath, {
          head: {
            format: DPO_RECORD_FORMAT,
            request: {
              id: request.id,
              reference: request.reference,
              received_on: request.receivedOn,
              due_on: request.effectiveDueOn,
            },
            organisation: { id: org.id, slug: org.slug, name: org.name },
            subject: { type: subject.type, id: subject.id, site_id: subject.siteId, name: subject.name },
            operator_session: session.id,
            snapshot_at: snapshotAt.toISOString(),
            as_of: asOf,
            bundle: {
              file: basename(finalPath),
              bytes: zip.bytes,
              sha256: zip.sha256,
              manifest_sha256: manifestWritten.sha256,
              encrypted: input.encrypt,
            },
            released: releasedEntries,
            excluded: plan.excluded,
          },
          withheld,
          plans: tables,
          orgId: org.id,
          subjectId: subject.id,
          released,
        });

        const event = await sql<{ id: string }>`
          select app.audit_record(${org.id}::uuid, ${subject.siteId}::uuid, 'dsar.export', 'dsar_request', ${request.id},
            array[${subject.id}::uuid], 'success', ${JSON.stringify({
              request: request.reference,
              bundle_sha256: zip.sha256,
              manifest_sha256: manifestWritten.sha256,
              dpo_record_sha256: record.sha256,
              encrypted: input.encrypt,
              as_of: asOf,
              snapshot_at: snapshotAt.toISOString(),
              files: fileCount,
              withheld: withheld.map(({ table, category, rows: n }) => ({ table, category, rows: n })),
              released: releasedEntries,
            })}::jsonb) as id`.execute(trx);
        await trx
          .updateTable('dsar_requests')
          .set({
            status: sql`case when status = 'open' then 'exported' else status end`,
            last_exported_at: sql`statement_timestamp()`,
            last_bundle_sha256: zip.sha256,
          })
          .where('org_id', '=', org.id)
          .where('id', '=', request.id)
          .execute();
        logger.info(
          { request: request.reference, subject: subject.id, sha256: zip.sha256, files: fileCount },
          'dsar bundle written',
        );
        return {
          path: finalPath,
          dpoRecordPath: finalRecordPath,
          dpoRecordSha256: record.sha256,
          bytes: zip.bytes,
          sha256: zip.sha256,
          manifestSha256: manifestWritten.sha256,
          encrypted: input.encrypt,
          passphrase,
          asOf,
          snapshotAt: snapshotAt.toISOString(),
          organisation: org,
          subject,
          request,
          rows,
          files: fileCount,
          withheld,
          released: releasedEntries,
          mediaUnavailable,
          auditEventId: String(event.rows[0]!.id),
        };
      },
      { isolation: 'repeatable read' },
    );
    await publish(partialPath, finalPath, input.force);
    await publish(partialRecordPath, finalRecordPath, true);
    return result;
  } finally {
    unregister();
    await rm(workDir, { recursive: true, force: true });
  }
}

