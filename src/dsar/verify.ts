// Offline verification of a bundle: every file in the zip is read, sized and
// hashed, and compared with manifest.json; a file missing from the zip, a
// file the manifest does not list, or one whose bytes differ is a problem.
// Reads with zip.js, which also opens AES-encrypted bundles.
// A bundle may be hostile: every entry is read through a bound on the bytes
// it decompresses to (not the size its header claims), and reading stops at
// the bound, so a zip bomb is a one-line failure (exit 3), never a crash.
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { BlobReader, configure, ERR_ENCRYPTED, ERR_INVALID_PASSWORD, ZipReader, type FileEntry } from '@zip.js/zip.js';
import { RefusedError } from '../errors.js';
import { BUNDLE_FORMAT, MANIFEST_SIGNATURE, manifestSignatureProblem } from './format.js';

export interface VerifyResult {
  readonly path: string;
  readonly ok: boolean;
  readonly encrypted: boolean;
  readonly filesChecked: number;
  readonly reference: string | null;
  readonly subjectId: string | null;
  readonly asOf: string | null;
  /** SHA-256 of the zip and of its manifest: compare with the dsar.export audit event or the DPO record. */
  readonly sha256: string;
  readonly manifestSha256: string | null;
  /** Key id in manifest.sig, if the bundle is signed. */
  readonly signedBy?: string | null;
  /** True when the signature was checked against a public key (any failure is in problems). */
  readonly signatureChecked?: boolean;
  /** One line per problem, each naming the file. */
  readonly problems: readonly string[];
}

interface ManifestFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** A manifest larger than this is not one trustctl wrote; no more of it is read. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** manifest.sig is one short JSON object; no more of it is read. */
const MAX_SIGNATURE_BYTES = 4096;
/**
 * Deflate expands at most 1032:1, so all entries together never decompress to
 * more than this many times the zip's size, unless entries overlap (a bomb).
 */
const MAX_EXPANSION = 1100;

/** Bytes all entries of one zip may still decompress to. */
interface ReadBudget {
  remaining: number;
}

/**
 * Reads one entry, giving each chunk to `onChunk`, and stops as soon as it
 * decompresses to more than `limit` bytes or the budget runs out.
 */
async function readBounded(
  entry: FileEntry,
  limit: number,
  budget: ReadBudget,
  onChunk: (chunk: Uint8Array) => void,
): Promise<{ bytes: number; over: 'entry' | 'total' | null }> {
  const controller = new AbortController();
  let bytes = 0;
  let over: 'entry' | 'total' | null = null;
  const stop = (why: 'entry' | 'total'): never => {
    over = why;
    controller.abort();
    throw new Error(`bound exceeded (${why})`);
  };
  try {
    await entry.getData(
      new WritableStream<Uint8Array>({
        write(chunk) {
          bytes += chunk.length;
          budget.remaining -= chunk.length;
          if (bytes > limit) stop('entry');
          if (budget.remaining < 0) stop('total');
          onChunk(chunk);
        },
      }),
      { signal: controller.signal },
    );
  } catch (error) {
    if (over) return { bytes, over };
    throw error;
  }
  return { bytes, over };
}

/** Reads a small entry whole, or reports that it is larger than `limit`. */
async function readSmall(entry: FileEntry, limit: number, budget: ReadBudget): Promise<{ data: Buffer; over: 'entry' | 'total' | null }> {
  const chunks: Uint8Array[] = [];
  const r = await readBounded(entry, limit, budget, (chunk) => chunks.push(chunk));
  return { data: r.over ? Buffer.alloc(0) : Buffer.concat(chunks), over: r.over };
}
/** Files every bundle has besides the manifest. */
const REQUIRED_FILES = ['README.txt', 'index.html'];

