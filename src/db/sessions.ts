// Reading the connected operator's own sessions (RLS shows no one else's).
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SessionRecord {
  readonly id: string;
  readonly dbUser: string;
  readonly osUser: string | null;
  readonly host: string | null;
  readonly command: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly orgIds: string[];
  readonly allOrgs: boolean;
  readonly startedAt: Date;
  readonly expiresAt: Date;
  readonly endedAt: Date | null;
  readonly outcome: string | null;
}

/**
 * @example
 * const [latest] = await listOwnSessions(db, { limit: 1 })
 */
export async function listOwnSessions(db: Kysely<Database>, { id, limit }: { id?: string; limit: number }): Promise<SessionRecord[]> {
  let q = db.selectFrom('operator_sessions').selectAll().orderBy('started_at', 'desc').limit(limit);
  if (id) q = q.where('id', '=', id);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    dbUser: r.db_user,
    osUser: r.os_user,
    host: r.host,
    command: r.command,
    reason: r.reason,
    ticket: r.ticket,
    orgIds: r.org_ids,
    allOrgs: r.all_orgs,
    startedAt: r.started_at,
    expiresAt: r.expires_at,
    endedAt: r.ended_at,
    outcome: r.outcome,
  }));
}
