// The operator's door: refused without a reason, a valid ticket or a known
// organisation; honoured only for its own operator, while open and young;
// context that never outlives its transaction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { runCli } from '../support/cli.js';
import { withOperatorSession } from '../../src/db/operator-session.js';
import { RefusedError } from '../../src/errors.js';
import type { Database } from '../../src/db/schema.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const begin = (c: pg.Client, reason: string | null, ticket: string | null, orgs: string[] | null, all = false) =>
  c.query(`select * from app.begin_operator_session($1, $2, $3, $4, 'vitest', 'ci', 'ci')`, [reason, ticket, orgs, all]);
const errorCode = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);
const sessionsCount = async () => Number((await db.admin.query('select count(*) from operator_sessions')).rows[0].count);

describe('opening a session', () => {
  it('refuses a missing or blank reason, an unknown organisation, and a non-operator, recording nothing', async () => {
    const before = await sessionsCount();
    await db.withClient('trustctl_test_op', async (c) => {
      expect(await errorCode(begin(c, null, null, ['oak-trust']))).toBe('TC001');
      expect(await errorCode(begin(c, '   ', null, ['oak-trust']))).toBe('TC001');
      expect(await errorCode(begin(c, 'why', null, ['oak-trust', 'no-such-org']))).toBe('TC003');
    });
    // Not an operator: no EXECUTE on the function at all.
    await db.withClient('trustctl_test_app', async (c) => {
      expect(await errorCode(begin(c, 'why', null, ['oak-trust']))).toBe('42501');
    });
    expect(await sessionsCount()).toBe(before);
  });

  it('enforces the ticket policy from platform_settings', async () => {
    await db.admin.query(`update platform_settings set value = 'true' where key = 'ticket_required'`);
    await db.admin.query(`update platform_settings set value = '^SUP-[0-9]+$' where key = 'ticket_pattern'`);
    try {
      await db.withClient('trustctl_test_op', async (c) => {
        expect(await errorCode(begin(c, 'why', null, ['oak-trust']))).toBe('TC002');
        expect(await errorCode(begin(c, 'why', 'JIRA-1', ['oak-trust']))).toBe('TC002');
        expect(await errorCode(begin(c, 'why', 'SUP-42', ['oak-trust']))).toBe('ok');
      });
    } finally {
      await db.admin.query(`update platform_settings set value = 'false' where key = 'ticket_required'`);
      await db.admin.query(`update platform_settings set value = '' where key = 'ticket_pattern'`);
    }
  });

  it('records who, from where, why and the scope', async () => {
    const id = await db.withClient('trustctl_test_op', async (c) => (await begin(c, 'DSAR-9 lookup', 'T-9', ['little-acorns'])).rows[0].session_id);
    const row = (await db.admin.query('select * from operator_sessions where id = $1', [id])).rows[0];
    expect(row.db_user).toBe('trustctl_test_op');
    expect(row.reason).toBe('DSAR-9 lookup');
    expect(row.ticket).toBe('T-9');
    expect(row.command).toBe('vitest');
    expect(row.client_addr).toBe('127.0.0.1');
    const org = (await db.admin.query(`select org_id from organisations where slug = 'little-acorns'`)).rows[0].org_id;
    expect(row.org_ids).toEqual([org]);
    expect(row.expires_at.getTime() - row.started_at.getTime()).toBe(8 * 3600 * 1000);
  });
});

describe('honouring a session', () => {
  const childrenSeen = (c: pg.Client, session: string) =>
    c
      .query('begin')
      .then(() => c.query(`select set_config('app.operator_session', $1, true)`, [session]))
      .then(() => c.query('select count(*)::int as n from children'))
      .then(async (r) => {
        await c.query('commit');
        return r.rows[0].n as number;
      });

  it('sets context per transaction only: the next transaction on the same connection sees nothing', async () => {
    await db.withClient('trustctl_test_op', async (c) => {
      const id = (await begin(c, 'why', null, ['oak-trust'])).rows[0].session_id;
      expect(await childrenSeen(c, id)).toBeGreaterThan(0);
      expect((await c.query('select count(*)::int as n from children')).rows[0].n).toBe(0);
    });
  });

  it('stops honouring an ended session, and one past its maximum age', async () => {
    await db.withClient('trustctl_test_op', async (c) => {
      const ended = (await begin(c, 'why', null, ['oak-trust'])).rows[0].session_id;
      await c.query(`select app.end_operator_session($1, 'success')`, [ended]);
      expect(await childrenSeen(c, ended)).toBe(0);

      await db.admin.query(`update platform_settings set value = '1 second' where key = 'operator_session_max_age'`);
      try {
        const short = (await begin(c, 'why', null, ['oak-trust'])).rows[0].session_id;
        expect(await childrenSeen(c, short)).toBeGreaterThan(0);
        await new Promise((r) => setTimeout(r, 1200));
        expect(await childrenSeen(c, short)).toBe(0);
      } finally {
        await db.admin.query(`update platform_settings set value = '8 hours' where key = 'operator_session_max_age'`);
      }
    });
  });

  it('rejects a malformed session id instead of failing open', async () => {
    await db.withClient('trustctl_test_op', async (c) => {
      await c.query('begin');
      await c.query(`select set_config('app.operator_session', 'not-a-uuid', true)`);
      expect(await errorCode(c.query('select count(*) from children'))).toBe('22P02');
      await c.query('rollback');
    });
  });
});