/** Reads the manifest's file list, refusing a malformed one (a verification failure, not a crash). */
function parseManifestFiles(text: string, problems: string[]): { files: ManifestFile[]; raw: Record<string, unknown> } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    problems.push('manifest.json: not valid JSON');
    return { files: [], raw: {} };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push('manifest.json: not a JSON object');
    return { files: [], raw: {} };
  }
  const manifest = raw as Record<string, unknown>;
  if (manifest.format !== BUNDLE_FORMAT) {
    problems.push(`manifest.json: format is ${JSON.stringify(manifest.format)}, expected "${BUNDLE_FORMAT}"`);
  }
  const files: ManifestFile[] = [];
  const list = manifest.files;
  if (!Array.isArray(list)) {
    problems.push('manifest.json: has no "files" list');
    return { files, raw: manifest };
  }
  const seen = new Set<string>();
  for (const f of list as unknown[]) {
    const e = (f ?? {}) as Partial<ManifestFile>;
    if (typeof e.path !== 'string' || typeof e.bytes !== 'number' || typeof e.sha256 !== 'string') {
      problems.push(`manifest.json: malformed file entry ${JSON.stringify(f)?.slice(0, 200)}`);
      continue;
    }
    if (seen.has(e.path)) problems.push(`manifest.json: lists ${e.path} more than once`);
    if (e.path === 'manifest.json') problems.push('manifest.json: lists itself');
    seen.add(e.path);
    files.push({ path: e.path, bytes: e.bytes, sha256: e.sha256 });
  }
  for (const required of REQUIRED_FILES) {
    if (!seen.has(required)) problems.push(`${required}: every bundle has one, but manifest.json does not list it`);
  }
  return { files, raw: manifest };
}

