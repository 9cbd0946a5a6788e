// The doctor's catalog checks (docs/doctor.md): pure functions of one
// catalog snapshot, so a run is a single consistent read and the output is
// stable.
import { dataMap, isDerivedClock, type TableMap } from '../datamap/index.js';
import type { Catalog, CatalogRole, CatalogTable } from './catalog.js';
import { acceptedBy, finding, type Finding } from './findings.js';
import { directParent, functionCalls } from './node-tree.js';
import { operatorProofChecks } from './operator-checks.js';

/** The schema the data map describes. */
export const MAPPED_SCHEMA = 'public';
/** Functions whose triggers make a table append-only. */
const APPEND_ONLY_FUNCTIONS = ['app.refuse_audit_change', 'app.refuse_seal_change'];
const CAPTURE_FUNCTION = 'app.capture_change';

const qualified = (t: CatalogTable): string => `${t.schema}.${t.name}`;
const quoteIdent = (s: string): string => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
const sqlName = (t: CatalogTable): string => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

/** A table holding tenant data: it has org_id or site_id. */
export function isTenantTable(t: CatalogTable): boolean {
  return (t.kind === 'r' || t.kind === 'p') && ('org_id' in t.columns || 'site_id' in t.columns);
}

function tenantKey(t: CatalogTable): string {
  return 'org_id' in t.columns ? 'org_id' : 'site_id';
}

export function runDoctorChecks(cat: Catalog): Finding[] {
  const tenant = cat.tables.filter(isTenantTable);
  return [
    ...rlsChecks(tenant),
    ...policyChecks(cat, tenant),
    ...roleChecks(cat, tenant),
    ...privilegeChecks(cat, tenant),
    ...relationChecks(cat, tenant),
    ...functionChecks(cat),
    ...keyChecks(cat, tenant),
    ...triggerChecks(cat, tenant),
    ...dataMapChecks(cat),
    ...operatorProofChecks(cat),
  ];
}

function rlsChecks(tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  for (const t of tenant) {
    const obj = `table ${qualified(t)}`;
    if (t.partitionOf) {
      if (!t.rls || !t.forced) {
        out.push(finding('partition-without-rls', obj,
          `partition of ${t.partitionOf} has row-level security ${t.rls ? 'enabled but not forced' : 'disabled'}: queried directly, it ignores the parent’s policies`,
          `ALTER TABLE ${sqlName(t)} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${sqlName(t)} FORCE ROW LEVEL SECURITY; -- and revoke direct access, or give it the parent’s policies`));
      }
      continue;
    }
    if (!t.rls) {
      out.push(finding('rls-disabled', obj, 'tenant table without row-level security: every role with a privilege sees every tenant’s rows',
        `ALTER TABLE ${sqlName(t)} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${sqlName(t)} FORCE ROW LEVEL SECURITY;`));
    } else if (!t.forced) {
      out.push(finding('rls-not-forced', obj, `row-level security is enabled but not forced: the owner (${t.owner}) and anything running as it bypass every policy`,
        `ALTER TABLE ${sqlName(t)} FORCE ROW LEVEL SECURITY;`));
    }
  }
  return out;
}

function policyChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  const byOid = new Map(tenant.map((t) => [t.oid, t]));
  const settingOids = new Set(cat.currentSettingOids);
  for (const t of tenant) {
    const policies = cat.policies.filter((p) => p.tableOid === t.oid);
    if (t.rls && !t.partitionOf && policies.length === 0) {
      out.push(finding('rls-no-policy', `table ${qualified(t)}`, 'row-level security is on but no policy exists: run-time roles see and change nothing',
        `CREATE POLICY … ON ${sqlName(t)} … USING (…tenant key…) WITH CHECK (…); -- or drop the grants if nobody should use it`));
    }
  }
  for (const p of cat.policies) {
    const t = byOid.get(p.tableOid);
    if (!t) continue;
    const obj = `policy ${p.name} on ${qualified(t)}`;
    const key = tenantKey(t);
    const alwaysTrue = p.using === 'true' || p.withCheck === 'true';
    // A restrictive policy narrows, it never opens: judge the permissive ones,
    // and count a restrictive policy that reads the tenant key as the pin.
    const pinned = cat.policies.some(
      (q) => q.tableOid === p.tableOid && !q.permissive && (q.command === '*' || q.command === p.command) &&
        (q.roles.includes(0) || q.roles.some((r) => p.roles.includes(r))) && (q.columns.includes('org_id') || q.columns.includes('site_id')),
    );
    if (!p.permissive || pinned) {
      // nothing: narrowed by a restrictive tenant pin, or itself a narrowing
    } else if (alwaysTrue) {
      out.push(finding('policy-always-true', obj, `${p.using === 'true' ? 'USING' : 'WITH CHECK'} (true): the policy admits every row of every tenant`,
        `ALTER POLICY ${quoteIdent(p.name)} ON ${sqlName(t)} USING (<condition on ${key}>) WITH CHECK (<condition on ${key}>);`));
    } else if (!p.columns.includes('org_id') && !p.columns.includes('site_id')) {
      out.push(finding('policy-no-tenant-key', obj, `the policy never reads ${key}, so it cannot confine rows to a tenant`,
        `ALTER POLICY ${quoteIdent(p.name)} ON ${sqlName(t)} USING (… and ${key} = …);`));
    }
    if ((p.command === 'a' || p.command === 'w' || p.command === '*') && p.withCheck === null) {
      const what = p.command === 'a' ? 'it refuses every insert (fails closed, but is probably not what was meant)' : 'new rows are checked only by its USING expression';
      out.push(finding('policy-missing-with-check', obj, `${commandName(p.command)} policy without WITH CHECK: ${what}`,
        `ALTER POLICY ${quoteIdent(p.name)} ON ${sqlName(t)} WITH CHECK (<the same tenant condition>);`));
    }
    for (const tree of [p.usingTree, p.withCheckTree]) {
      if (!tree) continue;
      const calls = functionCalls(tree).filter((c) => settingOids.has(c.funcid));
      if (calls.some((c) => directParent(c) !== 'NULLIFEXPR')) {
        out.push(finding('setting-without-nullif', obj, 'reads a setting with current_setting() not wrapped in nullif(…, \'\'): an empty setting must match nothing, never everything or an error',
          `ALTER POLICY ${quoteIdent(p.name)} ON ${sqlName(t)} USING (… (select nullif(current_setting('app.…', true), ''))::uuid …);`));
      }
      if (calls.some((c) => !c.enclosing.includes('SUBLINK'))) {
        out.push(finding('setting-not-in-subselect', obj, 'calls current_setting() outside a sub-select, so it is evaluated for every row',
          `Wrap it: (select nullif(current_setting('app.…', true), ''))`));
      }
      if (calls.length > 0) break; // one report per policy
    }
  }
  // Several permissive policies for one role and command are OR-ed.
  const seen = new Set<string>();
  for (const t of tenant) {
    const policies = cat.policies.filter((p) => p.tableOid === t.oid && p.permissive);
    for (const roleOid of [...cat.runtimeRoles].sort((a, b) => a - b)) {
      const applies = reachable(cat, roleOid, () => true);
      applies.add(0);
      for (const cmd of ['r', 'a', 'w', 'd'] as const) {
        const hit = policies.filter((p) => (p.command === cmd || p.command === '*') && p.roles.some((r) => applies.has(r)));
        if (hit.length < 2) continue;
        const names = hit.map((p) => p.name).sort();
        const keyOf = `${t.oid}:${cmd}:${names.join(',')}`;
        if (seen.has(keyOf)) continue;
        seen.add(keyOf);
        const roleNames = [...cat.runtimeRoles]
          .filter((r) => {
            const a = reachable(cat, r, () => true);
            a.add(0);
            return hit.filter((p) => p.roles.some((x) => a.has(x))).length === hit.length;
          })
          .map((r) => roleName(cat, r))
          .sort();
        out.push(finding('policy-permissive-overlap', `table ${qualified(t)}`,
          `${hit.length} permissive ${commandName(cmd)} policies (${names.join(', ')}) apply to ${roleNames.join(', ')}: a row passes if ANY of them admits it`,
          `Merge them into one policy, or make the extra ones AS RESTRICTIVE.`));
      }
    }
  }
  return out;
}

