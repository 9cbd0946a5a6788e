// Sealing while the application writes: several connections insert events,
// one transaction stays open across seals, two sealers run at once. Every
// committed event must end up in the chain exactly once, in (txid, id)
// order; the seal's horizon at its exact boundary. Then pruning, and what
// the database refuses whoever asks.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealAuditChain } from '../../src/audit/seal.js';
import { withOperatorSession } from '../../src/db/operator-session.js';
import type { Database } from '../../src/db/schema.js';
import { withOperatorDb } from '../../src/db/with-db.js';
import { sqlstate } from '../support/attacker.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK } from '../support/demo-ids.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let opUrl: string;
let work: string;
const logger = pino({ level: 'silent' });

const count = async (q: string, values: unknown[] = []) => Number((await db.admin.query(q, values)).rows[0].count);

/** Log lines of the seals, to see that concurrent sealers really did collide. */
const sealLog: string[] = [];
const sealLogger = pino({ level: 'info' }, { write: (line: string) => void sealLog.push(line) });

function seal(batchSize = 500) {
  const settings = { databaseUrl: opUrl, skipTlsVerify: false, logger, notice: () => undefined };
  return withOperatorDb(settings, (odb) =>
    withOperatorSession(
      odb.kysely,
      { reason: 'test: seal', orgSlugs: ['oak-trust'], command: 'vitest' },
      (session) => sealAuditChain(session, { batchSize }, { logger: sealLogger }),
      { logger },
    ),
  );
}

/**
 * Seals oak-trust in-process and runs `atHorizon` once, right after the seal
 * has read its horizon and before it reads the events below it (Kysely's
 * query log is awaited), to commit a transaction exactly there.
 */
async function sealPausingAtHorizon(atHorizon: () => Promise<void>) {
  let horizonsRead = 0;
  const kysely = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: opUrl, max: 4 }) }),
    log: async (event) => {
      if (event.level === 'query' && event.query.sql.includes('pg_snapshot_xmin(pg_current_snapshot())') && horizonsRead++ === 0) await atHorizon();
    },
  });
  try {
    const results = await withOperatorSession(
      kysely,
      { reason: 'test: seal at the horizon', orgSlugs: ['oak-trust'], command: 'vitest' },
      (session) => sealAuditChain(session, { batchSize: 10_000 }, { logger: sealLogger }),
      { logger },
    );
    return { result: results[0]!, horizonsRead };
  } finally {
    await kysely.destroy();
  }
}

/**
 * Opens a transaction that writes one oak-trust event and waits until it is
 * the oldest transaction running on the server, so that its txid is every
 * snapshot's xmin: the seal's horizon exactly. (Other test files' writes can
 * be older for a moment.)
 */
async function openEventAtHorizon(action: string): Promise<{ client: pg.Client; id: string; txid: string }> {
  const client = await db.connect('admin');
  await client.query('begin');
  const e = (await client.query(`insert into audit_events (org_id, actor_type, action) values ($1, 'system', $2) returning id::text as id, txid::text as txid`,
    [OAK, action])).rows[0];
  await waitFor(`transaction ${e.txid} to be the horizon`, async () =>
    (await client.query(`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`)).rows[0].xmin === e.txid);
  return { client, id: e.id, txid: e.txid };
}

/** Chain entries of oak-trust not where (txid, id) order and no gaps put them (before any prune). */
const outOfChainOrder = () =>
  count(
    `select count(*) from (
       select c.chain_seq, row_number() over (order by e.txid, e.id) as n
       from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id where c.org_id = $1) x
     where x.chain_seq <> x.n`,
    [OAK],
  );

const sealedSeq = async (id: string): Promise<string | undefined> =>
  (await db.admin.query(`select chain_seq::text as seq from audit_chain where org_id = $1 and event_id = $2`, [OAK, id])).rows[0]?.seq;