function failedResult(path: string, sha256: string, encrypted: boolean, problem: string): VerifyResult {
  return {
    path,
    ok: false,
    encrypted,
    filesChecked: 0,
    reference: null,
    subjectId: null,
    asOf: null,
    sha256,
    manifestSha256: null,
    problems: [problem],
  };
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function errorCode(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/**
 * Verifies a bundle against its manifest.
 *
 * @example
 * const r = await verifyBundle('DSAR-2026-001.zip', {}); if (!r.ok) r.problems.forEach((p) => console.log(p))
 */
export async function verifyBundle(
  path: string,
  { passphrase, publicKey }: { passphrase?: string; publicKey?: KeyObject },
): Promise<VerifyResult> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new RefusedError(`${path}: no such file`);
  configure({ useWebWorkers: false });
  const sha256 = await sha256OfFile(path);
  const reader = new ZipReader(new BlobReader(await openAsBlob(path)), passphrase ? { password: passphrase } : {});
  const problems: string[] = [];
  try {
    let entries;
    try {
      entries = await reader.getEntries();
    } catch (error) {
      return failedResult(path, sha256, false, `${path}: not a readable zip (${errorCode(error)})`);
    }
    const files = entries.filter((e): e is FileEntry => !e.directory);
    const budget: ReadBudget = { remaining: Math.max(info.size, 1) * MAX_EXPANSION };
    const tooMuch = (): VerifyResult =>
      failedResult(path, sha256, encrypted, `${path}: decompresses to more than ${MAX_EXPANSION} times its size (overlapping entries, a zip bomb); reading stopped`);
    const encrypted = files.some((e) => e.encrypted);
    if (encrypted && !passphrase) {
      throw new RefusedError(`${path} is encrypted`, 'Pass --passphrase-stdin and give the passphrase on standard input');
    }
    const seen = new Map<string, number>();
    for (const e of files) seen.set(e.filename, (seen.get(e.filename) ?? 0) + 1);
    for (const [name, count] of seen) if (count > 1) problems.push(`${name}: appears ${count} times in the zip`);

    const manifestEntry = files.find((e) => e.filename === 'manifest.json');
    const failed = (problem: string): VerifyResult => failedResult(path, sha256, encrypted, problem);
    if (!manifestEntry) return failed('manifest.json: missing');
    if (manifestEntry.uncompressedSize > MAX_MANIFEST_BYTES) {
      return failed(`manifest.json: ${manifestEntry.uncompressedSize} bytes, larger than any bundle manifest (${MAX_MANIFEST_BYTES})`);
    }
    let manifestBytes: Buffer;
    try {
      const m = await readSmall(manifestEntry, MAX_MANIFEST_BYTES, budget);
      if (m.over === 'total') return tooMuch();
      if (m.over) return failed(`manifest.json: larger than its header says, and than any bundle manifest (${MAX_MANIFEST_BYTES}); reading stopped`);
      manifestBytes = m.data;
    } catch (error) {
      if (errorCode(error) === ERR_INVALID_PASSWORD) throw new RefusedError(`${path}: wrong passphrase`);
      return failed(`manifest.json: cannot be read (${errorCode(error)})`);
    }
    const manifestText = manifestBytes.toString('utf8');
    const { files: listed, raw } = parseManifestFiles(manifestText, problems);
    // A manifest listing itself is reported as such (parseManifestFiles), not again as missing.
    const expected = new Map(listed.filter((f) => f.path !== 'manifest.json').map((f) => [f.path, f]));
    let checked = 0;
    // The manifest's signature is the one file the manifest cannot list.
    const signatureEntry = files.find((e) => e.filename === MANIFEST_SIGNATURE);
    let signedBy: string | null = null;
    if (signatureEntry) {
      const sig = await readSmall(signatureEntry, MAX_SIGNATURE_BYTES, budget).catch(() => ({ data: Buffer.alloc(0), over: null }));
      if (sig.over === 'total') return tooMuch();
      if (sig.over) return failed(`${MANIFEST_SIGNATURE}: larger than any signature (${MAX_SIGNATURE_BYTES} bytes); reading stopped`);
      const text = sig.data.toString('utf8');
      const id = (() => {
        try {
          return String(JSON.parse(text).key_id ?? '');
        } catch {
          return '';
        }
      })();
      signedBy = id || null;
      if (publicKey) {
        const problem = manifestSignatureProblem(publicKey, manifestBytes, text);
        if (problem) problems.push(problem);
      }
    } else if (publicKey) {
      problems.push(`${MANIFEST_SIGNATURE}: missing; the bundle is not signed`);
    }
    for (const entry of files) {
      if (entry.filename === 'manifest.json' || entry.filename === MANIFEST_SIGNATURE || entry.directory) continue;
      const want = expected.get(entry.filename);
      if (!want) {
        problems.push(`${entry.filename}: not listed in manifest.json`);
        continue;
      }
      const hash = createHash('sha256');
      let bytes: number;
      try {
        // Never more than the manifest says: one byte past it is already a mismatch.
        const r = await readBounded(entry, want.bytes, budget, (chunk) => hash.update(chunk));
        if (r.over === 'total') return tooMuch();
        if (r.over) {
          problems.push(`${entry.filename}: more than the ${want.bytes} bytes manifest.json lists; reading stopped`);
          expected.delete(entry.filename);
          continue;
        }
        bytes = r.bytes;
      } catch (error) {
        if (errorCode(error) === ERR_INVALID_PASSWORD) throw new RefusedError(`${path}: wrong passphrase`);
        if (errorCode(error) === ERR_ENCRYPTED) throw new RefusedError(`${path} is encrypted`, 'Pass --passphrase-stdin');
        problems.push(`${entry.filename}: cannot be read (${errorCode(error)})`);
        expected.delete(entry.filename);
        continue;
      }
      checked += 1;
      const sha256 = hash.digest('hex');
      if (bytes !== want.bytes) problems.push(`${entry.filename}: ${bytes} bytes, manifest says ${want.bytes}`);
      if (sha256 !== want.sha256) problems.push(`${entry.filename}: SHA-256 ${sha256} does not match the manifest`);
      expected.delete(entry.filename);
    }
    for (const missing of expected.keys()) problems.push(`${missing}: listed in manifest.json but missing from the zip`);
    const request = raw.request as { reference?: unknown } | undefined;
    const subject = raw.subject as { id?: unknown } | undefined;
    return {
      path,
      ok: problems.length === 0,
      encrypted,
      filesChecked: checked,
      reference: typeof request?.reference === 'string' ? request.reference : null,
      subjectId: typeof subject?.id === 'string' ? subject.id : null,
      asOf: typeof raw.as_of === 'string' ? raw.as_of : null,
      sha256,
      manifestSha256: createHash('sha256').update(manifestBytes).digest('hex'),
      signedBy,
      signatureChecked: Boolean(publicKey && signatureEntry),
      problems,
    };
  } finally {
    await reader.close();
  }
}
