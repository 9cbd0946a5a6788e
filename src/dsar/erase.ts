// Subject erasure (docs/erasure.md). The data map decides, table by table,
// what happens to the rows about one person: deleted, anonymised column by
// column, or kept with a reason (a legal hold, a statutory retention rule,
// the identity needed by kept records, records the person made about
// others, and record-keeping tables such as the audit trail). The plan is
// counted and applied in one REPEATABLE READ transaction, with the erasures
// ledger row and the certificate's SHA-256; the certificate files and the
// removal of media files from the store follow the commit, and whatever a
// crash leaves undone the next run finishes. The certificates are also the
// ledger outside the database that `--replay` re-applies after a restore.
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { RefusedError, VerificationError } from '../errors.js';
import { makePrivateDirectory, writePrivateFile } from '../io/private-file.js';
import type { OperatorSession } from '../db/operator-session.js';
import type { Database } from '../db/schema.js';
import { dataMap, refersTo, type SubjectReference, type TableMap } from '../datamap/index.js';
import { anonymisation, anonymisedSql, anonymiseSet, type Anonymisation } from '../datamap/anonymise.js';
import { clockSql, heldSql } from '../retention/categories.js';
import { resolveRequestSubject, type RequestSubjectQuery } from './export.js';
import type { DsarSubject, OrganisationRef, SubjectType } from './subject.js';
import { KEPT_REASONS, type KeptReason } from './erasure-record.js';
import { mediaKeyProblem } from './media.js';

/** Version 2: sealed with the organisation's certificate key (migration 0019). */
export const CERTIFICATE_FORMAT = 'trustctl-erasure-certificate/2';
/** Sealed with app.erasure_pseudonym, which any operator can call: cannot be verified, never replayed. */
const LEGACY_FORMAT = 'trustctl-erasure-certificate/1';

export interface KeptRows {
  readonly reason: KeptReason;
  readonly rows: number;
  /** The rule or record behind the reason, in words. */
  readonly why: string;
  /** For a statutory rule: when the last of these rows stops being kept by it (ISO date). */
  readonly until?: string;
}

/** One table's part of an erasure (archive tables as archive.<table>). */
export interface TableAccount {
  readonly table: string;
  readonly deleted: number;
  readonly anonymised: number;
  /** Rows whose personal columns were already anonymised (an earlier erasure or sweep). */
  readonly already_anonymised: number;
  /** How each personal column of anonymised rows was treated. */
  readonly columns: Anonymisation;
  readonly kept: readonly KeptRows[];
  /** Live role grants of the person, revoked (the grants themselves are kept as history). */
  readonly revoked?: number;
}

export interface ErasurePlan {
  readonly tables: readonly TableAccount[];
  readonly totals: { readonly deleted: number; readonly anonymised: number; readonly kept: number; readonly revoked: number };
  /** Media files of deleted rows, to be removed from the store. */
  readonly mediaFiles: number;
}

/** The certificate: everything in it comes from the ledger row, so it can be rebuilt byte for byte. */
export interface Certificate {
  readonly format: string;
  readonly erasure_id: string;
  readonly request: { readonly reference: string };
  readonly organisation: { readonly id: string; readonly slug: string };
  readonly subject: { readonly type: SubjectType; readonly id: string };
  readonly erased_at: string;
  readonly operator_session: { readonly id: string | null; readonly operator: string | null };
  readonly tool: { readonly name: 'trustctl'; readonly version: string };
  readonly schema_version: string;
  readonly totals: ErasurePlan['totals'];
  /** Media files deleted with their records; their files are removed from the store after the commit. */
  readonly media_files: number;
  readonly tables: readonly TableAccount[];
  readonly statement: string;
}

type Trx = Transaction<Database>;

/**
 * Kept tables whose live rows stop working when the person is erased: role
 * grants are history (docs/access.md), so they are revoked, not deleted.
 */
const REVOCABLE: Readonly<Record<string, { live: RawBuilder<boolean>; revoke: (reason: string) => RawBuilder<unknown> }>> = {
  role_assignments: {
    live: sql<boolean>`(t.revoked_at is null and t.approval_state <> 'denied'
      and (t.expires_at is null or t.expires_at > transaction_timestamp()))`,
    revoke: (reason) => sql`revoked_at = statement_timestamp(), revoke_reason = ${reason}`,
  },
};

interface Unit {
  readonly map: TableMap;
  readonly schema: 'public' | 'archive';
  readonly name: string;
  readonly own: readonly SubjectReference[];
  readonly by: readonly SubjectReference[];
  /** The person's own record (children, users): kept while anything else of theirs is kept. */
  readonly identity: boolean;
}

/** Every table (and archive table) that can hold rows about a subject of this type; identity tables last. */
function erasureUnits(type: SubjectType, archived: ReadonlySet<string>): Unit[] {
  const units: Unit[] = [];
  for (const map of dataMap) {
    if (!map.tenantKey) continue;
    const refs = map.subjects.filter((s) => refersTo(s.kind, type));
    if (refs.length === 0) continue;
    if (map.erasure.row === 'keep' && !map.erasure.keepReason) throw new Error(`data map: ${map.table} keeps rows without a keepReason`);
    const own = refs.filter((r) => r.relation !== 'by');
    const by = refs.filter((r) => r.relation === 'by');
    const identity = map.erasure.row === 'anonymise' && own.some((r) => r.relation === 'is');
    for (const schema of ['public', 'archive'] as const) {
      if (schema === 'archive' && !archived.has(map.table)) continue;
      units.push({ map, schema, name: schema === 'public' ? map.table : `archive.${map.table}`, own, by, identity });
    }
  }
  return [...units.filter((u) => !u.identity), ...units.filter((u) => u.identity)];
}

async function archivedTables(trx: Trx): Promise<Set<string>> {
  const r = await sql<{ t: string }>`select c.relname as t from pg_catalog.pg_class c
    where c.relnamespace = 'archive'::regnamespace and c.relkind = 'r'`.execute(trx);
  return new Set(r.rows.map((x) => x.t));
}

