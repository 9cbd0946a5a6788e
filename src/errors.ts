// The error classes trustctl throws on purpose, and the exit code each maps
// to. src/cli.ts holds the one boundary that turns them into exit codes.

/** Documented exit codes. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  refused: 2,
  verificationFailed: 3,
  interrupted: 130,
} as const;

/**
 * Bad input, a missing reason or confirmation, or a connection that policy
 * forbids. Nothing was changed. Exit 2.
 *
 * @example
 * throw new RefusedError('unknown organisation "acme"', 'List them with: trustctl org list')
 */
export class RefusedError extends Error {
  override name = 'RefusedError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/**
 * A check found tampering or a mismatch (a certificate whose seal or
 * SHA-256 does not verify). Nothing was changed. Exit 3.
 *
 * @example
 * throw new VerificationError('ER-7.erasure.json: its seal does not verify', 'Use the original certificate')
 */
export class VerificationError extends Error {
  override name = 'VerificationError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** The database could not be reached or did not behave. Exit 1. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** SQLSTATEs raised by trustctl's own database functions (class TC). */
export const refusalSqlStates: ReadonlySet<string> = new Set([
  'TC001', // reason missing
  'TC002', // ticket missing or malformed
  'TC003', // unknown organisation
  'TC004', // not an operator
  'TC005', // no open operator session covers the organisation
  'TC010', // audit trail is append-only
  'TC013', // app.audit_record: not an action operators record
  'TC014', // audit prune: no audit_events policy, or events inside its period
  'TC015', // audit prune: a legal hold covers the prefix
  'TC020', // guardian roles are not granted (guardianships)
  'TC021', // no access policy for the role
  'TC022', // grant too long, backdated, or not time-boxed for another organisation's user
  'TC023', // ticket does not match the access policy
  'TC024', // a grant cannot be changed that way
  'TC025', // self-approval
  'TC026', // only the pinned platform organisation is of kind platform
  'TC030', // the acting user or operator session changed inside the transaction (docs/threat-model.md)
  'TC040', // an operator's change of personal data outside a checked purpose
  'TC041', // a legal hold covers the row (or a hold deleted or moved)
  'TC042', // one purpose per transaction
  'TC043', // a retention run the policy in force does not allow
  'TC044', // no open erasure request for the person; a request's identity never changes
  'TC045', // the erasure ledger changes only in its pending media removals and delivery
  'TC046', // an erasure certificate cannot be sealed (not this session's erasure, no erasure request)
  'TC047', // a retention policy its author changed in the last 24 hours: another operator applies it
]);

/** Maps any thrown value to the documented exit code. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof RefusedError) return ExitCode.refused;
  if (error instanceof VerificationError) return ExitCode.verificationFailed;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (refusalSqlStates.has(code)) return ExitCode.refused;
    // commander's own usage errors
    if (code.startsWith('commander.')) return ExitCode.refused;
    // invalid_text_representation (e.g. a malformed uuid), insufficient_privilege,
    // an invalid regular expression, a CHECK constraint (the database refused bad input)
    if (code === '22P02' || code === '42501' || code === '2201B' || code === '23514') return ExitCode.refused;
  }
  return ExitCode.failed;
}

/**
 * True when the error says the database connection went away mid-command
 * (the server stopped or was killed, an administrator ended the backend,
 * the network dropped): the driver's own words for it vary with the moment.
 */
export function isConnectionLost(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    ['57P01', '57P02', '57P03', '08000', '08003', '08006', 'ECONNRESET', 'EPIPE'].includes(code) ||
    /^Connection terminated|not queryable|terminating connection due to/.test(message)
  );
}

/** The one line shown for a lost connection, and what to do. */
export const CONNECTION_LOST = {
  message: 'the connection to the database was lost mid-command (the server stopped, or the connection was cut)',
  hint: 'Nothing uncommitted was kept; when the database is back, run the command again',
} as const;

/** The hint attached to an error, if any: from our classes or from PostgreSQL. */
export function hintFor(error: unknown): string | undefined {
  const hint = (error as { hint?: unknown } | null)?.hint;
  return typeof hint === 'string' && hint.length > 0 ? hint : undefined;
}
