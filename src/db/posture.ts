// The run-time role check every operator command passes before touching
// data: trustctl refuses to run as a superuser, a BYPASSRLS role, the owner
// of a tenant table, or a role that is not a trustctl operator.
import type { ClientBase } from 'pg';
import { RefusedError } from '../errors.js';

export interface RolePosture {
  readonly role: string;
  readonly superuser: boolean;
  readonly bypassRls: boolean;
  readonly ownsTables: boolean;
  readonly operator: boolean;
}

export async function readRolePosture(client: ClientBase): Promise<RolePosture> {
  const res = await client.query<{
    role: string;
    superuser: boolean;
    bypass_rls: boolean;
    owns_tables: boolean;
    operator: boolean;
  }>(`
    select r.rolname as role, r.rolsuper as superuser, r.rolbypassrls as bypass_rls,
      exists (
        select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname not in ('pg_catalog', 'information_schema') and c.relkind in ('r', 'p', 'v', 'm', 'f')
          and pg_has_role(r.oid, c.relowner, 'MEMBER')
      ) as owns_tables,
      coalesce((select pg_has_role(r.oid, o.oid, 'USAGE') from pg_roles o where o.rolname = 'trustctl_operator'), false) as operator
    from pg_roles r where r.rolname = current_user`);
  const row = res.rows[0];
  if (!row) throw new Error('could not read the connected role');
  return {
    role: row.role,
    superuser: row.superuser,
    bypassRls: row.bypass_rls,
    ownsTables: row.owns_tables,
    operator: row.operator,
  };
}

/**
 * Throws RefusedError (exit 2) unless the connected role is a plain operator.
 *
 * @example
 * await assertOperatorPosture(client) // as alice: ok; as postgres: refused
 */
export async function assertOperatorPosture(client: ClientBase): Promise<RolePosture> {
  const posture = await readRolePosture(client);
  const fix = 'Connect as an operator role (create one with: trustctl operator add NAME)';
  if (posture.superuser) throw new RefusedError(`refusing to run as superuser "${posture.role}"`, fix);
  if (posture.bypassRls) throw new RefusedError(`refusing to run as BYPASSRLS role "${posture.role}"`, fix);
  if (posture.ownsTables) throw new RefusedError(`refusing to run as "${posture.role}", which owns tables`, fix);
  if (!posture.operator) throw new RefusedError(`role "${posture.role}" is not a member of trustctl_operator`, fix);
  return posture;
}