/** SQL conditions over row t of a unit for one subject. */
function unitConditions(u: Unit, orgId: string, subjectId: string) {
  const match = (r: SubjectReference): RawBuilder<boolean> => {
    const col = sql.ref(`t.${r.column}`);
    const hit = r.array ? sql`${col} @> array[${subjectId}::uuid]` : sql`${col} = ${subjectId}::uuid`;
    return r.orgColumn ? sql<boolean>`(${hit} and ${sql.ref(`t.${r.orgColumn}`)} = ${orgId}::uuid)` : sql<boolean>`${hit}`;
  };
  const own = u.own.length > 0 ? sql<boolean>`coalesce(${sql.join(u.own.map(match), sql` or `)}, false)` : sql<boolean>`false`;
  const by =
    u.by.length > 0 ? sql<boolean>`(coalesce(${sql.join(u.by.map(match), sql` or `)}, false) and not ${own})` : sql<boolean>`false`;
  const held = heldSql({ subjects: u.map.subjects, hasSite: u.map.tenantKey?.site != null }, u.map.retention?.category ?? null);
  const rule = u.map.erasure.statutory;
  const clock = rule ? clockSql({ clock: rule.clock }) : sql`null::timestamptz`;
  // A statutory period whose clock cannot be read is still running (the database's guard agrees, migration 0017).
  const statutory = rule ? sql<boolean>`coalesce(${clock} > transaction_timestamp(), true)` : sql<boolean>`false`;
  const columns = anonymisation(u.map.erasure.columns);
  const anonymised = anonymisedSql(columns, u.map.idColumn);
  // The person's own record kept for kept records: all but the identifying columns.
  const identify = new Set(u.map.erasure.identify ?? []);
  const partialColumns = Object.fromEntries(Object.entries(columns).filter(([c]) => !identify.has(c))) as Anonymisation;
  const partiallyAnonymised = anonymisedSql(partialColumns, u.map.idColumn);
  const scope = sql<boolean>`t.org_id = ${orgId}::uuid and (${own} or ${by})`;
  return { own, by, held, statutory, clock, anonymised, columns, partialColumns, partiallyAnonymised, scope };
}

interface UnitCount {
  readonly held: number;
  readonly statutory: number;
  readonly act: number;
  readonly done: number;
  readonly own: number;
  readonly by: number;
  /** Live rows of a revocable table (role grants still in force). */
  readonly live: number;
  /** Rows whose non-identifying personal columns are not anonymised yet. */
  readonly partial: number;
  /** The latest statutory clock among the statutory rows. */
  readonly until: string | null;
}

async function countUnit(trx: Trx, u: Unit, orgId: string, subjectId: string): Promise<UnitCount> {
  const c = unitConditions(u, orgId, subjectId);
  const r = await sql<Record<Exclude<keyof UnitCount, 'until'>, string> & { until: string | null }>`
    select count(*) filter (where ${c.own}) as own,
           count(*) filter (where ${c.by}) as by,
           count(*) filter (where ${c.own} and ${c.held}) as held,
           count(*) filter (where ${c.own} and not ${c.held} and ${c.statutory}) as statutory,
           count(*) filter (where ${c.own} and not ${c.held} and not ${c.statutory} and not ${c.anonymised}) as act,
           count(*) filter (where ${c.own} and not ${c.held} and not ${c.statutory} and ${c.anonymised}) as done,
           count(*) filter (where ${c.own} and ${REVOCABLE[u.map.table]?.live ?? sql`false`}) as live,
           count(*) filter (where ${c.own} and not ${c.held} and not ${c.statutory} and not ${c.partiallyAnonymised}) as partial,
           to_char(max(${c.clock}) filter (where ${c.own} and not ${c.held} and ${c.statutory}) at time zone 'UTC', 'YYYY-MM-DD') as until
    from ${sql.table(`${u.schema}.${u.map.table}`)} t where ${c.scope}`.execute(trx);
  const row = r.rows[0]!;
  return {
    own: Number(row.own),
    by: Number(row.by),
    held: Number(row.held),
    statutory: Number(row.statutory),
    act: Number(row.act),
    done: Number(row.done),
    live: Number(row.live),
    partial: Number(row.partial),
    until: row.until,
  };
}

/** What to do with each unit, from its counts; kept (held or statutory) rows elsewhere keep the identity row. */
function accountFor(u: Unit, c: UnitCount, keptElsewhere: boolean): TableAccount {
  const kept: KeptRows[] = [];
  const add = (reason: KeptReason, rows: number, why: string, until?: string | null): void => {
    if (rows > 0) kept.push({ reason, rows, why, ...(until ? { until } : {}) });
  };
  const row = u.map.erasure.row;
  if (row === 'keep') {
    add('record_keeping', c.own + c.by, u.map.erasure.keepReason!);
    return { table: u.name, deleted: 0, anonymised: 0, already_anonymised: 0, columns: {}, kept, ...(c.live > 0 ? { revoked: c.live } : {}) };
  }
  add('legal_hold', c.held, 'An active legal hold covers these records (trustctl hold list).');
  add('statutory', c.statutory, u.map.erasure.statutory?.reason ?? '', c.until);
  add('made_by_subject', c.by, 'Records the person made about other people; they name the person by id only.');
  if (u.identity && keptElsewhere) {
    // Kept to say whose the kept records are: its identifying columns stay, the rest are anonymised.
    const identify = u.map.erasure.identify ?? [];
    add(
      'identifies_kept_records',
      c.act + c.done,
      `The person’s own record, kept while records about them are kept for a hold or by law; only what identifies them (${identify.join(', ') || 'every column'}) is left as it was.`,
    );
    const columns = Object.fromEntries(Object.entries(anonymisation(u.map.erasure.columns)).filter(([col]) => !identify.includes(col))) as Anonymisation;
    return { table: u.name, deleted: 0, anonymised: c.partial, already_anonymised: c.act + c.done - c.partial, columns, kept };
  }
  const columns = row === 'anonymise' ? anonymisation(u.map.erasure.columns) : {};
  return {
    table: u.name,
    deleted: row === 'delete' ? c.act + c.done : 0,
    anonymised: row === 'anonymise' ? c.act : 0,
    already_anonymised: row === 'anonymise' ? c.done : 0,
    columns,
    kept,
  };
}

function totalsOf(tables: readonly TableAccount[]): ErasurePlan['totals'] {
  let [deleted, anonymised, kept, revoked] = [0, 0, 0, 0];
  for (const t of tables) {
    deleted += t.deleted;
    anonymised += t.anonymised;
    kept += t.kept.reduce((n, k) => n + k.rows, 0);
    revoked += t.revoked ?? 0;
  }
  return { deleted, anonymised, kept, revoked };
}

