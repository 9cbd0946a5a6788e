// retention archive export: an organisation's archived rows to JSON Lines
// files (one per table) with a manifest of sizes, row counts and SHA-256s,
// written to a private work folder (0700, random name) of new private files
// (0600, src/io/private-file.ts) and renamed when complete; the files are
// read back and checked, and only then are exactly the exported rows purged
// from the archive schema. Killed before the purge, a rerun exports them
// again; nothing is purged that is not in a verified file.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { OperatorSession } from '../db/operator-session.js';
import { assertParentDirectory } from '../io/paths.js';
import { createPrivateDirectory, createPrivateFile, writePrivateFile } from '../io/private-file.js';

export const ARCHIVE_EXPORT_FORMAT = 'trustctl-archive-export/1';

export interface ArchiveExportFile {
  readonly name: string;
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface ArchiveExportResult {
  readonly format: typeof ARCHIVE_EXPORT_FORMAT;
  readonly org: string;
  readonly dir: string;
  readonly exportedAt: string;
  readonly files: readonly ArchiveExportFile[];
  readonly purged: number;
  readonly manifestSha256: string;
}

async function archiveTables(trx: Transaction<Database>): Promise<string[]> {
  const r = await sql<{ t: string }>`select c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'archive' and c.relkind = 'r' order by 1`.execute(trx);
  return r.rows.map((x) => x.t);
}

async function sha256Of(path: string): Promise<{ sha256: string; bytes: number; lines: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  for await (const chunk of createReadStream(path)) {
    const b = chunk as Buffer;
    h.update(b);
    bytes += b.length;
    for (const x of b) if (x === 10) lines += 1;
  }
  return { sha256: h.digest('hex'), bytes, lines };
}

/**
 * Exports and purges one organisation's archive. `tables` limits it to
 * those archive tables (default: all).
 */
export async function exportArchive(
  session: OperatorSession,
  org: { readonly id: string; readonly slug: string },
  outDir: string,
  tables: readonly string[] | null,
  { purge }: { purge: boolean },
): Promise<ArchiveExportResult> {
  const exportedAt = new Date();
  const name = `archive-${org.slug}-${exportedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
  await assertParentDirectory(join(outDir, name), '--out');
  const dir = join(outDir, name);
  const partial = await createPrivateDirectory(dir);
  try {
    return await exportInto(session, org, partial, dir, name, exportedAt, tables, purge);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

async function exportInto(
  session: OperatorSession,
  org: { readonly id: string; readonly slug: string },
  partial: string,
  dir: string,
  name: string,
  exportedAt: Date,
  tables: readonly string[] | null,
  purge: boolean,
): Promise<ArchiveExportResult> {
  // One consistent snapshot of the archive; the ids exported are the ids purged.
  const exported = await session.transaction(async (trx) => {
    const all = await archiveTables(trx);
    const chosen = tables ? all.filter((t) => tables.includes(t)) : all;
    const out: Array<ArchiveExportFile & { ids: string[] }> = [];
    for (const table of chosen) {
      const file = `${table}.jsonl`;
      const target = createPrivateFile(join(partial, file));
      const stream = target.stream;
      const h = createHash('sha256');
      let bytes = 0;
      const ids: string[] = [];
      const query = sql<{ id: string; line: string }>`
        select t.id::text as id, to_jsonb(t)::text as line from ${sql.table(`archive.${table}`)} t
        where t.org_id = ${org.id}::uuid order by t.archived_at, t.id`.compile(trx);
      for await (const chunk of trx.getExecutor().stream(query, 1000)) {
        for (const r of chunk.rows as Array<{ id: string; line: string }>) {
          const line = `${r.line}\n`;
          h.update(line);
          bytes += Buffer.byteLength(line);
          ids.push(r.id);
          if (!stream.write(line)) await once(stream, 'drain');
        }
      }
      if (ids.length === 0) {
        await target.abort();
        continue;
      }
      await target.commit({ replace: false });
      out.push({ name: file, table, rows: ids.length, bytes, sha256: h.digest('hex'), ids });
    }
    return out;
  }, { isolation: 'repeatable read', readOnly: true });

  const files = exported.map(({ ids: _ids, ...f }) => f);
  const manifest = `${JSON.stringify({ format: ARCHIVE_EXPORT_FORMAT, org: org.slug, exported_at: exportedAt.toISOString(), files }, null, 2)}\n`;
  const manifestSha256 = createHash('sha256').update(manifest).digest('hex');
  await writePrivateFile(join(partial, 'manifest.json'), manifest, { replace: false });

  // Read every file back: same bytes, same rows, or nothing is purged.
  for (const f of files) {
    const check = await sha256Of(join(partial, f.name));
    if (check.sha256 !== f.sha256 || check.bytes !== f.bytes || check.lines !== f.rows) {
      throw new Error(`${f.name} does not match what was written (sha256 ${check.sha256}); nothing purged`);
    }
  }
  await rename(partial, dir); // fails, rather than follows, if anything is already at DIR

  let purged = 0;
  await session.transaction(async (trx) => {
    if (purge) {
      // The database allows an operator's deletes of archived rows only under this purpose (migration 0017).
      await sql`select app.begin_archive_purge(${org.id}::uuid)`.execute(trx);
      for (const f of exported) {
        for (let i = 0; i < f.ids.length; i += 10_000) {
          const res = await sql`delete from ${sql.table(`archive.${f.table}`)} where org_id = ${org.id}::uuid
            and id = any (${f.ids.slice(i, i + 10_000)}::uuid[])`.execute(trx);
          purged += Number(res.numAffectedRows ?? 0);
        }
      }
    }
    await sql`select app.audit_record(${org.id}::uuid, null, 'retention.archive_export', 'archive_export', ${name}, '{}'::uuid[], 'success',
      ${JSON.stringify({ files: files.map((f) => ({ table: f.table, rows: f.rows, sha256: f.sha256 })), purged, manifest_sha256: manifestSha256 })}::jsonb)`.execute(trx);
  });
  return { format: ARCHIVE_EXPORT_FORMAT, org: org.slug, dir, exportedAt: exportedAt.toISOString(), files, purged, manifestSha256 };
}
