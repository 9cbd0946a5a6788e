// Operator LOGIN roles: members of trustctl_operator, never superuser,
// BYPASSRLS or owner. Passwords are sent as SCRAM-SHA-256 verifiers computed
// here, so the plaintext never reaches the server or its statement log.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { ClientBase } from 'pg';
import { RefusedError } from '../errors.js';

const RESERVED = new Set(['trustctl_owner', 'trustctl_definer', 'trustctl_operator', 'app_user', 'postgres', 'public']);

/** Checks an operator role name; throws RefusedError (exit 2) when unusable. */
export function parseOperatorName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name) || name.startsWith('pg_') || RESERVED.has(name)) {
    throw new RefusedError(
      `"${name}" is not a usable operator name`,
      'Use 1-63 lower-case letters, digits or underscores, not starting with a digit or pg_, and not a trustctl role',
    );
  }
  return name;
}

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's stored format.
 *
 * @example
 * scramVerifier('s3cret') // 'SCRAM-SHA-256$4096:…$…:…'
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export interface OperatorRoleResult {
  readonly name: string;
  readonly created: boolean;
}

/**
 * Creates the operator LOGIN role, or (unless resetPassword is false) sets
 * the password of an existing one; either way makes it a member of
 * trustctl_operator. Needs an administrative connection (CREATEROLE).
 *
 * @example
 * await ensureOperatorRole(adminClient, 'alice', password)
 */
export async function ensureOperatorRole(
  client: ClientBase,
  name: string,
  password: string,
  { resetPassword = true }: { resetPassword?: boolean } = {},
): Promise<OperatorRoleResult> {
  parseOperatorName(name);
  if (password.length < 12) {
    throw new RefusedError('the operator password must be at least 12 characters');
  }
  const ident = client.escapeIdentifier(name);
  const verifier = client.escapeLiteral(scramVerifier(password));
  const existing = await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'select rolsuper, rolbypassrls from pg_roles where rolname = $1',
    [name],
  );
  const row = existing.rows[0];
  if (row && (row.rolsuper || row.rolbypassrls)) {
    throw new RefusedError(`role "${name}" exists and is a superuser or BYPASSRLS; it cannot be an operator`);
  }
  if (row && resetPassword) {
    await client.query(`alter role ${ident} login password ${verifier}`);
  } else if (!row) {
    await client.query(
      `create role ${ident} login nosuperuser nobypassrls nocreatedb nocreaterole noreplication password ${verifier}`,
    );
  }
  await client.query(`grant trustctl_operator to ${ident}`);
  return { name, created: !row };
}