/**
 * Counts, without changing anything, what erasing the subject would do to
 * each table.
 *
 * @example
 * const plan = await planErasure(trx, org.id, subject)
 */
export async function planErasure(trx: Trx, orgId: string, subject: { type: SubjectType; id: string }): Promise<ErasurePlan> {
  return (await planUnits(trx, orgId, subject)).plan;
}

/** The plan and the units it was counted over. */
async function planUnits(trx: Trx, orgId: string, subject: { type: SubjectType; id: string }): Promise<{ plan: ErasurePlan; units: Unit[] }> {
  const units = erasureUnits(subject.type, await archivedTables(trx));
  const tables: TableAccount[] = [];
  let keptElsewhere = false;
  let mediaFiles = 0;
  for (const u of units) {
    const c = await countUnit(trx, u, orgId, subject.id);
    // Only rows that erasure would otherwise change keep the identity: a hold
    // on the audit trail, which is kept anyway, does not.
    if (!u.identity && u.map.erasure.row !== 'keep' && c.held + c.statutory > 0) keptElsewhere = true;
    const account = accountFor(u, c, keptElsewhere);
    if (u.map.table === 'media_files') mediaFiles += account.deleted;
    if (c.own + c.by > 0) tables.push(account);
  }
  return { plan: { tables, totals: totalsOf(tables), mediaFiles }, units };
}

/**
 * Applies the erasure in the caller's transaction: deletes and anonymises
 * what the plan says, returning what was actually changed (which must be
 * the plan, counted in the same snapshot) and the storage keys of deleted
 * media.
 */
async function applyErasure(
  trx: Trx,
  orgId: string,
  subject: { type: SubjectType; id: string },
  reference: string,
): Promise<{ plan: ErasurePlan; mediaKeys: string[] }> {
  const { plan, units } = await planUnits(trx, orgId, subject);
  // The person's names and email in operator sessions' reasons and command lines (migration 0022).
  await sql`select app.erasure_redact_sessions(${orgId}::uuid, ${subject.id}::uuid)`.execute(trx);
  const mediaKeys: string[] = [];
  for (const u of units) {
    const account = plan.tables.find((t) => t.table === u.name);
    if (!account) continue;
    const c = unitConditions(u, orgId, subject.id);
    const target = sql.table(`${u.schema}.${u.map.table}`);
    const revocable = REVOCABLE[u.map.table];
    if (revocable && (account.revoked ?? 0) > 0) {
      const r = await sql<{ n: string }>`
        with done as (update ${target} t set ${revocable.revoke(`Erased under request ${reference}`)}
          where ${c.scope} and ${c.own} and ${revocable.live} returning 1)
        select count(*) as n from done`.execute(trx);
      if (Number(r.rows[0]!.n) !== account.revoked) {
        throw new Error(`${u.name}: the plan counted ${account.revoked} grants to revoke but ${r.rows[0]!.n} were; nothing was committed`);
      }
    }
    if (account.deleted === 0 && account.anonymised === 0) continue;
    const where = sql`${c.scope} and ${c.own} and not ${c.held} and not ${c.statutory}`;
    let changed: number;
    if (account.deleted > 0) {
      // A media file is owed to the store as "sha256 key": removed only if its content is still what was recorded.
      const keys = u.map.table === 'media_files' ? sql`t.sha256 || ' ' || t.storage_key` : sql`null::text`;
      const r = await sql<{ n: string; keys: Array<string | null> }>`
        with gone as (delete from ${target} t where ${where} returning ${keys} as key)
        select count(*) as n, coalesce(array_agg(key order by key) filter (where key is not null), '{}') as keys from gone`.execute(trx);
      changed = Number(r.rows[0]!.n);
      mediaKeys.push(...(r.rows[0]!.keys.filter((k) => k !== null) as string[]));
    } else {
      // The person's own record kept for kept records loses all but what identifies them.
      const partial = account.kept.some((k) => k.reason === 'identifies_kept_records');
      const columns = partial ? c.partialColumns : c.columns;
      const done = partial ? c.partiallyAnonymised : c.anonymised;
      const r = await sql<{ n: string }>`
        with done as (update ${target} t set ${anonymiseSet(columns, u.map.idColumn)} where ${where} and not ${done} returning 1)
        select count(*) as n from done`.execute(trx);
      changed = Number(r.rows[0]!.n);
    }
    const expected = account.deleted + account.anonymised;
    if (changed !== expected) {
      throw new Error(`${u.name}: the plan counted ${expected} rows to change but ${changed} changed; nothing was committed`);
    }
  }
  return { plan, mediaKeys };
}

/** The certificate's file names in a directory: ORG-REF.erasure.json and .txt ('/' in a reference becomes '~'). */
export function certificatePaths(dir: string, orgSlug: string, reference: string): { json: string; text: string } {
  const base = join(resolve(dir), `${orgSlug}-${reference.replace(/\//g, '~')}.erasure`);
  return { json: `${base}.json`, text: `${base}.txt` };
}

const STATEMENT =
  'The personal data listed as deleted or anonymised was erased in one database transaction at erased_at. Kept records are listed with the reason each was kept. The person’s id remains in the audit trail and in the records listed as kept, so that the trail stays verifiable and this erasure can be re-applied after a backup is restored.';

function certificateJson(c: Certificate): string {
  return `${JSON.stringify(c, null, 2)}\n`;
}

const SEAL_LINE = /^Seal \(certificate key, HMAC-SHA256\): +([0-9a-f]{64})$/m;

