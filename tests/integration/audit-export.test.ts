// audit export: what it writes can be read back by PostgreSQL itself (psql
// \copy) and line by line as JSON, its manifest is true, filters select what
// SQL selects, and a tampered event is caught on the way out.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY } from '../support/demo-ids.js';
import { tool } from '../support/zip.js';

let db: TestDatabase;
let opUrl: string;
let work: string;
const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);
const count = async (q: string, values: unknown[] = []) => Number((await db.admin.query(q, values)).rows[0].count);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function exportTrail(name: string, args: string[] = []) {
  const out = join(work, name);
  const r = await cli(['audit', 'export', '--org', 'oak-trust', '--out', out, '--json', ...args]);
  return { ...r, out, result: r.code === 0 || r.code === 3 ? JSON.parse(r.stdout) : null };
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-audit-export-'));
  // An empty string is not NULL: the CSV must keep them apart.
  await db.admin.query(`insert into audit_events (org_id, actor_type, action, target_id, request_id) values ($1, 'system', 'test.empty', '', null)`, [OAK]);
  const seal = await cli(['audit', 'seal', '--org', 'oak-trust']);
  expect(seal.code).toBe(0);
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('audit export', () => {
  const hasPsql = tool('psql', ['--version']).status === 0;
  it.skipIf(!hasPsql && !process.env.TRUSTCTL_REQUIRE_TOOLS)('CSV re-imported with psql \\copy gives back the same rows', async () => {
    const e = await exportTrail('trail.csv');
    expect(e.stderr).not.toMatch(/trustctl:/);
    expect(e.code).toBe(0);
    const m = e.result;
    expect(m.rows).toBeGreaterThan(80_000);
    expect(m.unsealed_rows).toBeGreaterThan(0); // the seal's and this export's session events
    expect(m.verification).toMatchObject({ ok: true, problems_total: 0 });
    expect(m.verification.checked).toBe(m.sealed_rows);
    const file = await readFile(e.out);
    expect(m.file).toMatchObject({ bytes: file.length, sha256: sha256(file) });
    const manifest = JSON.parse(await readFile(`${e.out}.manifest.json`, 'utf8'));
    expect(manifest.file.sha256).toBe(m.file.sha256);

    await db.admin.query(`create table reimported (like audit_events, chain_seq bigint, prev_hash bytea, hash bytea)`);
    const psql = tool('psql', [db.url('admin'), '-v', 'ON_ERROR_STOP=1', '-c', `\\copy reimported from '${e.out}' csv header`]);
    expect(psql.status, psql.output).toBe(0);
    const original = `select e.*, c.chain_seq, c.prev_hash, c.hash from audit_events e
      left join audit_chain c on c.org_id = e.org_id and c.event_id = e.id where e.org_id = '${OAK}' and e.id <= (select max(id) from reimported)`;
    expect(await count(`select count(*) from reimported`)).toBe(m.rows);
    expect(await count(`select count(*) from (select * from reimported except ${original}) d`)).toBe(0);
    expect(await count(`select count(*) from (${original} except select * from reimported) d`)).toBe(0);
  });

  it('JSON Lines parse line by line, gzip and all, and match the CSV rows', async () => {
    const e = await exportTrail('trail.jsonl.gz', ['--format', 'jsonl', '--gzip']);
    expect(e.code).toBe(0);
    const gz = await readFile(e.out);
    expect(e.result.file.sha256).toBe(sha256(gz));
    const lines = gunzipSync(gz).toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    const rows = lines.map((l) => JSON.parse(l));
    expect(rows.length).toBe(e.result.rows);
    const sealed = rows.filter((r) => r.chain_seq !== null);
    expect(sealed.map((r) => Number(r.chain_seq))).toEqual(sealed.map((_, i) => i + 1));
    const any = rows.find((r) => r.subject_ids.length > 1)!;
    expect(Array.isArray(any.subject_ids)).toBe(true);
    expect(typeof any.context).toBe('object');
    expect(any.occurred_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });

  it('filters select exactly what SQL selects, and each export is an audit event', async () => {
    const child = (await db.admin.query(`select id from children where org_id = $1 and site_id = $2 order by id limit 1`, [OAK, OAK_PRIMARY])).rows[0].id;
    const e = await exportTrail('child.csv', ['--subject', child, '--action', 'attendance_records.*', '--site', 'oak-primary', '--from', '2020-01-01']);
    expect(e.code).toBe(0);
    const expected = await count(
      `select count(*) from audit_events where org_id = $1 and $2::uuid = any (subject_ids) and action like 'attendance\\_records.%' and site_id = $3 and occurred_at >= '2020-01-01'`,
      [OAK, child, OAK_PRIMARY],
    );
    expect(expected).toBeGreaterThan(100);
    expect(e.result.rows).toBe(expected);
    const audited = (await db.admin.query(`select * from audit_events where org_id = $1 and action = 'audit.export' order by id desc limit 1`, [OAK])).rows[0];
    expect(audited.context).toMatchObject({ rows: expected, sha256: e.result.file.sha256, filters: { subject: child } });
    expect(audited.actor_type).toBe('operator');

    expect(e.result.verification.scope).toMatch(/^filtered/);
    for (const bad of [
      ['--format', 'xml'],
      ['--from', 'soon'],
      ['--from', '2026-02-30'],
      ['--from', '0000-01-01'],
      ['--subject', 'x'],
      ['--site', 'no-such-site'],
      ['--from', '2026-02-01', '--to', '2026-01-01'],
    ]) {
      const r = await exportTrail('bad.csv', bad);
      expect({ bad, code: r.code }).toEqual({ bad, code: 2 });
    }
  });

  it('catches an event changed after sealing (exit 3), and still writes the file for investigation', async () => {
    const target = (await db.admin.query(`select event_id from audit_chain where org_id = $1 and chain_seq = 7`, [OAK])).rows[0].event_id;
    await db.withClient('admin', async (c) => {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      await c.query(`update audit_events set outcome = 'failure' where org_id = $1 and id = $2`, [OAK, target]);
      await c.query('commit');
    });
    const e = await exportTrail('tampered.csv');
    expect(e.code).toBe(3);
    expect(e.result.verification.problems).toEqual([`changed row at oak-trust seq 7: event ${target} does not match its seal`]);
    expect((await readFile(e.out)).length).toBe(e.result.file.bytes);
    // A chain entry removed: the unfiltered export is the whole chain, so it notices the gap.
    await db.withClient('admin', async (c) => {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      await c.query(`delete from audit_chain where org_id = $1 and chain_seq = 9`, [OAK]);
      await c.query('commit');
    });
    const gap = await exportTrail('gap.csv');
    expect(gap.code).toBe(3);
    expect(gap.result.verification.problems).toContain('removed row at oak-trust seq 9: chain entries 9..9 are missing');
    expect((await exportTrail(join('no-such-dir', 'x.csv'))).code).toBe(2);
  });
});
