// The operator's door into tenant data: an operator session opened with a
// reason (and ticket), scoped to named organisations, recorded in
// operator_sessions and the audit trail, closed with its outcome. Every
// transaction inside it sets app.operator_session transaction-locally, so a
// pooled connection never carries the context into other work.
import { hostname, userInfo } from 'node:os';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { ExitCode, exitCodeFor, RefusedError } from '../errors.js';
import { onInterrupt } from '../lifecycle.js';
import type { Database } from './schema.js';

export interface OperatorScope {
  /** Why the operator is looking; required, recorded in the audit trail. */
  readonly reason: string;
  readonly ticket?: string;
  /** Organisation slugs in scope. */
  readonly orgSlugs?: readonly string[];
  /** Every organisation that exists when the session opens; explicit and audited. */
  readonly allOrgs?: boolean;
  /** The command line, secrets removed. */
  readonly command: string;
}

export interface TransactionOptions {
  readonly isolation?: 'read committed' | 'repeatable read' | 'serializable';
  readonly readOnly?: boolean;
}

export interface OperatorSession {
  readonly id: string;
  readonly orgIds: readonly string[];
  readonly expiresAt: Date;
  /** Runs fn in a transaction with this session's context set locally. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

// Interruption is recorded by the onInterrupt cleanup below, not here.
function outcomeOf(error: unknown): 'failure' | 'refused' {
  const code = exitCodeFor(error);
  // A check that found tampering stopped the command before it changed anything: a refusal too.
  return code === ExitCode.refused || code === ExitCode.verificationFailed ? 'refused' : 'failure';
}

/** Sets the session context for the current transaction only. */
export async function setOperatorContext(trx: Transaction<Database>, sessionId: string): Promise<void> {
  await sql`select set_config('app.operator_session', ${sessionId}, true)`.execute(trx);
}

/**
 * Opens an operator session, runs fn, and closes the session with its
 * outcome (success, failure, refused or interrupted), whatever happens.
 *
 * @example
 * await withOperatorSession(db, { reason: 'DSAR-12', orgSlugs: ['oak-trust'], command }, async (s) =>
 *   s.transaction((trx) => trx.selectFrom('children').select('id').execute()), { logger })
 */
export async function withOperatorSession<T>(
  db: Kysely<Database>,
  scope: OperatorScope,
  fn: (session: OperatorSession) => Promise<T>,
  { logger }: { logger: Logger },
): Promise<T> {
  if (!scope.reason || scope.reason.trim() === '') {
    throw new RefusedError('a reason is required', 'Pass --reason "why you need this" (it is recorded in the audit trail)');
  }
  if (!scope.allOrgs && (!scope.orgSlugs || scope.orgSlugs.length === 0)) {
    throw new RefusedError('no organisation in scope', 'Pass --org SLUG');
  }
  const opened = await sql<{ session_id: string; org_ids: string[]; expires_at: Date }>`
    select * from app.begin_operator_session(
      ${scope.reason}, ${scope.ticket ?? null}, ${scope.orgSlugs ? [...scope.orgSlugs] : null}::text[],
      ${scope.allOrgs ?? false}, ${scope.command}, ${userInfo().username}, ${hostname()})`.execute(db);
  const row = opened.rows[0];
  if (!row) throw new Error('begin_operator_session returned nothing');
  logger.info({ operatorSession: row.session_id, orgIds: row.org_ids }, 'operator session opened');

  let ended = false;
  const end = async (outcome: string): Promise<void> => {
    if (ended) return;
    ended = true;
    await sql`select app.end_operator_session(${row.session_id}::uuid, ${outcome})`.execute(db);
    logger.info({ operatorSession: row.session_id, outcome }, 'operator session closed');
  };
  const unregister = onInterrupt(() => end('interrupted'));

  const session: OperatorSession = {
    id: row.session_id,
    orgIds: row.org_ids,
    expiresAt: row.expires_at,
    transaction: (work, options = {}) => {
      let builder = db.transaction();
      if (options.isolation) builder = builder.setIsolationLevel(options.isolation);
      if (options.readOnly) builder = builder.setAccessMode('read only');
      return builder.execute(async (trx) => {
        await setOperatorContext(trx, row.session_id);
        return work(trx);
      });
    },
  };

  try {
    const result = await fn(session);
    await end('success');
    return result;
  } catch (error) {
    await end(outcomeOf(error)).catch((e: unknown) =>
      logger.warn({ err: (e as Error).message }, 'could not close the operator session'),
    );
    throw error;
  } finally {
    unregister();
  }
}