function certificateText(c: Certificate, sha256: string, seal: string): string {
  const lines = [
    'ERASURE CERTIFICATE',
    '',
    `Request:          ${c.request.reference}`,
    `Organisation:     ${c.organisation.slug} (${c.organisation.id})`,
    `Subject:          ${c.subject.type} ${c.subject.id}`,
    `Erased at:        ${c.erased_at}`,
    `Operator session: ${c.operator_session.id ?? 'unknown'}${c.operator_session.operator ? ` (${c.operator_session.operator})` : ''}`,
    `Tool:             trustctl ${c.tool.version}, schema ${c.schema_version}`,
    `Erasure id:       ${c.erasure_id}`,
    '',
    `Deleted ${c.totals.deleted} row(s), anonymised ${c.totals.anonymised}, kept ${c.totals.kept}` +
      (c.totals.revoked > 0 ? `, ${c.totals.revoked} live role grant(s) revoked` : '') +
      '.' +
      (c.media_files > 0 ? ` ${c.media_files} media file(s) deleted with their records, to be removed from the store after the commit.` : ''),
    '',
    'Per table:',
  ];
  for (const t of c.tables) {
    const parts = [];
    if (t.deleted > 0) parts.push(`deleted ${t.deleted}`);
    if (t.anonymised > 0) {
      parts.push(`anonymised ${t.anonymised} (${Object.entries(t.columns).map(([col, how]) => `${col}: ${how}`).join(', ')})`);
    }
    if (t.already_anonymised > 0) parts.push(`already anonymised ${t.already_anonymised}`);
    if ((t.revoked ?? 0) > 0) parts.push(`revoked ${t.revoked}`);
    for (const k of t.kept) parts.push(`kept ${k.rows}: ${k.reason}`);
    lines.push(`  ${t.table.padEnd(32)} ${parts.join('; ')}`);
  }
  const kept = c.tables.flatMap((t) => t.kept.map((k) => ({ table: t.table, ...k })));
  if (kept.length > 0) {
    lines.push('', 'Kept, and why:');
    for (const k of kept) {
      lines.push(`  ${k.table}: ${k.rows} row(s), ${KEPT_REASONS[k.reason]}${k.until ? ` until ${k.until}` : ''}. ${k.why}`);
    }
  }
  lines.push(
    '',
    c.statement,
    '',
    `SHA-256 of the JSON certificate (${basename(certificatePaths('.', c.organisation.slug, c.request.reference).json)}):`,
    `  ${sha256}`,
    `Seal (certificate key, HMAC-SHA256): ${seal}`,
    '',
  );
  return lines.join('\n');
}

const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Seals the certificate of the erasure this transaction has just recorded:
 * HMAC-SHA256 under the organisation's certificate key, which only the
 * database can use (app.erasure_certificate_seal, migration 0019). The
 * database signs only a ledger row of the caller's own session, written in
 * this transaction under an erasure request of its subject, whose
 * certificate says what the row says; the seal is kept in the ledger row.
 */
async function sealErasure(trx: Trx, orgId: string, erasureId: string): Promise<string> {
  const r = await sql<{ seal: string }>`select app.erasure_certificate_seal(${orgId}::uuid, ${erasureId}::uuid) as seal`.execute(trx);
  const seal = r.rows[0]!.seal;
  await sql`update public.erasures set account = account || jsonb_build_object('seal', ${seal}::text)
    where org_id = ${orgId}::uuid and id = ${erasureId}::uuid`.execute(trx);
  return seal;
}

/**
 * Whether a seal is the organisation's signature over what a certificate
 * says it did (app.erasure_certificate_valid): the only answer the database
 * gives, true or false.
 */
async function sealValid(trx: Trx, c: Certificate, sha256: string, seal: string): Promise<boolean> {
  const r = await sql<{ ok: boolean }>`select app.erasure_certificate_valid(${c.organisation.id}::uuid, ${c.erasure_id}::uuid,
    ${c.subject.type}, ${c.subject.id}::uuid, ${c.request.reference}, ${c.operator_session.id}::uuid, ${sha256}, ${seal}) as ok`.execute(trx);
  return r.rows[0]!.ok === true;
}

/** Refuses before anything changes if --out already holds another certificate under this name. */
async function assertCertificateFree(dir: string, orgSlug: string, reference: string): Promise<void> {
  const paths = certificatePaths(dir, orgSlug, reference);
  for (const path of [paths.json, paths.text]) {
    if (await stat(path).then(() => true, () => false)) {
      throw new RefusedError(`${path} already exists`, 'Move it away, or pass --out another directory; nothing was changed');
    }
  }
}

/**
 * Writes a certificate's two files from its JSON text (new private files,
 * then renamed), unless they are already there and intact.
 */
async function writeCertificate(dir: string, json: string, seal: string): Promise<{ json: string; text: string; sha256: string }> {
  const cert = JSON.parse(json) as Certificate;
  const paths = certificatePaths(dir, cert.organisation.slug, cert.request.reference);
  const sha256 = sha256Hex(json);
  await makePrivateDirectory(resolve(dir));
  for (const [path, body] of [
    [paths.json, json],
    [paths.text, certificateText(cert, sha256, seal)],
  ] as const) {
    const existing = await readFile(path, 'utf8').catch(() => null);
    if (existing === body) continue;
    if (existing !== null) throw new Error(`${path} exists and is not this erasure’s certificate; move it away and run again`);
    await writePrivateFile(path, body, { replace: false });
  }
  return { ...paths, sha256 };
}

/** One media file the store still owes: "sha256 storage_key", as the ledger keeps it. */
function parsePending(entry: string): { sha256: string; key: string } {
  const at = entry.indexOf(' ');
  return { sha256: entry.slice(0, at), key: entry.slice(at + 1) };
}

/**
 * Why a media file may not be removed, or null: its key must be a plain
 * relative path inside the organisation's part of the store (first segment
 * the organisation's id, no '.' or '..'), no media record may still name it
 * (`named`: the keys some record names), and its content must be what was
 * recorded at upload.
 */
async function removalRefusal(
  orgId: string,
  root: string,
  item: { sha256: string; key: string },
  named: ReadonlySet<string>,
): Promise<string | null> {
  const problem = mediaKeyProblem(orgId, root, item.key);
  if (problem) return problem;
  const path = resolve(root, item.key);
  if (named.has(item.key)) return 'a media record still names this file';
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `cannot read it: ${(error as Error).message}`;
  }
  if (createHash('sha256').update(content).digest('hex') !== item.sha256) return 'file content differs from the SHA-256 recorded at upload';
  return null;
}

/** Which of these storage keys a media record (live or archived) of the organisation still names. */
async function namedKeys(session: OperatorSession, orgId: string, keys: readonly string[]): Promise<Set<string>> {
  const r = await session.transaction((trx) =>
    sql<{ key: string }>`select k.key from unnest(${[...keys]}::text[]) k(key)
      where exists (select 1 from public.media_files m where m.org_id = ${orgId}::uuid and m.storage_key = k.key)
         or exists (select 1 from archive.media_files m where m.org_id = ${orgId}::uuid and m.storage_key = k.key)`.execute(trx),
  );
  return new Set(r.rows.map((x) => x.key));
}

