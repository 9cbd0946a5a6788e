// Anchors attacked the way a superuser of the database would: rows written
// with raw SQL (triggers off where they would refuse), then the real
// `trustctl audit verify` run over the result. An anchor is a row like any
// other, so verify must not let one remove history from what it checks: it
// believes an anchor only with the audit.prune event app.audit_prune records,
// sealed after it, and reports what is left below one.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalColumns, canonicalEvent, chainHash } from '../../src/audit/canonical.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK } from '../support/demo-ids.js';
import { waitFor } from '../support/wait.js';
import { compileOnly } from '../support/compile-only.js';

// canonicalColumns is a Kysely fragment; compiled against a driverless Kysely for its SQL text.
const dummy = compileOnly;

interface CheckpointRow {
  readonly id: string;
  readonly seq: string;
  readonly hash: string;
}

let db: TestDatabase;
let opUrl: string;
let work: string;
let key: string;
let pub: string;
/** Checkpoints exported before any attack, kept "outside the database". */
let file: string;
/** oak-trust's checkpoints after two signed seals: K1 (the first seal's head), K2 (the second's). */
let k1: CheckpointRow;
let k2: CheckpointRow;

/** Each test runs the CLI over a chain of ~80,000 entries several times; two cores are shared with other files. */
const SLOW = 400_000;

const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);

async function verify(extra: string[] = []) {
  const r = await cli(['audit', 'verify', '--org', 'oak-trust', ...extra]);
  return { ...r, invalid: r.stdout.split('\n').filter((l) => l.startsWith('INVALID: ')) };
}

async function exportProblems(name: string) {
  const out = join(work, name);
  const r = await cli(['audit', 'export', '--org', 'oak-trust', '--out', out]);
  const manifest = JSON.parse(await readFile(`${out}.manifest.json`, 'utf8'));
  return { code: r.code, problems: manifest.verification.problems as string[] };
}

async function sealSigned(): Promise<void> {
  const r = await cli(['audit', 'seal', '--org', 'oak-trust', '--sign-key', key]);
  expect(r.stderr).not.toMatch(/trustctl:/);
  expect(r.code).toBe(0);
}

/**
 * Seals until event `id` of oak-trust is in the chain, and returns its seq: an
 * open transaction elsewhere on the server (another test file) can hold the
 * seal's horizon back for a moment.
 */
async function sealUntilSealed(id: string): Promise<string> {
  return waitFor(`event ${id} to be sealed`, async () => {
    await sealSigned();
    const r = await db.admin.query(`select chain_seq::text as seq from audit_chain where org_id = $1 and event_id = $2`, [OAK, id]);
    return r.rows[0]?.seq as string | undefined;
  }, { intervalMs: 500 });
}

async function checkpoints(): Promise<CheckpointRow[]> {
  const res = await db.admin.query(
    `select id::text as id, chain_seq::text as seq, encode(head_hash, 'hex') as hash from audit_checkpoints where org_id = $1 order by id`,
    [OAK],
  );
  return res.rows;
}

/** Runs fn as the superuser with triggers and foreign keys off, committing: what an attacker with database access does. */
async function tamper(fn: (c: pg.Client) => Promise<unknown>): Promise<void> {
  await db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    await fn(c);
    await c.query('commit');
  });
}

/**
 * A genuine prune, as an operator whose open session covers oak-trust. The
 * database prunes only past an audit_events policy and under no hold
 * (tests/attacks/operator-door.test.ts): a policy of 0 days, the demo's hold released.
 */