function commandName(cmd: string): string {
  return ({ r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' } as Record<string, string>)[cmd] ?? cmd;
}

function roleName(cat: Catalog, oid: number): string {
  return oid === 0 ? 'PUBLIC' : (cat.roles.find((r) => r.oid === oid)?.name ?? String(oid));
}

/**
 * Roles reachable from `from` through membership (itself included), not
 * walking through roles where `through` is false.
 */
function reachable(cat: Catalog, from: number, through: (role: CatalogRole) => boolean): Set<number> {
  const byOid = new Map(cat.roles.map((r) => [r.oid, r]));
  const seen = new Set<number>([from]);
  const queue = [from];
  while (queue.length > 0) {
    const r = byOid.get(queue.shift()!);
    for (const up of r?.memberOf ?? []) {
      if (seen.has(up)) continue;
      seen.add(up);
      const role = byOid.get(up);
      if (role && through(role)) queue.push(up);
    }
  }
  return seen;
}

const SERVER_ACCESS_ROLES = ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'];
/** The one BYPASSRLS role the schema needs: it cannot log in and owns only reviewed functions. */
const KNOWN_BYPASS_ROLES = ['trustctl_definer'];

function roleChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  for (const r of cat.roles) {
    if (r.bypassRls && !r.superuser && r.canLogin && !cat.runtimeRoles.has(r.oid) && !KNOWN_BYPASS_ROLES.includes(r.name)) {
      out.push(finding('bypassrls-role', `role ${r.name}`, 'can log in and has BYPASSRLS: whatever connects as it reads every tenant’s rows',
        `ALTER ROLE ${quoteIdent(r.name)} NOBYPASSRLS; -- or make sure it is a reviewed maintenance role, used with care`));
    }
  }
  const runtime = [...cat.runtimeRoles].map((oid) => cat.roles.find((r) => r.oid === oid)!).filter(Boolean);
  for (const role of runtime.sort((a, b) => a.name.localeCompare(b.name))) {
    const obj = `role ${role.name}`;
    // What it can become without passing through another run-time role (that one is reported itself).
    const reach = [...reachable(cat, role.oid, (r) => !cat.runtimeRoles.has(r.oid))]
      .filter((oid) => oid === role.oid || !cat.runtimeRoles.has(oid))
      .map((oid) => cat.roles.find((r) => r.oid === oid)!)
      .filter(Boolean);
    const via = (r: CatalogRole): string => (r.oid === role.oid ? 'is' : `can SET ROLE ${r.name}, which is`);
    for (const r of reach.filter((x) => x.superuser)) {
      out.push(finding('runtime-role-superuser', obj, `run-time role ${via(r)} a superuser: it ignores row-level security entirely`,
        r.oid === role.oid ? `ALTER ROLE ${quoteIdent(role.name)} NOSUPERUSER;` : `REVOKE ${quoteIdent(r.name)} FROM ${quoteIdent(role.name)};`));
    }
    for (const r of reach.filter((x) => x.bypassRls && !x.superuser)) {
      out.push(finding('runtime-role-bypassrls', obj, `run-time role ${via(r)} BYPASSRLS: it ignores row-level security entirely`,
        r.oid === role.oid ? `ALTER ROLE ${quoteIdent(role.name)} NOBYPASSRLS;` : `REVOKE ${quoteIdent(r.name)} FROM ${quoteIdent(role.name)};`));
    }
    for (const r of reach.filter((x) => SERVER_ACCESS_ROLES.includes(x.name))) {
      out.push(finding('runtime-role-server-access', obj, `run-time role can SET ROLE ${r.name}: it reads or writes the server’s files (the tables’ data files among them) or runs programs there, past every policy`,
        `REVOKE ${r.name} FROM ${quoteIdent(role.name)};`));
    }
    for (const r of reach) {
      const owned = tenant.filter((t) => t.ownerOid === r.oid).map(qualified);
      if (owned.length === 0) continue;
      out.push(finding('runtime-role-owns-table', obj,
        `run-time role ${r.oid === role.oid ? 'owns' : `can SET ROLE ${r.name}, which owns`} ${owned.join(', ')}: an owner can disable RLS, drop policies and TRUNCATE`,
        r.oid === role.oid ? `ALTER TABLE … OWNER TO trustctl_owner; -- for ${owned.join(', ')}` : `REVOKE ${quoteIdent(r.name)} FROM ${quoteIdent(role.name)};`));
    }
  }
  return out;
}

function privilegeChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  for (const t of tenant) {
    const obj = `table ${qualified(t)}`;
    if (t.publicPrivileges.length > 0) {
      out.push(finding('public-privilege', obj, `PUBLIC (every role, present and future) holds ${t.publicPrivileges.join(', ')}`,
        `REVOKE ALL ON ${sqlName(t)} FROM PUBLIC;`));
    }
    const risky = t.riskyGrants.filter((g) =>
      [...cat.runtimeRoles].some((r) => reachable(cat, r, () => true).has(g.grantee)),
    );
    for (const g of risky) {
      out.push(finding('truncate-or-references', obj,
        `${g.privilege} granted to ${roleName(cat, g.grantee)}, a run-time role: ${g.privilege === 'TRUNCATE' ? 'TRUNCATE empties every tenant’s rows, ignoring RLS' : 'REFERENCES lets a foreign key probe rows RLS hides'}`,
        `REVOKE ${g.privilege} ON ${sqlName(t)} FROM ${quoteIdent(roleName(cat, g.grantee))};`));
    }
  }
  return out;
}

function relationChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  const tenantOids = new Set(tenant.map((t) => t.oid));
  const byOid = new Map(cat.tables.map((t) => [t.oid, t]));
  // A view reads tenant data if it reads a tenant table, or a view that does.
  const readsTenant = (oid: number, seen = new Set<number>()): boolean => {
    if (tenantOids.has(oid)) return true;
    if (seen.has(oid)) return false;
    seen.add(oid);
    return (byOid.get(oid)?.reads ?? []).some((r) => readsTenant(r, seen));
  };
  const readers = (t: CatalogTable): string[] => [
    ...(t.publicPrivileges.includes('SELECT') ? ['PUBLIC'] : []),
    ...t.readableBy.map((r) => roleName(cat, r)),
  ];
  for (const t of cat.tables) {
    const obj = `${t.kind === 'v' ? 'view' : t.kind === 'm' ? 'materialized view' : 'foreign table'} ${qualified(t)}`;
    if (t.kind === 'v' && t.reads.some((r) => readsTenant(r))) {
      const invoker = t.reloptions.some((o) => /^security_invoker=(true|on|yes|1)$/i.test(o));
      if (!invoker) {
        out.push(finding('view-without-security-invoker', obj,
          `reads tenant tables with the rights of its owner (${t.owner}), not of the querying role: the reader’s RLS does not apply`,
          `ALTER VIEW ${sqlName(t)} SET (security_invoker = true);`));
      }
    }
    if ((t.kind === 'm' || t.kind === 'f') && readers(t).length > 0) {
      out.push(finding(t.kind === 'm' ? 'materialized-view-readable' : 'foreign-table-readable', obj,
        `readable by ${readers(t).join(', ')}; ${t.kind === 'm' ? 'materialized views' : 'foreign tables'} have no row-level security`,
        `REVOKE SELECT ON ${sqlName(t)} FROM ${readers(t).map((r) => (r === 'PUBLIC' ? r : quoteIdent(r))).join(', ')}; -- serve it through a security_invoker view or a function that filters by tenant`));
    }
  }
  return out;
}