interface LedgerRow {
  readonly id: string;
  readonly site_id: string | null;
  readonly subject_id: string;
  readonly subject_type: SubjectType;
  readonly request_reference: string | null;
  readonly erased_at: Date;
  /** The certificate's exact JSON text (jsonb would reorder an object's keys), its seal, and whether its files were written. */
  readonly account: { certificate_json?: string; seal?: string; certificate_written?: boolean };
  readonly media_pending: string[];
  readonly certificate_sha256: string | null;
}

export interface MediaRemoval {
  readonly erasure_id: string;
  readonly removed: number;
  readonly failed: ReadonlyArray<{ readonly key: string; readonly problem: string }>;
}

/**
 * Removes the media files every erasure of the organisation still owes the
 * store, and records what is left; run after each erasure's commit and at
 * the start of the next run, so a crash or a file that could not be removed
 * is finished later. A file already gone counts as removed, but only when
 * the store itself is there.
 */
export async function finishMediaRemovals(session: OperatorSession, orgId: string, mediaDir: string): Promise<MediaRemoval[]> {
  const pending = await session.transaction((trx) =>
    sql<LedgerRow>`select id, media_pending from public.erasures
      where org_id = ${orgId}::uuid and cardinality(media_pending) > 0 order by erased_at, id`.execute(trx),
  );
  const root = resolve(mediaDir);
  const storeThere = await stat(root).then((st) => st.isDirectory(), () => false);
  const results: MediaRemoval[] = [];
  for (const row of pending.rows) {
    const removed: string[] = [];
    const failed: Array<{ key: string; problem: string }> = [];
    const items = row.media_pending.map((entry) => ({ entry, ...parsePending(entry) }));
    const named = storeThere ? await namedKeys(session, orgId, items.map((i) => i.key)) : new Set<string>();
    for (const item of items) {
      const entry = item.entry;
      if (!storeThere) {
        failed.push({ key: item.key, problem: `media store ${root} not found (pass --media-dir)` });
        continue;
      }
      const refusal = await removalRefusal(orgId, root, item, named);
      if (refusal) {
        failed.push({ key: item.key, problem: refusal });
        continue;
      }
      try {
        await unlink(resolve(root, item.key));
        removed.push(entry);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') removed.push(entry);
        else failed.push({ key: item.key, problem: (error as Error).message });
      }
    }
    if (removed.length > 0) {
      await session.transaction((trx) =>
        sql`update public.erasures set media_pending = array(select k from unnest(media_pending) k where not (k = any (${removed}::text[])))
          where org_id = ${orgId}::uuid and id = ${row.id}::uuid`.execute(trx),
      );
    }
    results.push({ erasure_id: row.id, removed: removed.length, failed });
  }
  return results;
}

export interface EraseInput extends RequestSubjectQuery {
  /** Where certificates are written (and read back by --replay). */
  readonly outDir: string;
  /** Where media files live (storage_key is relative to it). */
  readonly mediaDir: string;
  readonly toolVersion: string;
  /** Show the plan only. */
  readonly dryRun: boolean;
  /** Asked with the plan before anything changes; false stops with nothing changed. */
  readonly confirm: (plan: ErasurePlan, subject: DsarSubject, org: OrganisationRef) => Promise<boolean>;
  /** Runs after the commit, before the certificate files and media removal (tests use it to crash there). */
  readonly afterCommit?: () => Promise<void>;
}

export interface EraseResult {
  readonly status: 'planned' | 'declined' | 'erased' | 'already_erased';
  readonly organisation: OrganisationRef;
  readonly subject: DsarSubject;
  readonly reference: string;
  /** What was done; for already_erased and planned, what erasing now would do. */
  readonly plan: ErasurePlan;
  readonly erasureId: string | null;
  readonly erasedAt: string | null;
  readonly certificate: { readonly json: string; readonly text: string; readonly sha256: string } | null;
  /** Certificates of earlier erasures in the organisation that a crash left unwritten, written now. */
  readonly certificatesCompleted: readonly string[];
  readonly media: readonly MediaRemoval[];
  /** True when the data changed between the plan shown and the plan applied. */
  readonly planChanged: boolean;
}

async function ledgerRow(trx: Trx, orgId: string, where: { reference: string; subjectId: string } | { id: string }) {
  const r = await sql<LedgerRow>`select id, site_id, subject_id, subject_type, request_reference, erased_at, account, media_pending,
      certificate_sha256 from public.erasures
    where org_id = ${orgId}::uuid and ${
      'id' in where
        ? sql`id = ${where.id}::uuid`
        : sql`request_reference = ${where.reference} and subject_id = ${where.subjectId}::uuid`
    }`.execute(trx);
  return r.rows[0] ?? null;
}

/** Builds the certificate of an erasure about to be recorded. */
async function buildCertificate(
  trx: Trx,
  input: {
    readonly erasureId: string;
    readonly org: OrganisationRef;
    readonly subject: { type: SubjectType; id: string };
    readonly reference: string;
    readonly erasedAt: Date;
    readonly sessionId: string;
    readonly plan: ErasurePlan;
    readonly toolVersion: string;
  },
): Promise<Certificate> {
  const meta = await sql<{ operator: string | null; schema: string | null }>`
    select (select s.db_user from public.operator_sessions s where s.id = ${input.sessionId}::uuid) as operator,
           (select max(name) from public.trustctl_migrations) as schema`.execute(trx);
  return {
    format: CERTIFICATE_FORMAT,
    erasure_id: input.erasureId,
    request: { reference: input.reference },
    organisation: { id: input.org.id, slug: input.org.slug },
    subject: { type: input.subject.type, id: input.subject.id },
    erased_at: input.erasedAt.toISOString(),
    operator_session: { id: input.sessionId, operator: meta.rows[0]!.operator },
    tool: { name: 'trustctl', version: input.toolVersion },
    schema_version: meta.rows[0]!.schema ?? 'unknown',
    totals: input.plan.totals,
    media_files: input.plan.mediaFiles,
    tables: input.plan.tables,
    statement: STATEMENT,
  };
}