describe('withOperatorSession', () => {
  function kysely(): Kysely<Database> {
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url('trustctl_test_op') }) }) });
  }
  const logger = pino({ level: 'silent' });

  it('closes the session with outcome success, or failure when the work throws', async () => {
    const k = kysely();
    try {
      const ok = await withOperatorSession(k, { reason: 'count', orgSlugs: ['oak-trust'], command: 'test' }, async (s) => {
        const n = await s.transaction((trx) => trx.selectFrom('children').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow());
        return { id: s.id, n: Number(n.n) };
      }, { logger });
      expect(ok.n).toBeGreaterThan(0);
      let failedId = '';
      await expect(
        withOperatorSession(k, { reason: 'boom', orgSlugs: ['oak-trust'], command: 'test' }, async (s) => {
          failedId = s.id;
          throw new Error('boom');
        }, { logger }),
      ).rejects.toThrow('boom');
      const rows = await db.admin.query('select id, outcome, ended_at is not null as ended from operator_sessions where id = any($1) order by outcome', [[ok.id, failedId]]);
      expect(rows.rows).toEqual([
        { id: failedId, outcome: 'failure', ended: true },
        { id: ok.id, outcome: 'success', ended: true },
      ]);
    } finally {
      await k.destroy();
    }
  });

  it('refuses without a reason before touching the database', async () => {
    const before = await sessionsCount();
    const k = kysely();
    try {
      await expect(withOperatorSession(k, { reason: ' ', orgSlugs: ['oak-trust'], command: 'x' }, async () => 1, { logger })).rejects.toBeInstanceOf(RefusedError);
    } finally {
      await k.destroy();
    }
    expect(await sessionsCount()).toBe(before);
  });
});

describe('the recorded command line', () => {
  it('holds no part of a password with "@" and other URL characters, in operator_sessions and its audit event', async () => {
    const role = `trustctl_test_redact_${process.pid}`;
    const password = 'Tr0ub4dor@horse-battery-staple:q?x#y';
    await db.admin.query(`drop role if exists ${role}`);
    await db.admin.query(`create role ${role} login password '${password}' in role trustctl_operator`);
    try {
      const known = new URL(db.url('trustctl_test_op'));
      const [host, port, database] = [known.hostname, known.port, known.pathname.slice(1)];
      // The "@" raw, as people type it; the rest percent-encoded so the driver can connect.
      const url = `postgres://${role}:Tr0ub4dor@${encodeURIComponent(password.slice('Tr0ub4dor@'.length))}@${host}:${port}/${database}`;
      const r = await runCli(['--database-url', url, 'org', 'show', 'oak-trust', '--reason', 'redaction check', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const id = JSON.parse(r.stdout).operatorSessionId;
      const row = (await db.admin.query('select command from operator_sessions where id = $1', [id])).rows[0];
      const event = (await db.admin.query(
        `select context->>'command' as command from audit_events where operator_session_id = $1 and action = 'operator_session.start'`, [id])).rows;
      expect(event.length).toBeGreaterThan(0);
      for (const command of [row.command, ...event.map((e: { command: string }) => e.command)]) {
        expect(command).toBe(`trustctl --database-url postgres://${role}:***@${host}:${port}/${database} org show oak-trust --reason redaction check --json`);
        for (const piece of ['Tr0ub4dor', 'horse', 'battery', 'staple', 'q%3Fx', 'q?x', '%23y']) expect(command).not.toContain(piece);
      }
    } finally {
      await db.admin.query(`drop role if exists ${role}`);
    }
  });
});