const TENANT_SETTING_READ = /current_setting\s*\(\s*'app\./gi;
const NULLIF_BEFORE = /nullif\s*\(\s*(pg_catalog\s*\.\s*)?$/i;

function functionChecks(cat: Catalog): Finding[] {
  const out: Finding[] = [];
  for (const f of cat.functions) {
    const obj = `function ${f.signature}`;
    if (f.securityDefiner) {
      const path = f.config.find((c) => c.startsWith('search_path='));
      const schemas = path ? path.slice('search_path='.length).split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1')) : [];
      const unsafe = schemas.filter((s) => s === '$user' || cat.writableSchemas.has(s));
      const tempLast = schemas.length > 0 && schemas[schemas.length - 1] === 'pg_temp' && schemas.indexOf('pg_temp') === schemas.length - 1;
      if (!path) {
        out.push(finding('definer-search-path', obj, 'SECURITY DEFINER without SET search_path: the caller’s search_path decides which objects it runs',
          `ALTER FUNCTION ${f.signature} SET search_path = pg_catalog, pg_temp; -- and schema-qualify every name in it`));
      } else if (unsafe.length > 0) {
        out.push(finding('definer-search-path', obj, `SECURITY DEFINER with search_path including ${unsafe.join(', ')}, where PUBLIC or a run-time role may create objects`,
          `ALTER FUNCTION ${f.signature} SET search_path = pg_catalog, pg_temp;`));
      } else if (!tempLast) {
        out.push(finding('definer-search-path', obj, 'SECURITY DEFINER whose search_path does not end with pg_temp: PostgreSQL then searches pg_temp first, where any caller may create a table it resolves',
          `ALTER FUNCTION ${f.signature} SET search_path = pg_catalog, pg_temp;`));
      }
      const runtimeCallers = f.executableBy.map((r) => roleName(cat, r));
      if (f.ownerBypassesRls && runtimeCallers.length > 0 && !f.publicExecute) {
        out.push(acceptedBy(f.comment, finding('definer-bypasses-rls', obj,
          `runs as ${f.owner}, which bypasses row-level security, and ${runtimeCallers.join(', ')} may execute it: what it reads or writes is not confined to the caller’s tenant unless its body confines it`,
          `Review its body, then record that: COMMENT ON FUNCTION ${f.signature} IS 'trustctl-doctor: accept definer-bypasses-rls sha256=${f.bodySha256}: <why it is safe>';`), f.bodySha256));
      }
      if (f.publicExecute) {
        out.push(finding('definer-public-execute', obj, 'SECURITY DEFINER executable by PUBLIC: every role, present and future, runs it with its owner’s rights',
          `REVOKE EXECUTE ON FUNCTION ${f.signature} FROM PUBLIC; GRANT EXECUTE ON FUNCTION ${f.signature} TO <the roles that need it>;`));
      }
    }
    if (f.leakproof) {
      out.push(acceptedBy(f.comment, finding('leakproof-function', obj, 'user-defined LEAKPROOF: the planner may run it on rows before RLS filters them; an error or notice it raises can leak their values',
        `ALTER FUNCTION ${f.signature} NOT LEAKPROOF;`)));
    }
    for (const m of f.source.matchAll(TENANT_SETTING_READ)) {
      if (!NULLIF_BEFORE.test(f.source.slice(0, m.index))) {
        out.push(finding('setting-without-nullif', obj, 'reads an app.* setting with current_setting() not wrapped in nullif(…, \'\'): an empty setting must match nothing',
          `Use nullif(pg_catalog.current_setting('app.…', true), '') in ${f.signature}.`));
        break;
      }
    }
  }
  return out;
}

function keyChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  const byOid = new Map(tenant.map((t) => [t.oid, t]));
  for (const t of tenant) {
    const key = tenantKey(t);
    const keyNum = t.columns[key]!;
    const indexes = cat.indexes.filter((i) => i.tableOid === t.oid);
    for (const i of indexes.filter((x) => x.unique && !x.keys.includes(keyNum))) {
      out.push(acceptedBy(i.comment, finding('unique-without-tenant-key', `index ${t.schema}.${i.name}`,
        `unique across tenants (${i.definition.replace(/^CREATE UNIQUE INDEX \S+ ON /, '')}): an insert that fails on it tells a tenant another tenant’s value exists`,
        `Recreate it with ${key} first: CREATE UNIQUE INDEX … ON ${sqlName(t)} (${key}, …); DROP INDEX ${quoteIdent(t.schema)}.${quoteIdent(i.name)};`)));
    }
    if (!t.partitionOf && !indexes.some((i) => i.keys[0] === keyNum)) {
      out.push(acceptedBy(t.comment, finding('tenant-key-not-leading', `table ${qualified(t)}`, `no index leads with ${key}: every tenant-scoped query scans other tenants’ rows`,
        `Put ${key} first in the primary key, or CREATE INDEX ON ${sqlName(t)} (${key}, …);`)));
    }
  }
  for (const fk of cat.foreignKeys) {
    const t = byOid.get(fk.tableOid);
    const ref = byOid.get(fk.refTableOid);
    if (!t || !ref || t.partitionOf) continue;
    const from = t.columns[tenantKey(t)]!;
    const to = ref.columns[tenantKey(ref)]!;
    const matched = fk.columns.some((c, i) => c === from && fk.refColumns[i] === to);
    if (!matched) {
      out.push(acceptedBy(fk.comment, finding('foreign-key-without-tenant-key', `constraint ${fk.name} on ${qualified(t)}`,
        `references ${qualified(ref)} without matching ${tenantKey(t)} to ${tenantKey(ref)}: a row can point at another tenant’s row`,
        `Recreate it as FOREIGN KEY (${tenantKey(t)}, …) REFERENCES ${sqlName(ref)} (${tenantKey(ref)}, …);`)));
    }
  }
  return out;
}

function mapOf(name: string): TableMap | undefined {
  return dataMap.find((m) => m.table === name);
}

/** Audit-trail tables: append-only, and not captured (they are the capture). */
export function isAuditTrailTable(name: string): boolean {
  return mapOf(name)?.auditTrail === true;
}

function triggerChecks(cat: Catalog, tenant: readonly CatalogTable[]): Finding[] {
  const out: Finding[] = [];
  // The archive holds the same personal data as public: audited the same way.
  for (const t of tenant.filter((x) => (x.schema === MAPPED_SCHEMA || x.schema === 'archive') && !x.partitionOf)) {
    const triggers = cat.triggers.filter((g) => g.tableOid === t.oid && g.enabled);
    const obj = `table ${qualified(t)}`;
    if (isAuditTrailTable(t.name)) {
      const refuse = triggers.filter((g) => APPEND_ONLY_FUNCTIONS.includes(g.functionName) && g.before);
      const rows = refuse.some((g) => g.rowLevel && g.events.has('update') && g.events.has('delete'));
      const truncate = refuse.some((g) => g.events.has('truncate'));
      if (!rows || !truncate) {
        out.push(finding('missing-append-only', obj,
          `audit table without an enabled ${!rows ? 'BEFORE UPDATE OR DELETE row' : 'BEFORE TRUNCATE'} trigger refusing changes: its rows can be rewritten`,
          `Recreate the trigger from migration 0004/0006, e.g. CREATE TRIGGER … BEFORE UPDATE OR DELETE ON ${sqlName(t)} FOR EACH ROW EXECUTE FUNCTION app.refuse_audit_change();`));
      }
      continue;
    }
    const capture = triggers.find((g) => g.functionName === CAPTURE_FUNCTION && g.rowLevel && !g.before &&
      g.events.has('insert') && g.events.has('update') && g.events.has('delete'));
    if (!capture) {
      out.push(finding('missing-audit-capture', obj, 'no enabled AFTER INSERT OR UPDATE OR DELETE trigger running app.capture_change: changes to it are not audited',
        `CREATE TRIGGER audit_capture AFTER INSERT OR UPDATE OR DELETE ON ${sqlName(t)} FOR EACH ROW EXECUTE FUNCTION app.capture_change('<id column>', '<person columns>…');`));
      continue;
    }
    const map = mapOf(t.name);
    const missing = (map?.subjects ?? []).filter((s) => !s.array && !capture.args.slice(1).includes(s.column)).map((s) => s.column);
    if (missing.length > 0) {
      out.push(finding('audit-capture-misses-subject', `trigger ${capture.name} on ${qualified(t)}`,
        `does not name ${missing.join(', ')}, which the data map lists as a person: their audit events will not find these changes`,
        `Recreate it with app.capture_change(${[capture.args[0] ?? 'id', ...capture.args.slice(1), ...missing].map((a) => `'${a}'`).join(', ')})`));
    }
  }
  return out;
}

/** Every column a data-map entry names. */
export function mappedColumns(m: TableMap): string[] {
  return [
    m.idColumn,
    ...m.subjects.flatMap((s) => [s.column, ...(s.orgColumn ? [s.orgColumn] : [])]),
    ...Object.keys(m.erasure.columns),
    ...(m.retention && !isDerivedClock(m.retention.clock) ? [m.retention.clock] : []),
    ...(m.order ?? []),
    ...(m.tenantKey ? [m.tenantKey.org, ...(m.tenantKey.site ? [m.tenantKey.site] : [])] : []),
    ...(m.dsar.kind === 'include' && m.dsar.withhold ? [m.dsar.withhold.column] : []),
  ];
}

function dataMapChecks(cat: Catalog): Finding[] {
  if (!cat.schemas.includes(MAPPED_SCHEMA)) return [];
  const out: Finding[] = [];
  const live = cat.tables.filter((t) => t.schema === MAPPED_SCHEMA && (t.kind === 'r' || t.kind === 'p') && !t.partitionOf);
  const byName = new Map(live.map((t) => [t.name, t]));
  for (const t of live) {
    if (!mapOf(t.name)) {
      out.push(finding('unmapped-table', `table ${qualified(t)}`,
        'not in the data map: DSAR, erasure and retention do not know what it holds or whom it is about',
        'Add an entry for it to src/datamap/index.ts (tenant key, people it refers to, retention, DSAR and erasure treatment).'));
    }
  }
  for (const m of dataMap) {
    const t = byName.get(m.table);
    if (!t) {
      out.push(finding('mapped-table-missing', `table ${MAPPED_SCHEMA}.${m.table}`, 'named by the data map but not in the database',
        'Migrate the database (trustctl db migrate), or remove the entry from src/datamap/index.ts.'));
      continue;
    }
    const gone = [...new Set(mappedColumns(m))].filter((c) => !(c in t.columns)).sort();
    if (gone.length > 0) {
      out.push(finding('mapped-column-missing', `table ${qualified(t)}`, `the data map names ${gone.join(', ')}, which do not exist`,
        'Update src/datamap/index.ts to the renamed or removed columns.'));
    }
  }
  // Person references: foreign keys to a table whose rows ARE people.
  const people = new Set(dataMap.filter((m) => m.subjects.some((s) => s.relation === 'is' && s.column === m.idColumn)).map((m) => m.table));
  for (const fk of cat.foreignKeys) {
    const t = cat.tables.find((x) => x.oid === fk.tableOid);
    const ref = cat.tables.find((x) => x.oid === fk.refTableOid);
    if (!t || !ref || t.schema !== MAPPED_SCHEMA || ref.schema !== MAPPED_SCHEMA || !people.has(ref.name)) continue;
    const m = mapOf(t.name);
    if (!m) continue; // reported as unmapped-table
    const nameOf = (num: number): string => Object.entries(t.columns).find(([, n]) => n === num)?.[0] ?? String(num);
    const keyCols = new Set(['org_id', 'site_id', ...m.subjects.flatMap((s) => (s.orgColumn ? [s.orgColumn] : []))]);
    const cols = fk.columns.map(nameOf).filter((c) => !keyCols.has(c));
    const unnamed = cols.filter((c) => !m.subjects.some((s) => s.column === c));
    if (unnamed.length > 0) {
      out.push(finding('unmapped-person-reference', `constraint ${fk.name} on ${qualified(t)}`,
        `${unnamed.join(', ')} point${unnamed.length === 1 ? 's' : ''} at ${ref.name} (a person) but the data map does not list ${unnamed.length === 1 ? 'it' : 'them'} as a subject: a DSAR or erasure would miss these rows`,
        `Add { column: '${unnamed[0]}', kind: …, relation: … } to the subjects of ${t.name} in src/datamap/index.ts, and to its audit_capture trigger.`));
    }
  }
  return out;
}