/** Records the erasure: ledger row (ids and counts only); false if it was already there. */
async function recordErasure(
  trx: Trx,
  input: {
    readonly cert: Certificate;
    /** The certificate's JSON text, exactly as in its file. */
    readonly json: string;
    readonly sha256: string;
    /** The seal, when it is already known (a replay reads it from the file); else sealErasure adds it. */
    readonly seal: string | null;
    /** The certificate's files exist already (a replay reads them). */
    readonly written: boolean;
    readonly siteId: string | null;
    readonly mediaKeys: readonly string[];
    readonly requestId: string | null;
    readonly sessionId: string | null;
  },
): Promise<boolean> {
  const c = input.cert;
  const counts = Object.fromEntries(
    c.tables.map((t) => [t.table, { delete: t.deleted, anonymise: t.anonymised, keep: t.kept.reduce((n, k) => n + k.rows, 0) }]),
  );
  const inserted = await sql<{ id: string }>`
    insert into public.erasures (org_id, site_id, id, request_id, request_reference, subject_id, subject_type, erased_at,
      operator_session_id, counts, account, media_pending, certificate_sha256)
    values (${c.organisation.id}::uuid, ${input.siteId}::uuid, ${c.erasure_id}::uuid,
      ${input.requestId}::uuid, ${c.request.reference}, ${c.subject.id}::uuid, ${c.subject.type}, ${c.erased_at}::timestamptz,
      (select s.id from public.operator_sessions s where s.id = ${input.sessionId}::uuid),
      ${JSON.stringify(counts)}::jsonb, ${JSON.stringify({ certificate_json: input.json, ...(input.seal ? { seal: input.seal } : {}), ...(input.written ? { certificate_written: true } : {}) })}::jsonb,
      ${[...input.mediaKeys]}::text[], ${input.sha256})
    on conflict do nothing
    returning id`.execute(trx);
  return inserted.rows.length > 0;
}

async function auditErasure(
  trx: Trx,
  input: { orgId: string; siteId: string | null; erasureId: string; subjectId: string; context: Record<string, unknown> },
): Promise<void> {
  await sql`select app.audit_record(${input.orgId}::uuid, ${input.siteId}::uuid, 'dsar.erase', 'erasure', ${input.erasureId},
    array[${input.subjectId}::uuid], 'success', ${JSON.stringify(input.context)}::jsonb)`.execute(trx);
}

function samePlan(a: ErasurePlan, b: ErasurePlan): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Writes one ledger row's certificate into dir and marks it written. */
async function completeCertificate(session: OperatorSession, orgId: string, row: LedgerRow, dir: string) {
  const json = row.account.certificate_json;
  if (!json || !row.account.seal) throw new Error(`erasure ${row.id} has no certificate in the ledger`);
  if (sha256Hex(json) !== row.certificate_sha256) {
    throw new Error(`erasure ${row.id}: the certificate in the ledger does not match its recorded SHA-256`);
  }
  const written = await writeCertificate(dir, json, row.account.seal);
  if (!row.account.certificate_written) {
    await session.transaction((trx) =>
      sql`update public.erasures set account = account || '{"certificate_written": true}'::jsonb
        where org_id = ${orgId}::uuid and id = ${row.id}::uuid`.execute(trx),
    );
  }
  return written;
}

/**
 * What every run in an organisation finishes first: certificates a crash
 * left unwritten (into this run's --out) and media files still owed to the
 * store.
 */
async function finishPending(
  session: OperatorSession,
  orgId: string,
  dirs: { outDir: string; mediaDir: string },
): Promise<{ certificates: string[]; media: MediaRemoval[] }> {
  const unwritten = await session.transaction((trx) =>
    sql<LedgerRow>`select id, site_id, subject_id, subject_type, request_reference, erased_at, account, media_pending, certificate_sha256
      from public.erasures where org_id = ${orgId}::uuid and account ? 'certificate_json'
        and not coalesce((account ->> 'certificate_written')::boolean, false)
      order by erased_at, id`.execute(trx),
  );
  const certificates: string[] = [];
  for (const row of unwritten.rows) certificates.push((await completeCertificate(session, orgId, row, dirs.outDir)).json);
  return { certificates, media: await finishMediaRemovals(session, orgId, dirs.mediaDir) };
}

/** Runs fn in a REPEATABLE READ transaction, again when it loses a serialization race (a concurrent erasure of the same person). */
async function withRetry<T>(session: OperatorSession, fn: (trx: Trx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await session.transaction(fn, { isolation: 'repeatable read' });
    } catch (error) {
      if ((error as { code?: string }).code !== '40001' || attempt >= 5) throw error;
    }
  }
}

const mediaStoreExists = (dir: string) => stat(resolve(dir)).then((st) => st.isDirectory(), () => false);

/**
 * Erases one subject under a request, through an open operator session:
 * plan, confirm, apply in one transaction with the ledger row and audit
 * event, then write the certificate and remove media files from the store.
 * Rerun for the same request, it finishes what an interrupted run left.
 *
 * @example
 * await eraseSubject(session, { orgSlug: 'oak-trust', subject: { id }, reference: 'ER-7', outDir, mediaDir,
 *   toolVersion, dryRun: false, confirm: async () => true }, { logger })
 */
