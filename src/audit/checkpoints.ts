// Checkpoints kept outside the database: `audit checkpoint export` writes
// them as JSON Lines; `audit verify --checkpoints` reads them back. With a
// signature from a key the database never saw, they catch a consistent
// rewrite of a whole chain by someone with database access.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { sql, type Transaction } from 'kysely';
import { RefusedError } from '../errors.js';
import type { OperatorSession } from '../db/operator-session.js';
import { HashedFileWriter, type WrittenFile } from '../io/hashed-file.js';

export const CHECKPOINT_FORMAT = 'trustctl-audit-checkpoint/1';

export interface Checkpoint {
  readonly org_id: string;
  readonly org: string;
  readonly id: string;
  readonly chain_seq: string;
  readonly head_hash: string; // hex
  readonly rows: string;
  readonly horizon: string;
  readonly created_at: string;
  readonly key_id: string | null;
  readonly signature: string | null; // base64
}

type AnyTrx = Transaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The checkpoints the session can see, oldest first. */
export async function readCheckpoints(trx: AnyTrx, orgIds?: readonly string[]): Promise<Checkpoint[]> {
  const filter = orgIds ? sql`where k.org_id = any (${[...orgIds]}::uuid[])` : sql``;
  const res = await sql<Checkpoint & { signature: string | null }>`
    select k.org_id::text as org_id, o.slug as org, k.id::text as id, k.chain_seq::text as chain_seq,
           encode(k.head_hash, 'hex') as head_hash, k.rows::text as rows, k.horizon::text as horizon,
           to_char(k.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at,
           k.key_id, encode(k.signature, 'base64') as signature
    from public.audit_checkpoints k join public.organisations o on o.org_id = k.org_id
    ${filter} order by o.slug, k.id`.execute(trx);
  return res.rows.map((r) => ({ ...r, signature: r.signature?.replace(/\n/g, '') ?? null }));
}

/**
 * Writes every checkpoint the session covers to a JSON Lines file.
 *
 * @example
 * await exportCheckpoints(session, '/secure/checkpoints.jsonl')
 */
export async function exportCheckpoints(
  session: OperatorSession,
  path: string,
): Promise<WrittenFile & { readonly count: number }> {
  const checkpoints = await session.transaction((trx) => readCheckpoints(trx as unknown as AnyTrx, session.orgIds));
  const out = new HashedFileWriter(path);
  for (const c of checkpoints) await out.write(`${JSON.stringify({ format: CHECKPOINT_FORMAT, ...c })}\n`);
  return { ...(await out.close()), count: checkpoints.length };
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Reads a checkpoints file, refusing anything malformed (exit 2) with the line number. */
export async function loadCheckpointsFile(path: string): Promise<Checkpoint[]> {
  const stream = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  await opened.catch(() => {
    throw new RefusedError(`cannot read checkpoints file ${path}`);
  });
  const checkpoints: Checkpoint[] = [];
  let n = 0;
  try {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      n += 1;
      checkpoints.push(...parseCheckpointLine(path, n, line));
    }
  } catch (error) {
    if (error instanceof RefusedError) throw error;
    throw new RefusedError(`cannot read checkpoints file ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return checkpoints;
}

const MAX_XID8 = 18446744073709551615n;
const MAX_BIGINT = 9223372036854775807n;

function parseCheckpointLine(path: string, n: number, line: string): Checkpoint[] {
  if (line.trim() === '') return [];
  if (line.length > 100_000) throw new RefusedError(`${path}:${n}: line too long for a checkpoint`);
  let c: Partial<Checkpoint> & { format?: string };
  try {
    c = JSON.parse(line);
  } catch {
    throw new RefusedError(`${path}:${n}: not JSON`);
  }
  if (
    c?.format !== CHECKPOINT_FORMAT ||
    typeof c.org_id !== 'string' ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(c.org_id) ||
    typeof c.chain_seq !== 'string' ||
    !/^\d+$/.test(c.chain_seq) ||
    typeof c.head_hash !== 'string' ||
    !HEX64.test(c.head_hash) ||
    typeof c.horizon !== 'string' ||
    !/^\d+$/.test(c.horizon) ||
    c.horizon.length > 20 ||
    BigInt(c.horizon) > MAX_XID8 ||
    c.chain_seq.length > 19 ||
    BigInt(c.chain_seq) > MAX_BIGINT
  ) {
    throw new RefusedError(`${path}:${n}: not a trustctl checkpoint`, 'Write the file with: trustctl audit checkpoint export');
  }
  return [{
    org_id: c.org_id,
    org: String(c.org ?? ''),
    id: String(c.id ?? ''),
    chain_seq: c.chain_seq,
    head_hash: c.head_hash,
    rows: String(c.rows ?? ''),
    horizon: c.horizon,
    created_at: String(c.created_at ?? ''),
    key_id: typeof c.key_id === 'string' ? c.key_id : null,
    signature: typeof c.signature === 'string' ? c.signature : null,
  }];
}
