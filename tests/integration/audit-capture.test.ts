// The audit trail: append-only for everyone, and every change captured with
// its actor, without copying free-text personal data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** An open erasure request for a person: operators change personal rows only under one (or a sweep run). */
async function erasureRequest(reference: string, type: 'child' | 'staff', subject: string): Promise<void> {
  await db.admin.query(`insert into dsar_requests (org_id, reference, subject_type, subject_id, received_on, due_on, kind)
    values ($1, $2, $3, $4, current_date, (current_date + interval '1 month')::date, 'erasure')`, [OAK, reference, type, subject]);
}

async function openSession(): Promise<string> {
  return db.withClient('trustctl_test_op', async (c) => {
    const res = await c.query(
      `select session_id from app.begin_operator_session('audit test', 'T-1', array['oak-trust'], false, 'vitest', 'ci', 'ci')`,
    );
    return res.rows[0].session_id as string;
  });
}

describe('append-only', () => {
  // The trail up to event upTo (everything when omitted): its last id and a hash of its rows.
  const snapshot = async (upTo?: string) =>
    (
      await db.admin.query(
        `select max(id) as max, md5(string_agg(id::text || action || coalesce(target_id, ''), ',' order by id)) as h
           from audit_events where $1::bigint is null or id <= $1::bigint`,
        [upTo ?? null],
      )
    ).rows[0];

  // Expected outcome per role: the trigger's TC010; missing privilege (42501)
  // for an operator; for the owner, forced RLS hides every row, so UPDATE and
  // DELETE touch nothing and TRUNCATE (which ignores RLS) meets the trigger.
  const expected = {
    superuser: { update: 'TC010', delete: 'TC010', truncate: 'TC010' },
    owner: { update: 'no rows', delete: 'no rows', truncate: 'TC010' },
    operator: { update: '42501', delete: '42501', truncate: '42501' },
  } as const;

  for (const who of ['superuser', 'owner', 'operator'] as const) {
    it(`refuses UPDATE, DELETE and TRUNCATE of audit_events as the ${who}`, async () => {
      const session = who === 'operator' ? await openSession() : null;
      const before = await snapshot();
      const c = await db.connect(who === 'operator' ? 'trustctl_test_op' : 'admin');
      const outcomes: Record<string, string> = {};
      try {
        for (const [op, stmt] of [
          ['update', `update audit_events set action = 'forged' where org_id = '${OAK}'`],
          ['delete', `delete from audit_events where org_id = '${OAK}'`],
          ['truncate', `truncate audit_events`],
        ] as const) {
          await c.query('begin');
          if (who === 'owner') await c.query('set local role trustctl_owner');
          if (session) await c.query(`select set_config('app.operator_session', $1, true)`, [session]);
          outcomes[op] = await c.query(stmt).then(
            (r) => (r.rowCount ? `${r.rowCount} rows` : 'no rows'),
            (e: { code?: string }) => e.code ?? 'error',
          );
          await c.query('rollback');
        }
      } finally {
        await c.end();
      }
      expect(outcomes).toEqual(expected[who]);
      expect(await snapshot(before.max)).toEqual(before);
    });
  }

  it('refuses a direct INSERT by an operator or an app user (events come only from triggers and app.audit_record)', async () => {
    for (const role of ['trustctl_test_op', 'trustctl_test_app'] as const) {
      const error = await db.withClient(role, (c) =>
        c.query(`insert into audit_events (org_id, actor_type, action) values ($1, 'system', 'forged')`, [OAK]).then(
          () => null,
          (e: { code?: string }) => e,
        ),
      );
      expect(error?.code).toBe('42501');
    }
  });
});