export async function eraseSubject(session: OperatorSession, input: EraseInput, { logger }: { logger: Logger }): Promise<EraseResult> {
  const found = await session.transaction(
    async (trx) => {
      const { org, request, subject } = await resolveRequestSubject(trx, session, input, 'dsar.erase');
      const existing = await ledgerRow(trx, org.id, { reference: request.reference, subjectId: subject.id });
      const plan = await planErasure(trx, org.id, subject);
      return { org, request, subject, existing, plan };
    },
    { isolation: 'repeatable read' },
  );
  const { org, request, subject } = found;
  const base = { organisation: org, subject, reference: request.reference, planChanged: false, certificatesCompleted: [] as string[] };
  const none = { erasureId: null, erasedAt: null, certificate: null, media: [] };

  if (found.existing && input.dryRun) {
    // Already erased under this request: say so, change nothing.
    return { ...base, ...none, status: 'already_erased', plan: found.plan, erasureId: found.existing.id, erasedAt: found.existing.erased_at.toISOString() };
  }
  if (found.existing) {
    // Erased before under this request: finish what that run (or any other) left.
    const certificate = await completeCertificate(session, org.id, found.existing, input.outDir);
    const pending = await finishPending(session, org.id, input);
    for (const m of pending.media) for (const f of m.failed) logger.warn({ erasure: m.erasure_id, key: f.key, problem: f.problem }, 'media file not removed');
    return {
      ...base,
      status: 'already_erased',
      plan: found.plan,
      erasureId: found.existing.id,
      erasedAt: found.existing.erased_at.toISOString(),
      certificate,
      certificatesCompleted: pending.certificates,
      media: pending.media,
    };
  }
  await assertCertificateFree(input.outDir, org.slug, request.reference);
  if (found.plan.mediaFiles > 0 && !(await mediaStoreExists(input.mediaDir))) {
    throw new RefusedError(`media store ${resolve(input.mediaDir)} not found`, 'Pass --media-dir (or set TRUSTCTL_MEDIA_DIR); nothing was changed');
  }
  if (input.dryRun) return { ...base, ...none, status: 'planned', plan: found.plan };
  if (!(await input.confirm(found.plan, subject, org))) return { ...base, ...none, status: 'declined', plan: found.plan };

  const erasureId = randomUUID();
  const applied = await withRetry(session, async (trx) => {
    // One erasure of a subject at a time: a second one waits here, and then
    // (its snapshot being older than the first's commit) fails to serialize
    // and is retried, finding the ledger row.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`trustctl-erase:${org.id}:${subject.id}`}, 0))`.execute(trx);
    const again = await ledgerRow(trx, org.id, { reference: request.reference, subjectId: subject.id });
    if (again) return { row: again, plan: found.plan, fresh: false };
    const at = await sql<{ now: Date }>`select transaction_timestamp() as now`.execute(trx);
    // The database checks the request, and every row this transaction changes against it (migration 0017).
    await sql`select app.begin_erasure(${org.id}::uuid, ${request.reference}, ${subject.id}::uuid)`.execute(trx);
    const { plan, mediaKeys } = await applyErasure(trx, org.id, subject, request.reference);
    const cert = await buildCertificate(trx, {
      erasureId,
      org,
      subject,
      reference: request.reference,
      erasedAt: at.rows[0]!.now,
      sessionId: session.id,
      plan,
      toolVersion: input.toolVersion,
    });
    const json = certificateJson(cert);
    const sha256 = sha256Hex(json);
    await recordErasure(trx, {
      cert,
      json,
      sha256,
      seal: null,
      written: false,
      siteId: subject.siteId,
      mediaKeys,
      requestId: request.id,
      sessionId: session.id,
    });
    await sealErasure(trx, org.id, erasureId);
    await auditErasure(trx, {
      orgId: org.id,
      siteId: subject.siteId,
      erasureId,
      subjectId: subject.id,
      context: { request: request.reference, certificate_sha256: sha256, totals: plan.totals, media_files: mediaKeys.length },
    });
    const row = await ledgerRow(trx, org.id, { id: erasureId });
    return { row: row!, plan, fresh: true };
  });
  logger.info({ erasure: applied.row.id, subject: subject.id, request: request.reference }, 'erasure committed');
  try {
    if (input.afterCommit) await input.afterCommit();
    const certificate = await completeCertificate(session, org.id, applied.row, input.outDir);
    const pending = await finishPending(session, org.id, input);
    for (const m of pending.media) for (const f of m.failed) logger.warn({ erasure: m.erasure_id, key: f.key, problem: f.problem }, 'media file not removed');
    return {
      ...base,
      status: applied.fresh ? 'erased' : 'already_erased',
      plan: applied.plan,
      planChanged: !samePlan(applied.plan, found.plan),
      erasureId: applied.row.id,
      erasedAt: applied.row.erased_at.toISOString(),
      certificate,
      certificatesCompleted: pending.certificates,
      media: pending.media,
    };
  } catch (error) {
    // Never a refusal after the commit: the erasure stands, and a rerun finishes it.
    throw new Error(
      `erasure ${applied.row.id} is committed, but finishing it failed: ${(error as Error).message}. Run the same command again to finish (certificate, media).`,
    );
  }
}

/** A certificate read back from its directory, with the SHA-256 of its bytes and its seal. */
export interface StoredCertificate {
  readonly path: string;
  readonly json: string;
  readonly sha256: string;
  readonly seal: string | null;
  readonly certificate: Certificate;
}

/** Erasures that started before a backup but committed after it carry an earlier erased_at: a replay looks back this far. */
export const REPLAY_MARGIN_MS = 60 * 60 * 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SUBJECT_TYPES: ReadonlySet<string> = new Set<SubjectType>(['child', 'guardian', 'staff']);

/** Whether parsed JSON has the fields a replay acts on, each of the right shape. */
function isCertificate(c: Certificate): boolean {
  return (
    (c.format === CERTIFICATE_FORMAT || c.format === LEGACY_FORMAT) &&
    UUID.test(String(c.erasure_id)) &&
    UUID.test(String(c.organisation?.id)) &&
    typeof c.organisation?.slug === 'string' &&
    SUBJECT_TYPES.has(String(c.subject?.type)) &&
    UUID.test(String(c.subject?.id)) &&
    typeof c.request?.reference === 'string' &&
    typeof c.erased_at === 'string' &&
    !Number.isNaN(new Date(c.erased_at).getTime()) &&
    (c.format === LEGACY_FORMAT || UUID.test(String(c.operator_session?.id)))
  );
}

/**
 * Reads every certificate in a directory recorded at or after `since` (less
 * REPLAY_MARGIN_MS), oldest first; a file that is not a certificate is a
 * refusal, not skipped, and so is one sealed before migration 0019, which
 * nothing can verify.
 */
export async function readCertificates(dir: string, since: Date): Promise<StoredCertificate[]> {
  const root = resolve(dir);
  const names = await readdir(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new RefusedError(`no certificate directory ${root}`, 'Pass --from the directory erasure certificates were written to');
    throw error;
  });
  const from = new Date(since.getTime() - REPLAY_MARGIN_MS);
  const out: StoredCertificate[] = [];
  for (const name of names.filter((n) => n.endsWith('.erasure.json')).sort()) {
    const path = join(root, name);
    const text = await readFile(path, 'utf8');
    let cert: Certificate;
    try {
      cert = JSON.parse(text) as Certificate;
    } catch {
      throw new RefusedError(`${path} is not valid JSON`);
    }
    if (!cert || typeof cert !== 'object' || !isCertificate(cert)) {
      throw new RefusedError(`${path} is not a trustctl erasure certificate (${CERTIFICATE_FORMAT})`);
    }
    if (new Date(cert.erased_at) < from) continue;
    if (cert.format === LEGACY_FORMAT) {
      throw new RefusedError(
        `${path}: sealed before migration 0019 (${LEGACY_FORMAT}), so nothing can verify it and it is not replayed`,
        `Check whether subject ${cert.subject.id} is still erased; if not, erase again under the request with trustctl dsar erase (record the request again if the restore lost it); then move the file out of the --from directory. Nothing was changed`,
      );
    }
    const human = await readFile(path.replace(/\.json$/, '.txt'), 'utf8').catch(() => '');
    out.push({ path, json: text, sha256: sha256Hex(text), seal: SEAL_LINE.exec(human)?.[1] ?? null, certificate: cert });
  }
  return out.sort((a, b) => a.certificate.erased_at.localeCompare(b.certificate.erased_at) || a.path.localeCompare(b.path));
}

