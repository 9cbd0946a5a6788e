// Attacks on erasure certificates (docs/erasure.md#the-certificate-key): one
// operator with psql tries to make a certificate that another operator's
// `dsar erase --replay` accepts — for a child with no erasure request, or a
// genuine certificate with its request, subject or session edited — sealing
// it with every definer function an operator can call. The replay must
// refuse with one line, erase nothing and record nothing; a genuine
// certificate replays under the replaying operator's own session.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY } from '../support/demo-ids.js';
import { TEST_ROLES, type TestRoleName } from '../support/roles.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
const SEAL_LINE = /^(Seal \([^)]*\): +)\S+$/m;
const sealIn = (text: string): string => /^Seal \([^)]*\): +(\S+)$/m.exec(text)![1]!;

interface Cert {
  format: string;
  erasure_id: string;
  request: { reference: string };
  organisation: { id: string; slug: string };
  subject: { type: string; id: string };
  erased_at: string;
  operator_session: { id: string | null; operator: string | null };
  [key: string]: unknown;
}

describe('erasure certificates an operator forges', () => {
  let db: TestDatabase;
  let restored: string;
  let restoredPool: pg.Pool;
  let work: string;
  let mediaDir: string;
  /** The victim's genuine certificate (trustctl_test_op erased erasedChild under ER-GENUINE). */
  let genuine: { json: string; text: string; cert: Cert };
  /** The attacker's own genuine certificate (trustctl_test_op2 erased ownChild under ER-OWN). */
  let own: { json: string; text: string; cert: Cert };
  let erasedChild: string;
  let ownChild: string;
  /** A child nobody asked to erase. */
  let target: string;

  const urlFor = (database: string, role: TestRoleName) => {
    const admin = inject('adminConfig');
    const r = TEST_ROLES.find((x) => x.name === role)!;
    return `postgres://${r.name}:${encodeURIComponent(r.password)}@${admin.host}:${admin.port}/${database}`;
  };
  const cli = (args: string[], url: string) => runCli(['--database-url', url, ...args, '--media-dir', mediaDir]);
  /** The victim's replay of a directory of certificates. */
  const replay = (dir: string, database: string, role: TestRoleName = 'trustctl_test_op') =>
    cli(['--json', '--yes', 'dsar', 'erase', '--replay', '--since', '2000-01-01T00:00:00Z', '--from', dir], urlFor(database, role));

  /** Hashes of every row, in every table, whose text names the id (the id's whole footprint). */
  async function footprint(pool: pg.Pool, id: string): Promise<string[]> {
    const tables = await pool.query<{ t: string }>(`select n.nspname || '.' || c.relname as t from pg_class c
      join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('public', 'archive') and c.relkind = 'r' order by 1`);
    const out: string[] = [];
    for (const { t } of tables.rows) {
      const r = await pool.query<{ h: string }>(`select md5(to_jsonb(t)::text) as h from ${t} t where strpos(to_jsonb(t)::text, $1) > 0 order by 1`, [id]);
      out.push(...r.rows.map((x) => `${t} ${x.h}`));
    }
    return out;
  }

  /** What an erasure leaves behind anywhere: ledger rows, erase events, and anything recorded under a session. */
  async function records(pool: pg.Pool, session: string) {
    const r = await pool.query(`select
        (select count(*)::int from erasures) as erasures,
        (select count(*)::int from audit_events where action = 'dsar.erase') as erase_events,
        (select count(*)::int from erasures where operator_session_id = $1) as ledger_in_session,
        (select count(*)::int from audit_events where operator_session_id = $1 and action not like 'operator_session.%') as events_in_session`,
      [session]);
    return r.rows[0];
  }

  /** An operator's own session, opened with raw SQL, and a transaction in it. */
  async function asOperator<T>(role: TestRoleName, fn: (c: pg.Client, session: string) => Promise<T>, orgs: readonly string[] = ['oak-trust']): Promise<T> {
    return db.withClient(role, async (c) => {
      const s = (await c.query(`select session_id from app.begin_operator_session('looking into erasures', null, $1::text[], false, 'psql', 'x', 'x')`, [orgs])).rows[0].session_id as string;
      await c.query('begin');
      try {
        await c.query(`select set_config('app.operator_session', $1, true)`, [s]);
        return await fn(c, s);
      } finally {
        await c.query('rollback');
      }
    });
  }

  /** The SQLSTATE a statement fails with, or 'ok', inside a savepoint so the transaction goes on. */
  async function stateOf(c: pg.Client, text: string, values: unknown[]): Promise<string> {
    await c.query('savepoint attempt');
    try {
      await c.query(text, values);
      await c.query('release savepoint attempt');
      return 'ok';
    } catch (error) {
      await c.query('rollback to savepoint attempt');
      return (error as { code?: string }).code ?? 'error';
    }
  }

  /** Writes (or rewrites: their own is theirs to edit) a ledger row for a certificate, as the attacker, with the request and session they choose. */
  const insertLedgerRow = (c: pg.Client, cert: Cert, json: string, requestId: string | null, sessionId: string) =>
    c.query(`insert into erasures (org_id, id, request_id, request_reference, subject_id, subject_type, erased_at, operator_session_id,
        account, certificate_sha256) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
      on conflict (org_id, id) do update set request_id = excluded.request_id, request_reference = excluded.request_reference,
        subject_id = excluded.subject_id, subject_type = excluded.subject_type, erased_at = excluded.erased_at,
        operator_session_id = excluded.operator_session_id, account = excluded.account, certificate_sha256 = excluded.certificate_sha256`,
      [OAK, cert.erasure_id, requestId, cert.request.reference, cert.subject.id, cert.subject.type, cert.erased_at, sessionId,
        JSON.stringify({ certificate_json: json }), sha256(json)]);

  /**
   * Every seal the attacker (trustctl_test_op2, raw SQL, own session) can get
   * for a certificate: the organisation's pseudonym of its SHA-256 (how
   * certificates were sealed before migration 0019), and the sealing
   * function over a ledger row written for it, in their own session.
   */
  async function attackerSeals(json: string): Promise<string[]> {
    const cert = JSON.parse(json) as Cert;
    return asOperator('trustctl_test_op2', async (c, session) => {
      const seals: string[] = [];
      const p = await c.query(`select app.erasure_pseudonym($1, $2::uuid) as s`, [OAK, sha256(json).slice(0, 32)]);
      seals.push(p.rows[0].s);
      const request = await c.query(`select id from dsar_requests where org_id = $1 and reference = $2`, [OAK, cert.request.reference]);
      // Each step the database may refuse (migration 0017: the ledger is written only under an erasure purpose for its person).
      const step = async <R,>(run: () => Promise<R>): Promise<R | null> => {
        await c.query('savepoint step');
        try {
          const r = await run();
          await c.query('release savepoint step');
          return r;
        } catch {
          await c.query('rollback to savepoint step');
          return null;
        }
      };
      await step(() => c.query(`select app.begin_erasure($1, $2, $3::uuid)`, [OAK, cert.request.reference, cert.subject.id]));
      if (await step(() => insertLedgerRow(c, cert, json, request.rows[0]?.id ?? null, session))) {
        const sealed = await step(() => c.query(`select app.erasure_certificate_seal($1, $2) as s`, [OAK, cert.erasure_id]));
        if (sealed) seals.push(sealed.rows[0].s);
      }
      return seals;
    });
  }

  /** Puts a certificate and its .txt (the genuine one's, with the seal line swapped) into a fresh directory. */
  async function plant(name: string, json: string, seal: string, template = genuine.text): Promise<string> {
    const cert = JSON.parse(json) as Cert;
    const dir = await mkdtemp(join(work, `planted-${name}-`));
    const base = join(dir, `oak-trust-${cert.request.reference}.erasure`);
    await writeFile(`${base}.json`, json);
    await writeFile(`${base}.txt`, template.replace(SEAL_LINE, `$1${seal}`));
    return dir;
  }

  const oneLine = (stderr: string) => stderr.trim().split('\n');

  beforeAll(async () => {
    db = await createTestDatabase();
    work = await mkdtemp(join(tmpdir(), 'trustctl-attack-certs-'));
    mediaDir = join(work, 'media');
    await cp(inject('mediaDir'), mediaDir, { recursive: true });
    const kids = await db.admin.query<{ id: string }>(
      `select c.id from children c where c.org_id = $1 and c.site_id = $2
         and exists (select 1 from notes n where n.org_id = c.org_id and n.child_id = c.id)
         and not exists (select 1 from dsar_requests d where d.org_id = c.org_id and d.subject_id = c.id)
       order by c.id limit 3`,
      [OAK, OAK_PRIMARY],
    );
    [erasedChild, ownChild, target] = kids.rows.map((x) => x.id) as [string, string, string];
    for (const [role, subject, ref] of [['trustctl_test_op', erasedChild, 'ER-GENUINE'], ['trustctl_test_op2', ownChild, 'ER-OWN']] as const) {
      const r = await runCli(['--database-url', db.url(role), 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject,
        '--request', ref, '--received', daysAgo(1), '--kind', 'erasure']);
      expect(r.code, r.stderr).toBe(0);
    }

    // The backup: a copy from before either erasure (the requests are in it).
    restored = `${db.name}_restored`;
    const c = new pg.Client(inject('adminConfig'));
    await c.connect();
    await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [db.name]);
    await c.query(`create database ${restored} template ${db.name}`);
    await c.query(`revoke all on database ${restored} from public`);
    await c.query(`grant connect, temporary on database ${restored} to app_user, trustctl_operator`);
    await c.end();
    restoredPool = new pg.Pool({ ...inject('adminConfig'), database: restored, max: 2 });
    restoredPool.on('error', () => undefined);

    const certsOf = async (role: TestRoleName, subject: string, ref: string) => {
      const dir = join(work, `certs-${role}`);
      const r = await cli(['--json', '--yes', 'dsar', 'erase', '--org', 'oak-trust', '--subject', subject, '--request', ref, '--out', dir], db.url(role));
      expect(r.code, r.stderr).toBe(0);
      const json = await readFile(join(dir, `oak-trust-${ref}.erasure.json`), 'utf8');
      return { json, text: await readFile(join(dir, `oak-trust-${ref}.erasure.txt`), 'utf8'), cert: JSON.parse(json) as Cert };
    };
    genuine = await certsOf('trustctl_test_op', erasedChild, 'ER-GENUINE');
    own = await certsOf('trustctl_test_op2', ownChild, 'ER-OWN');
  });
  afterAll(async () => {
    await restoredPool?.end();
    if (restored) {
      const c = new pg.Client(inject('adminConfig'));
      await c.connect();
      await c.query(`drop database if exists ${restored} with (force)`);
      await c.end();
    }
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('an operator cannot get a seal from SQL for a ledger row they wrote: no request, another child’s request, an access request, another operator’s session', async () => {
    const victimSession = genuine.cert.operator_session.id!;
    const forged = (over: Partial<Cert>) => {
      const cert: Cert = { ...genuine.cert, erasure_id: randomUUID(), subject: { type: 'child', id: target }, erased_at: new Date().toISOString(), ...over };
      return { cert, json: `${JSON.stringify(cert, null, 2)}\n` };
    };
    const states = await asOperator('trustctl_test_op2', async (c, session) => {
      const out: Record<string, string> = {};
      const at = (await c.query(`select transaction_timestamp() as t`)).rows[0].t.toISOString();
      const attempt = async (name: string, f: { cert: Cert; json: string }, requestId: string | null, rowSession: string) => {
        await c.query('savepoint row');
        try {
          // Since migration 0017 the ledger itself refuses a row no erasure purpose covers (TC044), before any seal is asked for.
          await insertLedgerRow(c, f.cert, f.json, requestId, rowSession);
          out[name] = await stateOf(c, `select app.erasure_certificate_seal($1, $2)`, [OAK, f.cert.erasure_id]);
        } catch (error) {
          out[name] = (error as { code?: string }).code ?? 'error';
        }
        await c.query('rollback to savepoint row');
      };
      const mine = { operator_session: { id: session, operator: 'trustctl_test_op2' }, erased_at: at };
      // No erasure request for the child at all.
      await attempt('no request', forged({ ...mine, request: { reference: 'FORGED-1' } }), null, session);
      // The victim's genuine erasure request, which is about another child.
      const genuineRequest = (await c.query(`select id from dsar_requests where org_id = $1 and reference = 'ER-GENUINE'`, [OAK])).rows[0].id;
      await attempt('another child’s request', forged({ ...mine, request: { reference: 'ER-GENUINE' } }), genuineRequest, session);
      // An access request for the child (made up in this transaction).
      const access = (await c.query(`insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on, kind)
        values ($1, $2, 'SAR-FORGED', 'child', $3, current_date, (current_date + interval '1 month')::date, 'access') returning id`, [OAK, OAK_PRIMARY, target])).rows[0].id;
      await attempt('access request', forged({ ...mine, request: { reference: 'SAR-FORGED' } }), access, session);
      // A real erasure request (made up here too), but the row and certificate name the victim's session.
      const erasure = (await c.query(`insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on, kind)
        values ($1, $2, 'ER-FORGED', 'child', $3, current_date, (current_date + interval '1 month')::date, 'erasure') returning id`, [OAK, OAK_PRIMARY, target])).rows[0].id;
      await attempt('victim’s session', forged({ request: { reference: 'ER-FORGED' }, operator_session: genuine.cert.operator_session, erased_at: at }), erasure, victimSession);
      // The victim's genuine ledger row: not the caller's session, and not written in this transaction.
      out['victim’s ledger row'] = await stateOf(c, `select app.erasure_certificate_seal($1, $2)`, [OAK, genuine.cert.erasure_id]);
      // The key tables themselves.
      out['read the keys'] = await stateOf(c, `select * from trustctl_private.erasure_certificate_keys`, []);
      return out;
    });
    expect(states).toEqual({
      'no request': 'TC044',
      'another child’s request': 'TC044',
      'access request': 'TC044',
      'victim’s session': 'TC044',
      'victim’s ledger row': 'TC046',
      'read the keys': '42501',
    });
  });

  it('a ledger row naming another request of its person by id gets no seal, though another organisation holds a fitting request of that id (ids are unique per organisation only)', async () => {
    const states = await asOperator('trustctl_test_op2', async (c, session) => {
      const at = (await c.query(`select transaction_timestamp() as t`)).rows[0].t.toISOString();
      const request = (reference: string, kind: string) =>
        c.query(`insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on, kind)
          values ($1, $2, $3, 'child', $4, current_date, (current_date + interval '1 month')::date, $5) returning id`, [OAK, OAK_PRIMARY, reference, target, kind])
          .then((r) => r.rows[0].id as string);
      const access = await request('SAR-TWIN', 'access');
      const erasure = await request('ER-TWIN', 'erasure');
      // The twin: at Little Acorns, with the access request's id, an erasure request that fits the ledger row in every field.
      await c.query(`insert into dsar_requests (org_id, id, reference, subject_type, subject_id, received_on, due_on, kind)
        values ($1, $2, 'ER-TWIN', 'child', $3, current_date, (current_date + interval '1 month')::date, 'erasure')`, [ACORNS, access, target]);
      await c.query(`select app.begin_erasure($1, 'ER-TWIN', $2::uuid)`, [OAK, target]);
      const cert: Cert = { ...genuine.cert, erasure_id: randomUUID(), subject: { type: 'child', id: target }, request: { reference: 'ER-TWIN' },
        operator_session: { id: session, operator: 'trustctl_test_op2' }, erased_at: at };
      const json = `${JSON.stringify(cert, null, 2)}\n`;
      const sealFor = async (requestId: string) => {
        await c.query('savepoint row');
        try {
          await insertLedgerRow(c, cert, json, requestId, session);
          return await stateOf(c, `select app.erasure_certificate_seal($1, $2)`, [OAK, cert.erasure_id]);
        } finally {
          await c.query('rollback to savepoint row');
        }
      };
      return { 'the access request’s id': await sealFor(access), 'the erasure request’s id (control)': await sealFor(erasure) };
    }, ['oak-trust', 'little-acorns']);
    expect(states).toEqual({ 'the access request’s id': 'TC046', 'the erasure request’s id (control)': 'ok' });
  });

  it('a certificate for a child with no erasure request, sealed every way an operator can, is refused by another operator’s replay: nothing erased, nothing recorded', async () => {
    const victimSession = genuine.cert.operator_session.id!;
    // The victim's certificate, made about the target: new id and request, the victim's session left in.
    const cert: Cert = { ...genuine.cert, erasure_id: randomUUID(), request: { reference: 'ER-PLANTED' }, subject: { type: 'child', id: target } };
    const json = `${JSON.stringify(cert, null, 2)}\n`;
    // Every seal the attacker can make, and the victim's own (copied from the genuine .txt).
    const seals = [...(await attackerSeals(json)), sealIn(genuine.text)];
    // In the live database (the victim's earlier session is there) and in a restored copy (no ledger at all to compare with).
    for (const [database, pool] of [[db.name, db.admin], [restored, restoredPool]] as const) {
      const before = { target: await footprint(pool, target), records: await records(pool, victimSession) };
      for (const seal of seals) {
        const r = await replay(await plant('no-request', json, seal), database);
        expect(r.code, r.stderr).toBe(3);
        expect(oneLine(r.stderr), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(/^trustctl: .*oak-trust-ER-PLANTED\.erasure\.json: its seal does not verify/);
      }
      expect(await footprint(pool, target)).toEqual(before.target);
      expect(await records(pool, victimSession)).toEqual(before.records);
    }
  });

  it('a genuine certificate with its subject, request or session edited is refused, with its own seal or one the attacker makes', async () => {
    const victimSession = genuine.cert.operator_session.id!;
    const edits: Record<string, Partial<Cert>> = {
      subject: { subject: { type: 'child', id: target } },
      request: { request: { reference: 'ER-GENUINE' } },
      session: { operator_session: genuine.cert.operator_session },
    };
    const ownSeal = sealIn(own.text);
    const before = {
      target: await footprint(restoredPool, target),
      own: await footprint(restoredPool, ownChild),
      records: await records(restoredPool, victimSession),
    };
    for (const [field, edit] of Object.entries(edits)) {
      const json = `${JSON.stringify({ ...own.cert, ...edit }, null, 2)}\n`;
      for (const seal of [...(await attackerSeals(json)), ownSeal]) {
        const r = await replay(await plant(`edit-${field}`, json, seal, own.text), restored);
        expect(r.code, `${field}: ${r.stderr}`).toBe(3);
        expect(oneLine(r.stderr), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(/its seal does not verify/);
      }
    }
    expect(await footprint(restoredPool, target)).toEqual(before.target);
    expect(await footprint(restoredPool, ownChild)).toEqual(before.own);
    expect(await records(restoredPool, victimSession)).toEqual(before.records);
  });

  it('a certificate sealed the old way (format /1, the pseudonym seal) is refused with one line saying what to do', async () => {
    const cert: Cert = { ...genuine.cert, format: 'trustctl-erasure-certificate/1', erasure_id: randomUUID(), request: { reference: 'ER-OLD' }, subject: { type: 'child', id: target } };
    const json = `${JSON.stringify(cert, null, 2)}\n`;
    const [pseudonymSeal] = await attackerSeals(json);
    const oldText = genuine.text.replace(/^Seal \([^)]*\): +\S+$/m, `Seal (organisation key): ${pseudonymSeal}`);
    const dir = await plant('old', json, pseudonymSeal!, oldText);
    const before = await footprint(restoredPool, target);
    const r = await replay(dir, restored);
    expect(r.code, r.stderr).toBe(2);
    expect(oneLine(r.stderr), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/oak-trust-ER-OLD\.erasure\.json: sealed before migration 0019.*dsar erase/);
    expect(await footprint(restoredPool, target)).toEqual(before);
  });

  it('a genuine certificate replays after a restore under the replaying operator’s session, not the one named in the file; its seal is HMAC-SHA256 under a key only the database holds', async () => {
    const victimSession = genuine.cert.operator_session.id!;
    // The seal, recomputed here from the key (readable only by a superuser): HMAC-SHA256 over what the certificate says.
    const key = (await db.admin.query(`select key from trustctl_private.erasure_certificate_keys where org_id = $1`, [OAK])).rows[0].key as Buffer;
    const pseudonymKey = (await db.admin.query(`select key from trustctl_private.pseudonym_keys where org_id = $1`, [OAK])).rows[0].key as Buffer;
    expect(key.equals(pseudonymKey)).toBe(false);
    const c = genuine.cert;
    const message = JSON.stringify(['trustctl-erasure-certificate/2', c.organisation.id, c.erasure_id, c.subject.type, c.subject.id,
      c.request.reference, c.operator_session.id, sha256(genuine.json)]).replaceAll(',', ', ');
    expect(sealIn(genuine.text)).toBe(createHmac('sha256', key).update(message).digest('hex'));

    const dir = await mkdtemp(join(work, 'genuine-'));
    await writeFile(join(dir, 'oak-trust-ER-GENUINE.erasure.json'), genuine.json);
    await writeFile(join(dir, 'oak-trust-ER-GENUINE.erasure.txt'), genuine.text);
    const r = await replay(dir, restored, 'trustctl_test_op2');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).erasures.map((o: { ledger_restored: boolean }) => o.ledger_restored)).toEqual([true]);
    const row = (await restoredPool.query(`select e.operator_session_id, s.db_user from erasures e
      left join operator_sessions s on s.id = e.operator_session_id where e.id = $1`, [c.erasure_id])).rows[0];
    expect(row.operator_session_id).not.toBe(victimSession);
    expect(row.db_user).toBe('trustctl_test_op2');
    const events = (await restoredPool.query(`select e.operator_session_id, s.db_user from audit_events e
      join operator_sessions s on s.id = e.operator_session_id where e.action = 'dsar.erase' and e.target_id = $1`, [c.erasure_id])).rows;
    expect(events.map((e) => e.db_user)).toEqual(['trustctl_test_op2']);
    expect(await records(restoredPool, victimSession)).toMatchObject({ ledger_in_session: 0, events_in_session: 0 });
  });
});