async function prune(throughSeq: string): Promise<void> {
  await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action)
    values ($1, null, 'audit_events', '0 days', 'occurred_at', 'delete') on conflict do nothing`, [OAK]);
  await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'test' where org_id = $1 and released_at is null`, [OAK]);
  await db.withClient('trustctl_test_op', async (c) => {
    const s = (await c.query(`select session_id from app.begin_operator_session('test prune', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
    await c.query('begin');
    await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
    await c.query(`select app.audit_prune($1, $2)`, [OAK, throughSeq]);
    await c.query('commit');
  });
}

const SEAL_TABLES = ['audit_anchors', 'audit_checkpoints', 'audit_chain', 'audit_events'] as const;

/** Keeps a copy of oak-trust's trail and seal, so an attack can be undone exactly. */
async function snapshot(): Promise<void> {
  await tamper(async (c) => {
    for (const t of SEAL_TABLES) {
      await c.query(`drop table if exists snap_${t}`);
      await c.query(`create table snap_${t} as select * from ${t} where org_id = $1`, [OAK]);
    }
  });
}

async function restore(): Promise<void> {
  await tamper(async (c) => {
    for (const t of SEAL_TABLES) {
      await c.query(`delete from ${t} where org_id = $1`, [OAK]);
      await c.query(`insert into ${t} ${t === 'audit_events' || t === 'audit_checkpoints' ? 'overriding system value' : ''} select * from snap_${t}`);
    }
  });
}

async function undone(attack: () => Promise<void>): Promise<void> {
  await snapshot();
  try {
    await attack();
  } finally {
    await restore();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-anchors-'));
  expect((await cli(['audit', 'keygen', '--out', join(work, 'audit')])).code).toBe(0);
  key = join(work, 'audit.key');
  pub = join(work, 'audit.pub');
  await sealSigned();
  // The next seal takes the first run's own session events: a second checkpoint, further on. An open
  // transaction elsewhere on the server (other test files) can hold the seal's horizon back for a moment,
  // so seal until it has moved.
  await waitFor('a checkpoint past the first', async () => {
    await sealSigned();
    const all = await checkpoints();
    return BigInt(all[all.length - 1]!.seq) > BigInt(all[0]!.seq);
  }, { intervalMs: 500 });
  const all = await checkpoints();
  [k1, k2] = [all[0]!, all[all.length - 1]!];
  expect(BigInt(k2.seq)).toBeGreaterThan(BigInt(k1.seq));
  expect(BigInt(k1.seq)).toBeGreaterThan(100n);
  file = join(work, 'checkpoints.jsonl');
  expect((await cli(['audit', 'checkpoint', 'export', '--org', 'oak-trust', '--out', file])).code).toBe(0);
  // The first chain entries and their events, as a backup made before any prune would hold them.
  await db.admin.query(`create table kept_chain as select * from audit_chain where org_id = $1 and chain_seq <= 3`, [OAK]);
  await db.admin.query(`create table kept_events as select e.* from audit_events e join kept_chain k on k.org_id = e.org_id and k.event_id = e.id`);
  const clean = await verify(['--checkpoints', file, '--pubkey', pub]);
  expect(clean.invalid).toEqual([]);
  expect(clean.code).toBe(0);
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('forged anchors', () => {
  it('an anchor inserted equal to an exported checkpoint no longer hides the history before it (--checkpoints, --pubkey)', async () => {
    await undone(async () => {
      const target = (await db.admin.query(`select event_id::text as id from audit_chain where org_id = $1 and chain_seq = 100`, [OAK])).rows[0].id;
      await tamper(async (c) => {
        await c.query(`insert into audit_anchors (org_id, chain_seq, hash) values ($1, $2, decode($3, 'hex'))`, [OAK, k1.seq, k1.hash]);
        await c.query(`update audit_events set action = 'nothing.happened' where org_id = $1 and id = $2`, [OAK, target]);
      });
      const r = await verify(['--checkpoints', file, '--pubkey', pub]);
      expect(r.invalid).toEqual([
        `INVALID: unproven anchor at oak-trust seq ${k1.seq}: no audit.prune event records it`,
        `INVALID: changed row at oak-trust seq 100: event ${target} does not match its seal`,
      ]);
      expect(r.code).toBe(3);
      // The export reads anchors through the same check.
      const e = await exportProblems('forged-anchor.csv');
      expect(e.problems).toEqual([
        `unproven anchor at oak-trust seq ${k1.seq}: no audit.prune event records it`,
        `changed row at oak-trust seq 100: event ${target} does not match its seal`,
      ]);
      expect(e.code).toBe(3);
    });
  }, SLOW);

  it('an anchor inserted at a checkpoint with the prefix before it deleted fails without external checkpoints', async () => {
    await undone(async () => {
      await tamper(async (c) => {
        await c.query(`insert into audit_anchors (org_id, chain_seq, hash) values ($1, $2, decode($3, 'hex'))`, [OAK, k1.seq, k1.hash]);
        await c.query(`delete from audit_events e using audit_chain c where c.org_id = $1 and c.chain_seq <= $2 and e.org_id = c.org_id and e.id = c.event_id`, [OAK, k1.seq]);
        await c.query(`delete from audit_chain where org_id = $1 and chain_seq <= $2`, [OAK, k1.seq]);
      });
      const r = await verify();
      expect(r.invalid).toEqual([
        `INVALID: unproven anchor at oak-trust seq ${k1.seq}: no audit.prune event records it`,
        `INVALID: removed row at oak-trust seq 1: chain entries 1..${k1.seq} are missing`,
        `INVALID: broken link at oak-trust seq ${BigInt(k1.seq) + 1n}: prev_hash is not the previous entry’s hash`,
        `INVALID: checkpoint mismatch at oak-trust seq ${k1.seq}: database checkpoint ${k1.id}: the chain has no entry ${k1.seq} (truncated?)`,
      ]);
      expect(r.code).toBe(3);
    });
  }, SLOW);
});

describe('database checkpoints with --pubkey', () => {
  it('a checkpoint whose signature was stripped (to rewrite the head under it) is a finding, and so are none signed at all', async () => {
    await undone(async () => {
      const cols = canonicalColumns('e').compile(dummy).sql;
      await tamper(async (c) => {
        // Rewrite the newest sealed event, rehash its entry, and move the checkpoints to the new head.
        const row = (await c.query(
          `select c.chain_seq::text as seq, c.prev_hash, ${cols} from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id
           where c.org_id = $1 and c.chain_seq = $2`,
          [OAK, k2.seq],
        )).rows[0];
        await c.query(`update audit_events set actor_id = 'nobody-saw-this' where org_id = $1 and id = $2`, [OAK, row.id]);
        const hash = chainHash(row.prev_hash, canonicalEvent({ ...row, actor_id: 'nobody-saw-this' }, row.seq));
        await c.query(`update audit_chain set hash = $3 where org_id = $1 and chain_seq = $2`, [OAK, k2.seq, hash]);
        await c.query(`update audit_checkpoints set head_hash = $3, key_id = null, signature = null where org_id = $1 and chain_seq >= $2`, [OAK, k2.seq, hash]);
      });
      // Consistent as far as the database goes: only the key can tell.
      expect((await verify()).code).toBe(0);
      const r = await verify(['--pubkey', pub]);
      expect(r.invalid).toEqual([`INVALID: signature mismatch at oak-trust seq ${k2.seq}: database checkpoint ${k2.id}: not signed, after signed ones`]);
      expect(r.code).toBe(3);

      await tamper((c) => c.query(`update audit_checkpoints set key_id = null, signature = null where org_id = $1`, [OAK]));
      const none = await verify(['--pubkey', pub]);
      expect(none.invalid).toEqual(['INVALID: signature mismatch at oak-trust: the database checkpoints carry no signature']);
      expect(none.code).toBe(3);
    });
  }, SLOW);
});

describe('genuine prunes (kept: the last test builds on them)', () => {
  let k3: CheckpointRow;

  it('a genuine prune verifies clean once its audit.prune event is sealed, and a later prune supersedes it', async () => {
    await prune(k1.seq);
    const event = (await db.admin.query(`select id::text as id from audit_events where org_id = $1 and action = 'audit.prune' order by id desc limit 1`, [OAK])).rows[0].id;
    // Not sealed yet: the anchor rests on nothing verified.
    const early = await verify();
    expect(early.invalid).toEqual([`INVALID: unproven anchor at oak-trust seq ${k1.seq}: its audit.prune event ${event} is not sealed yet; seal, then verify again`]);
    expect(early.code).toBe(3);

    const eventSeq = await sealUntilSealed(event);
    expect(BigInt(eventSeq)).toBeGreaterThan(BigInt(k2.seq));
    const v = await verify(['--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).orgs[0]).toMatchObject({ anchorSeq: k1.seq, problems: [], anchors: [{ seq: k1.seq, status: 'proven', pruneEventSeq: eventSeq }] });
    // The checkpoints exported before the prune hold the anchor; so do ones exported after it.
    expect((await verify(['--checkpoints', file, '--pubkey', pub])).invalid).toEqual([]);
    const after = join(work, 'after-prune.jsonl');
    expect((await cli(['audit', 'checkpoint', 'export', '--org', 'oak-trust', '--out', after])).code).toBe(0);
    const withAfter = await verify(['--checkpoints', after, '--pubkey', pub]);
    expect(withAfter.invalid).toEqual([]);
    expect(withAfter.code).toBe(0);

    // A second prune, through the checkpoint that covers the first one's event: that event goes with the prefix.
    k3 = (await checkpoints()).at(-1)!;
    expect(BigInt(k3.seq)).toBeGreaterThanOrEqual(BigInt(eventSeq));
    await prune(k3.seq);
    const secondEvent = (await db.admin.query(`select id::text as id from audit_events where org_id = $1 and action = 'audit.prune' and context->>'through_seq' = $2`,
      [OAK, k3.seq])).rows[0].id as string;
    const second = await sealUntilSealed(secondEvent);
    const v2 = await verify(['--json', '--checkpoints', after, '--pubkey', pub]);
    expect(v2.code).toBe(0);
    expect(JSON.parse(v2.stdout).orgs[0]).toMatchObject({
      anchorSeq: k3.seq,
      problems: [],
      anchors: [
        { seq: k1.seq, status: 'superseded', pruneEventSeq: null },
        { seq: k3.seq, status: 'proven', pruneEventSeq: second },
      ],
    });
    const e = await exportProblems('after-prunes.csv');
    expect(e.problems).toEqual([]);
    expect(e.code).toBe(0);
  }, SLOW);

  it('rows put back below a genuine anchor are reported', async () => {
    // The newest anchor is the genuine one the test above made; sealed, so that it is proven.
    const lastPrune = (await db.admin.query(`select id::text as id from audit_events where org_id = $1 and action = 'audit.prune' order by id desc limit 1`, [OAK])).rows[0].id as string;
    await sealUntilSealed(lastPrune);
    const anchor = (await db.admin.query(`select max(chain_seq)::text as seq from audit_anchors where org_id = $1`, [OAK])).rows[0].seq;
    expect(anchor).toBe(k3?.seq ?? anchor);
    // A superuser restores the start of the pruned trail from a backup: two chain entries with their events, and one event alone.
    const third = (await db.admin.query(`select event_id::text as id from kept_chain where chain_seq = 3`)).rows[0].id;
    await tamper(async (c) => {
      await c.query(`insert into audit_events overriding system value select * from kept_events`);
      await c.query(`insert into audit_chain select * from kept_chain where chain_seq <= 2`);
    });
    const r = await verify();
    expect(r.invalid).toEqual([
      `INVALID: rows below anchor at oak-trust seq ${anchor}: 2 chain entries (seq 1..2) are still present`,
      `INVALID: rows below anchor at oak-trust seq ${anchor}: event ${third} was sealed at or below the anchor (older than its checkpoint’s horizon) but is still present`,
    ]);
    expect(r.code).toBe(3);
    const e = await exportProblems('rows-below.csv');
    expect(e.problems).toEqual([`rows below anchor at oak-trust seq ${anchor}: 2 chain entries (seq 1..2) are still present`]);
    expect(e.code).toBe(3);
  }, SLOW);
});