export interface ReplayOutcome {
  readonly path: string;
  readonly erasure_id: string;
  readonly organisation: string;
  readonly subject: string;
  readonly request: string;
  readonly erased_at: string;
  /** Rows deleted or anonymised by this replay (0 when the erasure was already in place). */
  readonly deleted: number;
  readonly anonymised: number;
  readonly revoked: number;
  /** Whether the ledger row was missing (a restore from before the erasure) and was written again. */
  readonly ledger_restored: boolean;
  readonly media: readonly MediaRemoval[];
}

/**
 * Checks every certificate before anything changes, refusing the whole
 * replay on the first that fails: its seal must be the organisation's
 * signature (a key only the database can use) over the SHA-256 of its bytes
 * and over the erasure, subject, request and session it names, the fields
 * the replay acts on; and where the ledger still has the erasure, the
 * ledger must record the same SHA-256 and subject.
 */
async function checkCertificates(session: OperatorSession, certificates: readonly StoredCertificate[]): Promise<void> {
  await session.transaction(async (trx) => {
    for (const stored of certificates) {
      const c = stored.certificate;
      const org = await trx.selectFrom('organisations').select(['org_id', 'slug']).where('org_id', '=', c.organisation.id).executeTakeFirst();
      if (!org || org.slug !== c.organisation.slug) {
        throw new RefusedError(`${stored.path}: organisation ${c.organisation.slug} is not in this database or not in the session`);
      }
      if (!stored.seal || !(await sealValid(trx, c, stored.sha256, stored.seal))) {
        throw new VerificationError(
          `${stored.path}: its seal does not verify with the organisation’s certificate key${stored.seal ? '' : ' (no seal in the .txt beside it)'}`,
          'Only certificates written by trustctl dsar erase, unchanged, can be replayed; nothing was changed',
        );
      }
      const recorded = await ledgerRow(trx, org.org_id, { id: c.erasure_id });
      if (recorded && (recorded.certificate_sha256 !== stored.sha256 || recorded.subject_id !== c.subject.id)) {
        throw new VerificationError(
          `${stored.path}: its SHA-256 differs from the one recorded for erasure ${c.erasure_id}`,
          'Use the original certificate; nothing was changed',
        );
      }
    }
  });
}

/**
 * Re-applies erasures from their verified certificates (after a backup
 * restore), oldest first, each in one transaction: the same rules on
 * today's data, the ledger row written again if missing. What this replay
 * does is recorded under the replaying session, never the one the
 * certificate names (that session erased in a database the restore
 * replaced). Idempotent.
 */
export async function replayErasures(
  session: OperatorSession,
  certificates: readonly StoredCertificate[],
  { mediaDir, logger }: { mediaDir: string; logger: Logger },
): Promise<ReplayOutcome[]> {
  await checkCertificates(session, certificates);
  const outcomes: ReplayOutcome[] = [];
  for (const stored of certificates) {
    const c = stored.certificate;
    const result = await withRetry(session, async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended(${`trustctl-erase:${c.organisation.id}:${c.subject.id}`}, 0))`.execute(trx);
      const orgId = c.organisation.id;
      // The request may be closed or gone after a restore: the certificate's seal is the purpose (migrations 0017, 0019).
      await sql`select app.begin_erasure_replay(${orgId}::uuid, ${c.erasure_id}::uuid, ${c.subject.type}, ${c.subject.id}::uuid,
        ${c.request.reference}, ${c.operator_session.id}::uuid, ${stored.sha256}, ${stored.seal!})`.execute(trx);
      const { plan, mediaKeys } = await applyErasure(trx, orgId, c.subject, c.request.reference);
      const site = await sql<{ site_id: string | null }>`
        select coalesce((select site_id from public.children where org_id = ${orgId}::uuid and id = ${c.subject.id}::uuid),
                        (select site_id from public.users where org_id = ${orgId}::uuid and id = ${c.subject.id}::uuid)) as site_id`.execute(trx);
      const siteId = site.rows[0]?.site_id ?? null;
      const request = await sql<{ id: string }>`select id from public.dsar_requests
        where org_id = ${orgId}::uuid and reference = ${c.request.reference} and subject_id = ${c.subject.id}::uuid
          and kind = 'erasure'`.execute(trx);
      const restored = await recordErasure(trx, {
        cert: c,
        json: stored.json,
        sha256: stored.sha256,
        seal: stored.seal!,
        written: true,
        siteId,
        mediaKeys,
        requestId: request.rows[0]?.id ?? null,
        sessionId: session.id,
      });
      if (!restored && mediaKeys.length > 0) {
        await sql`update public.erasures set media_pending = array(select distinct k from unnest(media_pending || ${mediaKeys}::text[]) k order by 1)
          where org_id = ${orgId}::uuid and id = ${c.erasure_id}::uuid`.execute(trx);
      }
      await auditErasure(trx, {
        orgId,
        siteId,
        erasureId: c.erasure_id,
        subjectId: c.subject.id,
        context: {
          replay: true,
          request: c.request.reference,
          erased_by_session: c.operator_session.id,
          certificate_sha256: stored.sha256,
          deleted: plan.totals.deleted,
          anonymised: plan.totals.anonymised,
          revoked: plan.totals.revoked,
          ledger_restored: restored,
        },
      });
      return { orgId, plan, restored };
    });
    const media = await finishMediaRemovals(session, result.orgId, mediaDir);
    logger.info({ erasure: c.erasure_id, deleted: result.plan.totals.deleted, anonymised: result.plan.totals.anonymised }, 'erasure replayed');
    outcomes.push({
      path: stored.path,
      erasure_id: c.erasure_id,
      organisation: c.organisation.slug,
      subject: c.subject.id,
      request: c.request.reference,
      erased_at: c.erased_at,
      deleted: result.plan.totals.deleted,
      anonymised: result.plan.totals.anonymised,
      revoked: result.plan.totals.revoked,
      ledger_restored: result.restored,
      media,
    });
  }
  return outcomes;
}
