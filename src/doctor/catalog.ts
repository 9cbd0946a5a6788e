// One read of the system catalog: everything the doctor's checks look at.
// Read-only, works as any role (the catalogs are readable by all) on
// PostgreSQL 15 and newer.
import type { ClientBase } from 'pg';

export interface CatalogTable {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** r table, p partitioned table, v view, m materialized view, f foreign table. */
  readonly kind: 'r' | 'p' | 'v' | 'm' | 'f';
  readonly partitionOf: string | null;
  readonly rls: boolean;
  readonly forced: boolean;
  readonly ownerOid: number;
  readonly owner: string;
  /** Column name → attnum. */
  readonly columns: Readonly<Record<string, number>>;
  readonly comment: string | null;
  readonly reloptions: readonly string[];
  /** Privileges granted to PUBLIC. */
  readonly publicPrivileges: readonly string[];
  /** TRUNCATE and REFERENCES grants: grantee oid and privilege. */
  readonly riskyGrants: ReadonlyArray<{ readonly grantee: number; readonly privilege: string }>;
  /** Run-time roles (by oid) that may SELECT it (views, materialized views, foreign tables). */
  readonly readableBy: readonly number[];
  /** Tables and views this view reads (oids). */
  readonly reads: readonly number[];
  /** Run-time roles (by oid) that may INSERT, UPDATE or DELETE its rows. */
  readonly writableBy: { readonly insert: readonly number[]; readonly update: readonly number[]; readonly delete: readonly number[] };
}

export interface CatalogPolicy {
  readonly oid: number;
  readonly tableOid: number;
  readonly name: string;
  /** r SELECT, a INSERT, w UPDATE, d DELETE, * ALL. */
  readonly command: 'r' | 'a' | 'w' | 'd' | '*';
  readonly permissive: boolean;
  /** Role oids; 0 is PUBLIC. */
  readonly roles: readonly number[];
  readonly using: string | null;
  readonly withCheck: string | null;
  readonly usingTree: string | null;
  readonly withCheckTree: string | null;
  /** Columns of its own table the policy reads. */
  readonly columns: readonly string[];
}

export interface CatalogRole {
  readonly oid: number;
  readonly name: string;
  readonly superuser: boolean;
  readonly bypassRls: boolean;
  readonly canLogin: boolean;
  /** Roles it is a direct member of. */
  readonly memberOf: readonly number[];
}

export interface CatalogFunction {
  readonly oid: number;
  readonly signature: string;
  readonly owner: string;
  /** The owner is a superuser or has BYPASSRLS: as a definer, it reads past row-level security. */
  readonly ownerBypassesRls: boolean;
  /** app_user / trustctl_operator (by oid), where they may execute it. */
  readonly executableBy: readonly number[];
  /** sha256 of its body (prosrc), hex. */
  readonly bodySha256: string;
  readonly securityDefiner: boolean;
  readonly leakproof: boolean;
  readonly config: readonly string[];
  readonly source: string;
  readonly publicExecute: boolean;
  readonly comment: string | null;
  /** Returns trigger (runs inside other statements, as their caller unless a definer). */
  readonly isTrigger: boolean;
  /** provolatile: v volatile (may write), s stable, i immutable. */
  readonly volatility: 'v' | 's' | 'i';
}

export interface CatalogIndex {
  readonly oid: number;
  readonly tableOid: number;
  readonly name: string;
  /** Unique, or an exclusion constraint (which is an existence oracle too). */
  readonly unique: boolean;
  /** Key columns (INCLUDE columns left out); 0 for an expression. */
  readonly keys: readonly number[];
  readonly definition: string;
  readonly comment: string | null;
}

export interface CatalogForeignKey {
  readonly name: string;
  readonly tableOid: number;
  readonly refTableOid: number;
  readonly columns: readonly number[];
  readonly refColumns: readonly number[];
  readonly comment: string | null;
}

export interface CatalogTrigger {
  readonly tableOid: number;
  readonly name: string;
  readonly functionName: string;
  readonly rowLevel: boolean;
  readonly before: boolean;
  readonly events: ReadonlySet<'insert' | 'update' | 'delete' | 'truncate'>;
  readonly enabled: boolean;
  readonly args: readonly string[];
}

