// The audit trail's seal, checkpoints and verification, attacked the way
// someone with direct database access would: as a superuser with triggers
// and foreign keys switched off (session_replication_role = replica).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalColumns, canonicalEvent, chainHash } from '../../src/audit/canonical.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK } from '../support/demo-ids.js';

// canonicalColumns is a Kysely fragment; compiled against a driverless Kysely for its SQL text.
const dummyExecutor = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

let db: TestDatabase;
let opUrl: string;
let work: string;

const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);
const count = async (q: string, values: unknown[] = []) => Number((await db.admin.query(q, values)).rows[0].count);

/** Runs fn as the superuser with triggers and foreign keys off, committing. */
async function tamper(fn: (c: pg.Client) => Promise<void>): Promise<void> {
  await db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query(`set local session_replication_role = replica`);
    await fn(c);
    await c.query('commit');
  });
}

async function verify(extra: string[] = []) {
  const r = await cli(['audit', 'verify', ...extra]);
  return { ...r, invalid: r.stdout.split('\n').filter((l) => l.startsWith('INVALID: ')) };
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-audit-'));
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('audit seal and verify', () => {
  it('seals every final event once, in (txid, id) order, and an untouched trail verifies (exit 0)', async () => {
    const seal = await cli(['audit', 'seal', '--json']);
    expect(seal.stderr).not.toMatch(/trustctl:/);
    expect(seal.code).toBe(0);
    const results = JSON.parse(seal.stdout);
    expect(results.map((r: { org: string }) => r.org)).toEqual(['little-acorns', 'oak-trust', 'platform']);
    const oak = results.find((r: { org: string }) => r.org === 'oak-trust');
    expect(oak.sealed).toBeGreaterThan(50_000);
    // Everything older than the checkpoint's horizon is in the chain, once.
    const unsealed = await count(
      `select count(*) from audit_events e where e.org_id = $1 and e.txid < $2::xid8
         and not exists (select 1 from audit_chain c where c.org_id = e.org_id and c.event_id = e.id)`,
      [OAK, oak.horizon],
    );
    expect(unsealed).toBe(0);
    expect(await count('select count(*) from audit_chain where org_id = $1', [OAK])).toBe(oak.sealed);
    // Chain order is (txid, id) order, with no gaps.
    const disorder = await count(
      `select count(*) from (
         select c.chain_seq, row_number() over (order by e.txid, e.id) as n
         from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id where c.org_id = $1) x
       where x.chain_seq <> x.n`,
      [OAK],
    );
    expect(disorder).toBe(0);

    const v = await verify();
    expect(v.invalid).toEqual([]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^OK: 3 organisation\(s\)/);

    // A second seal only appends what happened since: events at or past the first run's horizon
    // (its session's end, this run's start, and whatever other transactions held back: the
    // horizon is the cluster's, so on a busy machine a few more), never one sealed before.
    const again = JSON.parse((await cli(['audit', 'seal', '--org', 'oak-trust', '--json'])).stdout);
    expect(again[0].sealed).toBeLessThan(1000);
    expect(BigInt(again[0].headSeq)).toBe(BigInt(oak.headSeq) + BigInt(again[0].sealed));
    expect(await count(
      `select count(*) from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id
        where c.org_id = $1 and c.chain_seq > $2 and e.txid < $3::xid8`,
      [OAK, oak.headSeq, oak.horizon],
    )).toBe(0);
    expect(await count('select count(distinct event_id) from audit_chain where org_id = $1', [OAK])).toBe(Number(again[0].headSeq));
  });

  it('signs checkpoints; an exported checkpoint file verifies with the public key and fails with another', async () => {
    const key = join(work, 'audit');
    const other = join(work, 'other');
    expect((await cli(['audit', 'keygen', '--out', key])).code).toBe(0);
    expect((await cli(['audit', 'keygen', '--out', other])).code).toBe(0);
    expect((await cli(['audit', 'keygen', '--out', key])).code).toBe(2); // never overwritten
    const seal = await cli(['audit', 'seal', '--sign-key', `${key}.key`, '--json']);
    expect(seal.code).toBe(0);
    expect(JSON.parse(seal.stdout).every((r: { signedBy: string | null }) => /^[0-9a-f]{16}$/.test(r.signedBy ?? ''))).toBe(true);
    const file = join(work, 'checkpoints.jsonl');
    const exported = await cli(['audit', 'checkpoint', 'export', '--out', file]);
    expect(exported.code).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.signature).length).toBe(3);

    expect((await verify(['--checkpoints', file, '--pubkey', `${key}.pub`])).code).toBe(0);
    const wrongKey = await verify(['--checkpoints', file, '--pubkey', `${other}.pub`]);
    expect(wrongKey.code).toBe(3);
    expect(wrongKey.invalid.some((l) => /signature mismatch .*signed by key/.test(l))).toBe(true);

    // A forged line in the file: the head hash no longer matches the chain.
    const forged = lines.map((l, i) => (i === lines.length - 1 ? { ...l, head_hash: 'f'.repeat(64) } : l));
    const forgedFile = join(work, 'forged.jsonl');
    await writeFile(forgedFile, forged.map((l) => JSON.stringify(l)).join('\n'));
    const r = await verify(['--checkpoints', forgedFile]);
    expect(r.code).toBe(3);
    expect(r.invalid.some((l) => /checkpoint mismatch .*file checkpoint/.test(l))).toBe(true);

    // Signatures stripped from the file: with --pubkey that is a downgrade.
    const stripped = join(work, 'stripped.jsonl');
    await writeFile(stripped, lines.map((l) => JSON.stringify({ ...l, key_id: null, signature: null })).join('\n'));
    const unsigned = await verify(['--checkpoints', stripped, '--pubkey', `${key}.pub`]);
    expect(unsigned.code).toBe(3);
    expect(unsigned.invalid.some((l) => /carry no signature/.test(l))).toBe(true);

    // Bad input: one line, exit 2.
    const huge = join(work, 'huge.jsonl');
    await writeFile(huge, JSON.stringify({ ...lines[0], horizon: '99999999999999999999999' }));
    for (const args of [
      ['--checkpoints', join(work, 'no-such-file')],
      ['--checkpoints', work],
      ['--checkpoints', huge],
      ['--pubkey', join(work, 'checkpoints.jsonl')],
    ]) {
      const r = await verify(args);
      expect({ args, code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ args, code: 2, lines: 1 });
    }
    expect((await cli(['audit', 'keygen', '--out', join(work, 'no-such-dir', 'k')])).code).toBe(2);
  });

  it('reports a changed field of a sealed event (exit 3), and is clean again once it is put back', async () => {
    const target = (await db.admin.query(`select event_id, chain_seq from audit_chain where org_id = $1 and chain_seq = 100`, [OAK])).rows[0];
    const before = (await db.admin.query(`select action from audit_events where org_id = $1 and id = $2`, [OAK, target.event_id])).rows[0];
    await tamper((c) => c.query(`update audit_events set action = 'nothing.happened' where org_id = $1 and id = $2`, [OAK, target.event_id]).then(() => undefined));
    const r = await verify(['--org', 'oak-trust']);
    expect(r.code).toBe(3);
    expect(r.invalid).toEqual([`INVALID: changed row at oak-trust seq 100: event ${target.event_id} does not match its seal`]);
    await tamper((c) => c.query(`update audit_events set action = $3 where org_id = $1 and id = $2`, [OAK, target.event_id, before.action]).then(() => undefined));
    expect((await verify(['--org', 'oak-trust'])).code).toBe(0);
    // A date moved by whole millennia into BC prints the same digits; the era keeps it apart.
    await tamper((c) => c.query(`update audit_events set occurred_at = occurred_at - interval '4051 years' where org_id = $1 and id = $2`, [OAK, target.event_id]).then(() => undefined));
    const bc = await verify(['--org', 'oak-trust']);
    expect(bc.invalid).toEqual([`INVALID: changed row at oak-trust seq 100: event ${target.event_id} does not match its seal`]);
    await tamper((c) => c.query(`update audit_events set occurred_at = occurred_at + interval '4051 years' where org_id = $1 and id = $2`, [OAK, target.event_id]).then(() => undefined));
    expect((await verify(['--org', 'oak-trust'])).code).toBe(0);
  });

  it('reports a removed event and a removed chain entry', async () => {
    const victim = (await db.admin.query(`select event_id as id from audit_chain where org_id = $1 and chain_seq = 200`, [OAK])).rows[0];
    await tamper(async (c) => {
      // Keep an exact copy to put back (through JavaScript, timestamps would lose their microseconds).
      await c.query(`create table tamper_backup as select * from audit_events where org_id = $1 and id = $2`, [OAK, victim.id]);
      await c.query(`delete from audit_events where org_id = $1 and id = $2`, [OAK, victim.id]);
    });
    let r = await verify(['--org', 'oak-trust']);
    expect(r.code).toBe(3);
    expect(r.invalid).toEqual([`INVALID: removed row at oak-trust seq 200: event ${victim.id} is missing`]);
    // Put it back exactly, then remove its chain entry instead.
    await tamper(async (c) => {
      await c.query(`insert into audit_events overriding system value select * from tamper_backup`);
      await c.query(`drop table tamper_backup`);
    });
    expect((await verify(['--org', 'oak-trust'])).code).toBe(0);
    const entry = (await db.admin.query(`select * from audit_chain where org_id = $1 and chain_seq = 300`, [OAK])).rows[0];
    await tamper((c) => c.query(`delete from audit_chain where org_id = $1 and chain_seq = 300`, [OAK]).then(() => undefined));
    r = await verify(['--org', 'oak-trust']);
    expect(r.code).toBe(3);
    expect(r.invalid).toContain('INVALID: removed row at oak-trust seq 300: chain entries 300..300 are missing');
    expect(r.invalid).toContain(`INVALID: inserted row at oak-trust: event ${entry.event_id} is older than the last seal’s horizon but not sealed`);
    await tamper((c) =>
      c.query(`insert into audit_chain (org_id, chain_seq, event_id, prev_hash, hash, sealed_at) values ($1, $2, $3, $4, $5, $6)`, [
        entry.org_id, entry.chain_seq, entry.event_id, entry.prev_hash, entry.hash, entry.sealed_at,
      ]).then(() => undefined),
    );
    expect((await verify(['--org', 'oak-trust'])).code).toBe(0);
  });

  it('reports a backdated event slipped in among sealed ones', async () => {
    const old = (await db.admin.query(`select e.* from audit_events e join audit_chain c on c.org_id = e.org_id and c.event_id = e.id where c.org_id = $1 and c.chain_seq = 50`, [OAK])).rows[0];
    const inserted = await db.withClient('admin', async (c) => {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      const res = await c.query(
        `insert into audit_events (org_id, site_id, occurred_at, recorded_at, txid, actor_type, actor_id, action, target_type, target_id, subject_ids)
         values ($1, $2, $3, $4, $5, 'user', 'someone', 'notes.delete', 'notes', 'x', '{}') returning id`,
        [OAK, old.site_id, old.occurred_at, old.recorded_at, old.txid],
      );
      await c.query('commit');
      return res.rows[0].id;
    });
    const r = await verify(['--org', 'oak-trust']);
    expect(r.code).toBe(3);
    expect(r.invalid).toEqual([`INVALID: inserted row at oak-trust: event ${inserted} is older than the last seal’s horizon but not sealed`]);
    await tamper((c) => c.query(`delete from audit_events where org_id = $1 and id = $2`, [OAK, inserted]).then(() => undefined));
    expect((await verify(['--org', 'oak-trust'])).code).toBe(0);
  });

  it('a consistent rewrite of the whole chain passes on its own, and is caught by the external checkpoints', async () => {
    const file = join(work, 'before-rewrite.jsonl');
    expect((await cli(['audit', 'checkpoint', 'export', '--out', file])).code).toBe(0);
    // Rewrite event at seq 10, then every hash after it, and the database's checkpoints.
    await tamper(async (c) => {
      const ten = (await c.query(`select event_id from audit_chain where org_id = $1 and chain_seq = 10`, [OAK])).rows[0];
      await c.query(`update audit_events set actor_id = 'nobody-saw-this' where org_id = $1 and id = $2`, [OAK, ten.event_id]);
      const rows = await c.query(
        `select c.chain_seq::text as seq, c.prev_hash, ${canonicalColumns('e').compile(dummyExecutor).sql}
         from audit_chain c join audit_events e on e.org_id = c.org_id and e.id = c.event_id
         where c.org_id = $1 and c.chain_seq >= 10 order by c.chain_seq`,
        [OAK],
      );
      let prev: Buffer = rows.rows[0].prev_hash;
      const seqs: string[] = [];
      const prevs: Buffer[] = [];
      const hashes: Buffer[] = [];
      for (const r of rows.rows) {
        const h = chainHash(prev, canonicalEvent(r, r.seq));
        seqs.push(r.seq);
        prevs.push(prev);
        hashes.push(h);
        prev = h;
      }
      await c.query(
        `update audit_chain c set prev_hash = u.p, hash = u.h from unnest($2::bigint[], $3::bytea[], $4::bytea[]) u(s, p, h)
         where c.org_id = $1 and c.chain_seq = u.s`,
        [OAK, seqs, prevs, hashes],
      );
      await c.query(`update audit_checkpoints k set head_hash = c.hash, key_id = null, signature = null from audit_chain c
                     where k.org_id = $1 and c.org_id = k.org_id and c.chain_seq = k.chain_seq`, [OAK]);
    });
    const alone = await verify(['--org', 'oak-trust']);
    expect(alone.invalid).toEqual([]);
    expect(alone.code).toBe(0);
    const withFile = await verify(['--org', 'oak-trust', '--checkpoints', file, '--pubkey', join(work, 'audit.pub')]);
    expect(withFile.code).toBe(3);
    const fileMismatches = withFile.invalid.filter((l) => /checkpoint mismatch at oak-trust seq \d+: file checkpoint/.test(l));
    expect(fileMismatches.length).toBeGreaterThan(0);
    // The rewrite had to strip the database checkpoints' signatures: with the key, that is reported too.
    expect(withFile.invalid.filter((l) => !fileMismatches.includes(l))).toEqual([
      'INVALID: signature mismatch at oak-trust: the database checkpoints carry no signature',
    ]);
  });
});

