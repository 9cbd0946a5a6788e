// How the attack suite acts: as an operator login with raw SQL (what psql
// gives), or as the platform's request path (app_user with the user
// settings), one transaction at a time, rolled back unless told otherwise.
import type pg from 'pg';
import type { TestDatabase } from './db.js';
import type { TestRoleName } from './roles.js';

export type Query = (sql: string, params?: unknown[]) => Promise<pg.QueryResult>;

/** The SQLSTATE a statement fails with, or 'ok'. */
export const sqlstate = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

/** Opens an operator session as `login` (outside any transaction), as `trustctl` or psql would. */
export async function openSession(c: pg.Client, orgSlugs: readonly string[], reason = 'attack suite'): Promise<string> {
  const r = await c.query(`select session_id from app.begin_operator_session($1, null, $2::text[], false, 'psql', 'attacker', 'attacker')`, [reason, orgSlugs]);
  return r.rows[0].session_id as string;
}

/**
 * Runs fn as an operator with psql: one connection, a session opened over
 * orgSlugs, then one transaction with app.operator_session set. Commits when
 * commit is true (if fn did not fail), else rolls back.
 */
export async function asOperatorInSession<T>(
  db: TestDatabase,
  login: TestRoleName,
  orgSlugs: readonly string[],
  fn: (q: Query, session: string, client: pg.Client) => Promise<T>,
  { commit = false }: { commit?: boolean } = {},
): Promise<T> {
  return db.withClient(login, async (c) => {
    const session = await openSession(c, orgSlugs);
    await c.query('begin');
    try {
      await c.query(`select set_config('app.operator_session', $1, true)`, [session]);
      const out = await fn((sql, params) => c.query(sql, params), session, c);
      await c.query(commit ? 'commit' : 'rollback');
      return out;
    } catch (e) {
      await c.query('rollback');
      throw e;
    }
  });
}

/** Runs fn as the platform's request path for one user (app.user_org_id looked up), rolled back unless commit. */
export function asAppUser<T>(db: TestDatabase, user: string, fn: (q: Query) => Promise<T>, { commit = false } = {}): Promise<T> {
  return db.inTransaction('trustctl_test_app', { 'app.user_id': user }, (c) => fn((sql, params) => c.query(sql, params)), { commit });
}

/** A count as a number, read as the superuser (the independent view). */
export async function countAs(db: TestDatabase, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await db.admin.query(sql, params)).rows[0].count);
}