export interface Catalog {
  readonly serverVersion: string;
  readonly database: string;
  readonly schemas: readonly string[];
  readonly tables: readonly CatalogTable[];
  readonly policies: readonly CatalogPolicy[];
  readonly roles: readonly CatalogRole[];
  /** app_user, trustctl_operator and every role that is a member of either, directly or not. */
  readonly runtimeRoles: ReadonlySet<number>;
  readonly functions: readonly CatalogFunction[];
  readonly indexes: readonly CatalogIndex[];
  readonly foreignKeys: readonly CatalogForeignKey[];
  readonly triggers: readonly CatalogTrigger[];
  /** Schemas where PUBLIC or a run-time role may CREATE. */
  readonly writableSchemas: ReadonlySet<string>;
  readonly currentSettingOids: readonly number[];
}

export const RUNTIME_GROUPS = ['app_user', 'trustctl_operator'] as const;

const num = (v: unknown): number => Number(v);

/** Reads the catalog for the given schemas (relations) and every user schema (functions). */
export async function readCatalog(client: ClientBase, schemas: readonly string[]): Promise<Catalog> {
  const meta = await client.query<{ version: string; db: string; cs: string[] }>(`
    select current_setting('server_version') as version, current_database() as db,
      array['pg_catalog.current_setting(text)'::regprocedure::oid::text,
            'pg_catalog.current_setting(text, boolean)'::regprocedure::oid::text] as cs`);

  const roles = await client.query(`
    select r.oid::int8 as oid, r.rolname as name, r.rolsuper as superuser, r.rolbypassrls as bypass, r.rolcanlogin as login,
      coalesce((select array_agg(m.roleid::int8 order by m.roleid) from pg_auth_members m where m.member = r.oid), '{}') as member_of
    from pg_roles r order by r.rolname`);
  const runtime = await client.query(`
    with recursive rt(oid) as (
      select oid from pg_roles where rolname = any ($1)
      union
      select m.member from pg_auth_members m join rt on m.roleid = rt.oid)
    select oid::int8 as oid from rt`, [RUNTIME_GROUPS]);
  const runtimeOids = runtime.rows.map((r) => num(r.oid));

  const tables = await client.query(`
    select c.oid::int8 as oid, n.nspname as schema, c.relname as name, c.relkind as kind,
      (select pn.nspname || '.' || pc.relname from pg_inherits i join pg_class pc on pc.oid = i.inhparent
         join pg_namespace pn on pn.oid = pc.relnamespace where i.inhrelid = c.oid and c.relispartition) as partition_of,
      c.relrowsecurity as rls, c.relforcerowsecurity as forced, c.relowner::int8 as owner_oid,
      pg_get_userbyid(c.relowner) as owner,
      coalesce((select jsonb_object_agg(a.attname, a.attnum) from pg_attribute a
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as columns,
      obj_description(c.oid, 'pg_class') as comment,
      coalesce(c.reloptions, '{}') as reloptions,
      coalesce((select array_agg(distinct x.p order by x.p) from (
        select a.privilege_type as p from aclexplode(c.relacl) a where a.grantee = 0
        union all
        select a.privilege_type || ' (' || col.attname || ')' from pg_attribute col, aclexplode(col.attacl) a
        where col.attrelid = c.oid and col.attnum > 0 and not col.attisdropped and a.grantee = 0) x), '{}') as public_privileges,
      coalesce((select jsonb_agg(jsonb_build_object('grantee', a.grantee::int8, 'privilege', a.privilege_type) order by a.grantee, a.privilege_type)
        from aclexplode(c.relacl) a where a.privilege_type in ('TRUNCATE', 'REFERENCES') and a.grantee <> 0 and a.grantee <> c.relowner), '[]') as risky,
      coalesce((select array_agg(r order by r) from unnest($2::oid[]) r where has_table_privilege(r, c.oid, 'SELECT')), '{}')::int8[] as readable_by,
      coalesce((select array_agg(r order by r) from unnest($2::oid[]) r where c.relkind in ('r', 'p') and has_table_privilege(r, c.oid, 'INSERT')), '{}')::int8[] as insert_by,
      coalesce((select array_agg(r order by r) from unnest($2::oid[]) r where c.relkind in ('r', 'p') and has_table_privilege(r, c.oid, 'UPDATE')), '{}')::int8[] as update_by,
      coalesce((select array_agg(r order by r) from unnest($2::oid[]) r where c.relkind in ('r', 'p') and has_table_privilege(r, c.oid, 'DELETE')), '{}')::int8[] as delete_by,
      coalesce((select array_agg(distinct d.refobjid::int8) from pg_rewrite rw join pg_depend d
          on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid and d.refclassid = 'pg_class'::regclass and d.refobjid <> c.oid
        where rw.ev_class = c.oid), '{}') as reads
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any ($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by n.nspname, c.relname`, [schemas, runtimeOids]);
  const tableOids = tables.rows.map((r) => num(r.oid));

  const policies = await client.query(`
    select p.oid::int8 as oid, p.polrelid::int8 as table_oid, p.polname as name, p.polcmd as command,
      p.polpermissive as permissive, p.polroles::int8[] as roles,
      pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as with_check,
      p.polqual::text as using_tree, p.polwithcheck::text as with_check_tree,
      coalesce((select array_agg(distinct a.attname::text) from pg_depend d
        join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
        where d.classid = 'pg_policy'::regclass and d.objid = p.oid and d.refobjid = p.polrelid and d.refobjsubid > 0), '{}') as columns
    from pg_policy p where p.polrelid = any ($1::oid[]) order by p.polrelid, p.polname`, [tableOids]);

  const functions = await client.query(`
    select p.oid::int8 as oid, format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as signature,
      p.prosecdef as definer, p.proleakproof as leakproof, coalesce(p.proconfig, '{}') as config,
      pg_get_userbyid(p.proowner) as owner,
      exists (select 1 from pg_roles o where o.oid = p.proowner and (o.rolsuper or o.rolbypassrls)) as owner_bypasses,
      coalesce((select array_agg(r.oid::int8 order by r.oid) from pg_roles r where r.rolname = any ($1) and has_function_privilege(r.oid, p.oid, 'EXECUTE')), '{}') as executable_by,
      encode(sha256(convert_to(coalesce(p.prosrc, ''), 'UTF8')), 'hex') as body_sha256,
      coalesce(p.prosrc, '') as source, has_function_privilege('public', p.oid, 'EXECUTE') as public_execute,
      obj_description(p.oid, 'pg_proc') as comment,
      p.prorettype = 'trigger'::regtype as is_trigger, p.provolatile as volatility
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
    order by 2`, [RUNTIME_GROUPS]);

  const indexes = await client.query(`
    select i.indexrelid::int8 as oid, i.indrelid::int8 as table_oid, ic.relname as name, i.indisunique or i.indisexclusion as unique,
      (i.indkey::int2[])[0:i.indnkeyatts - 1] as keys, pg_get_indexdef(i.indexrelid) as definition, obj_description(i.indexrelid, 'pg_class') as comment
    from pg_index i join pg_class ic on ic.oid = i.indexrelid
    where i.indrelid = any ($1::oid[]) order by ic.relname`, [tableOids]);

  const fks = await client.query(`
    select k.conname as name, k.conrelid::int8 as table_oid, k.confrelid::int8 as ref_table_oid,
      k.conkey as columns, k.confkey as ref_columns, obj_description(k.oid, 'pg_constraint') as comment
    from pg_constraint k where k.contype = 'f' and k.conrelid = any ($1::oid[]) order by k.conname`, [tableOids]);

  const triggers = await client.query(`
    select t.tgrelid::int8 as table_oid, t.tgname as name, n.nspname || '.' || p.proname as function_name,
      t.tgtype::int as type, t.tgenabled in ('O', 'A') as enabled, encode(t.tgargs, 'escape') as args
    from pg_trigger t join pg_proc p on p.oid = t.tgfoid join pg_namespace n on n.oid = p.pronamespace
    where not t.tgisinternal and t.tgrelid = any ($1::oid[]) order by t.tgname`, [tableOids]);

  const writable = await client.query<{ nspname: string }>(`
    select n.nspname from pg_namespace n
    where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'
      and (has_schema_privilege('public', n.oid, 'CREATE')
        or exists (select 1 from unnest($1::oid[]) r where has_schema_privilege(r, n.oid, 'CREATE')))`, [runtimeOids]);

  return {
    serverVersion: meta.rows[0]!.version,
    database: meta.rows[0]!.db,
    schemas: [...schemas],
    currentSettingOids: meta.rows[0]!.cs.map(num),
    roles: roles.rows.map((r) => ({
      oid: num(r.oid),
      name: r.name,
      superuser: r.superuser,
      bypassRls: r.bypass,
      canLogin: r.login,
      memberOf: (r.member_of as unknown[]).map(num),
    })),
    runtimeRoles: new Set(runtimeOids),
    tables: tables.rows.map((r) => ({
      oid: num(r.oid),
      schema: r.schema,
      name: r.name,
      kind: r.kind,
      partitionOf: r.partition_of,
      rls: r.rls,
      forced: r.forced,
      ownerOid: num(r.owner_oid),
      owner: r.owner,
      columns: r.columns,
      comment: r.comment,
      reloptions: r.reloptions,
      publicPrivileges: r.public_privileges,
      riskyGrants: (r.risky as Array<{ grantee: unknown; privilege: string }>).map((g) => ({ grantee: num(g.grantee), privilege: g.privilege })),
      readableBy: (r.readable_by as unknown[]).map(num),
      reads: (r.reads as unknown[]).map(num),
      writableBy: {
        insert: (r.insert_by as unknown[]).map(num),
        update: (r.update_by as unknown[]).map(num),
        delete: (r.delete_by as unknown[]).map(num),
      },
    })),
    policies: policies.rows.map((r) => ({
      oid: num(r.oid),
      tableOid: num(r.table_oid),
      name: r.name,
      command: r.command,
      permissive: r.permissive,
      roles: (r.roles as unknown[]).map(num),
      using: r.using,
      withCheck: r.with_check,
      usingTree: r.using_tree,
      withCheckTree: r.with_check_tree,
      columns: r.columns,
    })),
    functions: functions.rows.map((r) => ({
      oid: num(r.oid),
      signature: r.signature,
      owner: r.owner,
      ownerBypassesRls: r.owner_bypasses,
      executableBy: (r.executable_by as unknown[]).map(num),
      bodySha256: r.body_sha256,
      securityDefiner: r.definer,
      leakproof: r.leakproof,
      config: r.config,
      source: r.source,
      publicExecute: r.public_execute,
      comment: r.comment,
      isTrigger: r.is_trigger,
      volatility: r.volatility,
    })),
    indexes: indexes.rows.map((r) => ({
      oid: num(r.oid),
      tableOid: num(r.table_oid),
      name: r.name,
      unique: r.unique,
      keys: (r.keys as unknown[]).map(num),
      definition: r.definition,
      comment: r.comment,
    })),
    foreignKeys: fks.rows.map((r) => ({
      name: r.name,
      tableOid: num(r.table_oid),
      refTableOid: num(r.ref_table_oid),
      columns: (r.columns as unknown[]).map(num),
      refColumns: (r.ref_columns as unknown[]).map(num),
      comment: r.comment,
    })),
    triggers: triggers.rows.map((r) => {
      const type = Number(r.type);
      const events = new Set<'insert' | 'update' | 'delete' | 'truncate'>();
      if (type & 4) events.add('insert');
      if (type & 8) events.add('delete');
      if (type & 16) events.add('update');
      if (type & 32) events.add('truncate');
      return {
        tableOid: num(r.table_oid),
        name: r.name,
        functionName: r.function_name,
        rowLevel: (type & 1) !== 0,
        before: (type & 2) !== 0,
        events,
        enabled: r.enabled,
        args: String(r.args ?? '').split('\\000').filter((a) => a !== ''),
      };
    }),
    writableSchemas: new Set(writable.rows.map((r) => r.nspname)),
  };
}