/** Offers oak-trust a batch through app.audit_seal_append, in a savepoint rolled back after: 'ok', or the SQLSTATE it was refused with. */
async function trySealAppend(c: pg.Client, ids: string[], prevs: Buffer[], hashes: Buffer[]): Promise<string> {
  await c.query('savepoint a');
  try {
    return await sqlstate(c.query(`select app.audit_seal_append($1, $2::bigint[], $3::bytea[], $4::bytea[])`, [OAK, ids, prevs, hashes]));
  } finally {
    await c.query('rollback to savepoint a');
  }
}

/** Runs SQL as the test operator inside an open session scoped to oak-trust. */
async function asOperator<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return db.withClient('trustctl_test_op', async (c) => {
    const s = (await c.query(`select session_id from app.begin_operator_session('test', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
    await c.query('begin');
    try {
      await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
      return await fn(c);
    } finally {
      await c.query('rollback');
    }
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-audit-conc-'));
  await seal(20_000); // the seeded trail first, so the concurrent part is about new events
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('sealing under concurrent writes', () => {
  it('seals every committed event exactly once, in order, never past an open transaction', async () => {
    const long = await db.connect('admin');
    await long.query('begin');
    const longTxid = (await long.query(
      `insert into audit_events (org_id, actor_type, action) values ($1, 'system', 'test.long') returning txid::text`,
      [OAK],
    )).rows[0].txid;

    let stop = false;
    const inserters = Array.from({ length: 3 }, async (_, w) => {
      const c = await db.connect('admin');
      let n = 0;
      try {
        while (!stop) {
          await c.query('begin');
          const rows = 1 + (n % 4);
          for (let i = 0; i < rows; i += 1) {
            await c.query(`insert into audit_events (org_id, actor_type, action, context) values ($1, 'system', 'test.concurrent', $2)`, [
              OAK,
              { worker: w, n },
            ]);
          }
          // Now and then a transaction that rolls back: its events never exist.
          await c.query(n % 7 === 3 ? 'rollback' : 'commit');
          n += 1;
        }
      } finally {
        await c.end();
      }
      return n;
    });

    // Two sealers at once, several rounds each, while the writers run.
    const sealers = [0, 1].map(async () => {
      for (let round = 0; round < 4; round += 1) await seal(50);
    });
    await Promise.all(sealers);

    // While the long transaction is open, nothing at or after it is sealed.
    const pastLong = await count(
      `select count(*) from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id
       where c.org_id = $1 and e.txid >= $2::xid8`,
      [OAK, longTxid],
    );
    expect(pastLong).toBe(0);

    stop = true;
    const written = await Promise.all(inserters);
    expect(written.reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
    await long.query('commit');
    await long.end();

    // A backlog sealed by two sealers in small batches: they collide, and
    // the one whose head moved starts again from the new head.
    // (Other test files' open transactions can hold the horizon back, leaving
    // nothing to seal yet, for longer than a few attempts take: then try
    // again with a bigger backlog, until a deadline.)
    await waitFor('two sealers to collide', async () => {
      await db.admin.query(`insert into audit_events (org_id, actor_type, action) select $1, 'system', 'test.backlog' from generate_series(1, 3000)`, [OAK]);
      sealLog.length = 0;
      await Promise.all([seal(20), seal(20)]);
      return sealLog.some((l) => l.includes('another seal moved the head'));
    }, { intervalMs: 1000 });

    const results = await seal(50);
    const horizon = results[0]!.horizon;
    // Every event older than the last horizon is sealed, once; the long
    // transaction's event among them.
    expect(
      await count(
        `select count(*) from audit_events e where e.org_id = $1 and e.txid < $2::xid8
           and not exists (select 1 from audit_chain c where c.org_id = e.org_id and c.event_id = e.id)`,
        [OAK, horizon],
      ),
    ).toBe(0);
    expect(await count(`select count(*) from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id where c.org_id = $1 and e.action = 'test.long'`, [OAK])).toBe(1);
    expect(await count(`select count(*) from (select event_id from audit_chain where org_id = $1 group by event_id having count(*) > 1) d`, [OAK])).toBe(0);
    expect(await outOfChainOrder()).toBe(0);
    const v = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust']);
    expect(v.stdout).not.toMatch(/INVALID/);
    expect(v.code).toBe(0);
  });
});

describe('the seal horizon', () => {
  it('an event whose transaction is the horizon (txid = snapshot xmin) stays unsealed, even if it commits mid-seal; then it is sealed, in order', async () => {
    // Open across a whole seal: the seal's horizon is the transaction itself.
    const open = await openEventAtHorizon('test.horizon-open');
    const during = await seal();
    expect(during[0]!.horizon).toBe(open.txid);
    expect(await sealedSeq(open.id)).toBeUndefined();
    await open.client.query('commit');
    await open.client.end();

    // Committed after the seal read its horizon, before it read the events
    // below it: visible to that read, but not below the horizon, so not sealed by it.
    const racing = await openEventAtHorizon('test.horizon-commit');
    const { result, horizonsRead } = await sealPausingAtHorizon(async () => {
      await racing.client.query('commit');
      await racing.client.end();
    });
    expect(horizonsRead).toBe(1);
    expect(result.horizon).toBe(racing.txid);
    expect(await sealedSeq(racing.id)).toBeUndefined();
    // The checkpoint's horizon is its txid: the event is not older, so it is no "inserted row".
    const v = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust']);
    expect(v.stdout).not.toMatch(/INVALID/);
    expect(v.code).toBe(0);

    // Later seals take both, in (txid, id) order, after everything sealed before.
    const seqs = await waitFor('both events to be sealed', async () => {
      await seal();
      const [a, b] = [await sealedSeq(open.id), await sealedSeq(racing.id)];
      return a !== undefined && b !== undefined && [BigInt(a), BigInt(b)];
    }, { intervalMs: 500 });
    expect(seqs[0]).toBeGreaterThan(BigInt(during[0]!.headSeq));
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);
    expect(seqs[1]).toBeGreaterThan(BigInt(result.headSeq));
    expect(await outOfChainOrder()).toBe(0);
  });
});

describe('what the database refuses', () => {
  it('will not take a batch out of order, one that skips an event, or one that does not continue the head', async () => {
    // Three new events, final once committed.
    await db.admin.query(`insert into audit_events (org_id, actor_type, action) select $1, 'system', 'test.order' from generate_series(1, 3)`, [OAK]);
    const codes = await asOperator(async (c) => {
      const head = (await c.query(`select chain_seq, hash from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
      // Final once no older transaction is still open anywhere in the cluster
      // (other test files run alongside): wait for the horizon to pass them.
      const unsealed = async () => (await c.query(
        `select e.id from audit_events e where e.org_id = $1
           and not exists (select 1 from audit_chain x where x.org_id = e.org_id and x.event_id = e.id)
           and e.txid < pg_snapshot_xmin(pg_current_snapshot()) order by e.txid, e.id`,
        [OAK],
      )).rows.map((r) => r.id as string);
      const ids = await waitFor('three finished, unsealed events', async () => {
        const found = await unsealed();
        return found.length >= 3 && found;
      });
      const next = ids as [string, string, ...string[]];
      expect(next.length).toBeGreaterThanOrEqual(3);
      const h = (i: number) => Buffer.alloc(32, i);
      const attempt = (ids: string[], prevs: Buffer[], hashes: Buffer[]) => trySealAppend(c, ids, prevs, hashes);
      return {
        reversed: await attempt([next[1], next[0]], [head.hash, h(1)], [h(1), h(2)]),
        skipping: await attempt([next[1]], [head.hash], [h(1)]),
        wrongHead: await attempt([next[0]], [h(9)], [h(1)]),
        badLink: await attempt([next[0], next[1]], [head.hash, h(7)], [h(1), h(2)]),
        inOrder: await attempt([next[0], next[1]], [head.hash, h(1)], [h(1), h(2)]),
      };
    });
    expect(codes).toEqual({ reversed: 'TC011', skipping: 'TC011', wrongHead: 'TC012', badLink: 'TC011', inOrder: 'ok' });
  });

  it('will not take an event of a transaction that has not ended, not even the sealing one’s own at the horizon (txid = snapshot xmin)', async () => {
    const codes = await asOperator(async (c) => {
      const own = (await c.query(`select app.audit_record($1, null, 'dsar.export', 'children', 'x', '{}', 'success', '{}')::text as id,
        pg_current_xact_id()::text as txid`, [OAK])).rows[0];
      await waitFor(`transaction ${own.txid} to be the horizon`, async () =>
        (await c.query(`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`)).rows[0].xmin === own.txid);
      // Everything a correct seal would take before it: unsealed, in (txid, id) order.
      const head = (await c.query(`select chain_seq, hash from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
      const before = (await c.query(
        `select e.id::text as id from audit_events e where e.org_id = $1 and (e.txid, e.id) < ($2::xid8, $3::bigint)
           and not exists (select 1 from audit_chain x where x.org_id = e.org_id and x.event_id = e.id) order by e.txid, e.id`,
        [OAK, own.txid, own.id],
      )).rows.map((r) => r.id as string);
      // Linked hashes: the database checks links, not the hashes themselves.
      const attempt = (ids: string[]) => {
        const hashes = ids.map((_, i) => Buffer.alloc(32, i + 1));
        return trySealAppend(c, ids, ids.map((_, i) => (i === 0 ? head.hash : hashes[i - 1]!)), hashes);
      };
      return { upToIt: before.length === 0 ? 'ok' : await attempt(before), withIt: await attempt([...before, own.id]) };
    });
    expect(codes).toEqual({ upToIt: 'ok', withIt: 'TC011' });
  });

  it('lets nobody write the chain directly: operators lack the privilege, the owner and superuser meet the trigger', async () => {
    const op = await asOperator(async (c) =>
      c.query(`delete from audit_chain where org_id = $1`, [OAK]).then(() => 'ok', (e: { code?: string }) => e.code),
    );
    expect(op).toBe('42501');
    for (const role of ['superuser', 'owner'] as const) {
      const outcome = await db.withClient('admin', async (c) => {
        await c.query('begin');
        if (role === 'owner') await c.query('set local role trustctl_owner');
        // The owner is under forced RLS too: give it nothing to hide behind by targeting via the trigger on truncate.
        const r = await c.query(role === 'owner' ? `truncate audit_chain` : `delete from audit_chain where org_id = '${OAK}'`).then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
        await c.query('rollback');
        return r;
      });
      expect({ role, outcome }).toEqual({ role, outcome: 'TC010' });
    }
  });

  it('prunes a whole sealed prefix at a checkpoint, leaves an anchor, and verification starts from it', async () => {
    const checkpoint = (await db.admin.query(`select chain_seq::int as seq from audit_checkpoints where org_id = $1 order by id limit 1`, [OAK])).rows[0].seq;
    expect(checkpoint).toBeGreaterThan(1000);
    // The database prunes only past the organisation's audit_events policy and under no legal hold
    // (tests/attacks/operator-door.test.ts): a policy of 0 days, and the demo's hold released.
    await db.admin.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values ($1, null, 'audit_events', '0 days', 'occurred_at', 'delete')`, [OAK]);
    await db.admin.query(`update legal_holds set released_at = now(), release_reason = 'test' where org_id = $1 and released_at is null`, [OAK]);
    // Not at a checkpoint: refused.
    const off = await asOperator((c) => c.query(`select app.audit_prune($1, 1000)`, [OAK]).then(() => 'ok', (e: { code?: string }) => e.code));
    expect(off).toBe('TC011');

    const before = await count(`select count(*) from audit_chain where org_id = $1`, [OAK]);
    const prefix = (await db.admin.query(`select event_id from audit_chain where org_id = $1 and chain_seq <= $2`, [OAK, checkpoint])).rows.map((r) => r.event_id);
    const others = await count(`select count(*) from audit_events where org_id = $1 and not (id = any ($2::bigint[]))`, [OAK, prefix]);
    const pruned = await db.withClient('trustctl_test_op', async (c) => {
      const s = (await c.query(`select session_id from app.begin_operator_session('test prune', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
      await c.query('begin');
      await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
      const n = (await c.query(`select app.audit_prune($1, $2) as n`, [OAK, checkpoint])).rows[0].n;
      await c.query('commit');
      return Number(n);
    });
    expect(pruned).toBe(checkpoint);
    expect(await count(`select count(*) from audit_chain where org_id = $1`, [OAK])).toBe(before - checkpoint);
    // Exactly the prefix's events are gone; every other event is still there.
    expect(await count(`select count(*) from audit_events where org_id = $1 and id = any ($2::bigint[])`, [OAK, prefix])).toBe(0);
    expect(await count(`select count(*) from audit_events where org_id = $1 and not (id = any ($2::bigint[]))`, [OAK, prefix])).toBeGreaterThanOrEqual(others);
    // The prune is itself an event.
    const event = (await db.admin.query(`select * from audit_events where org_id = $1 and action = 'audit.prune' order by id desc limit 1`, [OAK])).rows[0];
    expect(event.context).toMatchObject({ through_seq: checkpoint, events: checkpoint });
    expect(event.actor_type).toBe('operator');
    // Until that event is sealed, the anchor is not proven (tests/attacks/audit-anchors.test.ts).
    const early = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust']);
    expect(early.stdout).toContain(`INVALID: unproven anchor at oak-trust seq ${checkpoint}: its audit.prune event ${event.id} is not sealed yet`);
    expect(early.code).toBe(3);
    // Pruning again inside the pruned prefix is refused; sealing carries on after it.
    const again = await asOperator((c) => c.query(`select app.audit_prune($1, 500)`, [OAK]).then(() => 'ok', (e: { code?: string }) => e.code));
    expect(again).toBe('TC011');
    const more = await seal();
    expect(more[0]!.sealed).toBeGreaterThan(0);
    const v = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust', '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout).orgs[0]).toMatchObject({ anchorSeq: String(checkpoint) });
  });

  it('an anchor forged to hide part of the chain is caught by the external checkpoints', async () => {
    const file = join(work, 'checkpoints.jsonl');
    expect((await runCli(['--database-url', opUrl, 'audit', 'checkpoint', 'export', '--out', file])).code).toBe(0);
    // As a superuser: an anchor part-way along the chain (not at a checkpoint), everything before it deleted.
    const at = (await db.admin.query(`select min(chain_seq) + 50 as seq from audit_chain where org_id = $1`, [OAK])).rows[0].seq;
    await db.withClient('admin', async (c) => {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      await c.query(`insert into audit_anchors (org_id, chain_seq, hash) select org_id, chain_seq, hash from audit_chain where org_id = $1 and chain_seq = $2`, [OAK, at]);
      await c.query(`delete from audit_events e using audit_chain c where c.org_id = $1 and c.chain_seq <= $2 and e.org_id = c.org_id and e.id = c.event_id`, [OAK, at]);
      await c.query(`delete from audit_chain where org_id = $1 and chain_seq <= $2`, [OAK, at]);
      await c.query('commit');
    });
    // No audit.prune event records it, so verification does not start from it, and finds the deleted entries missing.
    const alone = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust']);
    expect(alone.code).toBe(3);
    expect(alone.stdout).toContain(`INVALID: unproven anchor at oak-trust seq ${at}: no audit.prune event records it`);
    expect(alone.stdout).toContain(`INVALID: anchor mismatch at oak-trust seq ${at}: no database checkpoint has the anchor’s seq and hash`);
    expect(alone.stdout).toMatch(new RegExp(`INVALID: removed row at oak-trust seq \\d+: chain entries \\d+\\.\\.${at} are missing`));
    const withFile = await runCli(['--database-url', opUrl, 'audit', 'verify', '--org', 'oak-trust', '--checkpoints', file]);
    expect(withFile.code).toBe(3);
    expect(withFile.stdout).toContain(`INVALID: anchor mismatch at oak-trust seq ${at}: the anchor is not one of the external checkpoints`);
  });
});