describe('capture', () => {
  it('records an app user’s change with the user as actor and only the changed column names', async () => {
    const teacher = demoId('staff:oak-primary:teacher:1');
    const note = await db.admin.query(
      `select n.id from notes n join group_memberships t on t.group_id in
         (select group_id from group_memberships where child_id = n.child_id) and t.staff_id = $1
       where n.site_id = $2 and n.kind = 'positive' limit 1`,
      [teacher, OAK_PRIMARY],
    );
    const noteId = note.rows[0].id as string;
    const res = await db.inTransaction('trustctl_test_app', { 'app.user_id': teacher }, (c) =>
      c.query(`update notes set body = 'Secret new wording about the child' where id = $1`, [noteId]), { commit: true });
    expect(res.rowCount).toBe(1);
    const ev = await db.admin.query(
      `select actor_type, actor_id, action, target_id, subject_ids, context, operator_session_id
         from audit_events where target_id = $1 and action = 'notes.update'`,
      [noteId],
    );
    expect(ev.rows).toHaveLength(1);
    const row = ev.rows[0];
    expect(row.actor_type).toBe('user');
    expect(row.actor_id).toBe(teacher);
    expect(row.operator_session_id).toBeNull();
    expect(row.context).toEqual({ changed: ['body'] });
    expect(JSON.stringify(row)).not.toContain('Secret new wording');
    // The child the note is about and the member of staff who wrote it.
    const noted = await db.admin.query(`select child_id, author_id from notes where id = $1`, [noteId]);
    expect(row.subject_ids).toEqual([noted.rows[0].child_id, noted.rows[0].author_id].filter(Boolean));
  });

  it('records an operator’s change with the operator session and ticket (the reason stays on the session)', async () => {
    const session = await openSession();
    const child = demoId('child:oak-primary:2');
    await erasureRequest('ER-CAPTURE-1', 'child', child);
    const res = await db.inTransaction('trustctl_test_op', { 'app.operator_session': session }, async (c) => {
      await c.query(`select app.begin_erasure($1, 'ER-CAPTURE-1', $2)`, [OAK, child]);
      // What erasure does to a preferred name (an operator's UPDATE may only anonymise, migration 0017).
      return c.query(`update children set preferred_name = null where id = $1`, [child]);
    }, { commit: true });
    expect(res.rowCount).toBe(1);
    const ev = await db.admin.query(
      `select actor_type, actor_id, operator_session_id, reason, ticket, subject_ids from audit_events
        where target_id = $1 and action = 'children.update'`,
      [child],
    );
    expect(ev.rows).toEqual([
      {
        actor_type: 'operator',
        actor_id: 'trustctl_test_op',
        operator_session_id: session,
        // The session's reason ('audit test') stays on the session: free text, out of the sealed trail (migration 0022).
        reason: null,
        ticket: 'T-1',
        subject_ids: [child],
      },
    ]);
  });

  it('records deletes, and the start and end of operator sessions', async () => {
    const session = await openSession();
    const shift = await db.admin.query(`select id, staff_id from rota_shifts where org_id = $1 order by id limit 1`, [OAK]);
    await erasureRequest('ER-CAPTURE-2', 'staff', shift.rows[0].staff_id);
    const deleted = await db.inTransaction('trustctl_test_op', { 'app.operator_session': session }, async (c) => {
      await c.query(`select app.begin_erasure($1, 'ER-CAPTURE-2', $2)`, [OAK, shift.rows[0].staff_id]);
      return c.query(`delete from rota_shifts where id = $1`, [shift.rows[0].id]);
    }, { commit: true });
    expect(deleted.rowCount).toBe(1);
    const ended = await db.withClient('trustctl_test_op', (c) => c.query(`select app.end_operator_session($1, 'success') as ok`, [session]));
    expect(ended.rows[0].ok).toBe(true);
    const ev = await db.admin.query(
      `select action, outcome from audit_events where operator_session_id = $1 order by id`,
      [session],
    );
    expect(ev.rows).toEqual([
      { action: 'operator_session.start', outcome: 'success' },
      { action: 'rota_shifts.delete', outcome: 'success' },
      { action: 'operator_session.end', outcome: 'success' },
    ]);
  });

  it('has an audit trigger on every tenant table but the audit trail itself', async () => {
    const missing = await db.admin.query(`
      select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r'
        -- The audit trail and its seal are the capture's output, not its input.
        and c.relname not in ('audit_events', 'audit_chain', 'audit_checkpoints', 'audit_anchors')
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id')
        and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = 'audit_capture')`);
    expect(missing.rows).toEqual([]);
  });
});
