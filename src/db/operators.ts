// Operator LOGIN roles: members of trustctl_operator, never superuser,
// BYPASSRLS or owner. Passwords are sent as SCRAM-SHA-256 verifiers computed
// here, so the plaintext never reaches the server or its statement log.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { ClientBase } from 'pg';
import { RefusedError } from '../errors.js';

const RESERVED = new Set(['trustctl_owner', 'trustctl_definer', 'trustctl_operator', 'trustctl_probe', 'app_user', 'postgres', 'public']);
/** Membership in any of these makes a role the platform's or trustctl's own, never an operator's. */
const RESERVED_GROUPS = ['app_user', 'trustctl_owner', 'trustctl_definer', 'trustctl_probe'];

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
 * the password of an existing operator; either way makes it a member of
 * trustctl_operator. An existing role that is not yet an operator is taken
 * over only with adopt, and a reserved one (see reservedReason) never.
 * Needs an administrative connection (CREATEROLE).
 *
 * @example
 * await ensureOperatorRole(adminClient, 'alice', password)
 */
export async function ensureOperatorRole(
  client: ClientBase,
  name: string,
  password: string,
  { resetPassword = true, adopt = false }: { resetPassword?: boolean; adopt?: boolean } = {},
): Promise<OperatorRoleResult> {
  parseOperatorName(name);
  if (password.length < 12) {
    throw new RefusedError('the operator password must be at least 12 characters');
  }
  const ident = client.escapeIdentifier(name);
  const verifier = client.escapeLiteral(scramVerifier(password));
  const existing = await client.query<ExistingRole>(
    `select r.rolsuper, r.rolbypassrls,
            pg_has_role(r.oid, 'trustctl_operator', 'MEMBER') as operator,
            (select array_agg(g.rolname::text order by g.rolname) from pg_roles g
              where g.rolname = any($2::text[]) and pg_has_role(r.oid, g.oid, 'MEMBER')) as reserved_groups,
            exists (select from pg_auth_members m where m.roleid = r.oid) as has_members
       from pg_roles r where r.rolname = $1`,
    [name, RESERVED_GROUPS],
  );
  const row = existing.rows[0];
  if (row) {
    const reserved = reservedReason(row);
    if (reserved) throw new RefusedError(`role "${name}" ${reserved}; it cannot be an operator`, 'Choose a new name for the operator');
    if (!row.operator && !adopt) {
      throw new RefusedError(
        `role "${name}" already exists and is not an operator`,
        'Choose a new name, or pass --adopt to make this role an operator and reset its password',
      );
    }
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

interface ExistingRole {
  rolsuper: boolean;
  rolbypassrls: boolean;
  operator: boolean;
  reserved_groups: string[] | null;
  has_members: boolean;
}

/** Why an existing role may never become an operator, or null. */
function reservedReason(row: ExistingRole): string | null {
  if (row.rolsuper || row.rolbypassrls) return 'is a superuser or BYPASSRLS';
  if (row.reserved_groups?.length) return `is a member of ${row.reserved_groups.join(', ')}`;
  // Granting trustctl_operator to a group would make every member an operator.
  if (row.has_members) return 'has members of its own';
  return null;
}
