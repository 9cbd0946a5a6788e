// trustctl doctor: catalog checks plus the live probe, as one report.
import type { ClientBase } from 'pg';
import { RefusedError } from '../errors.js';
import { readCatalog, type Catalog } from './catalog.js';
import { isTenantTable, MAPPED_SCHEMA, runDoctorChecks } from './checks.js';
import { countBySeverity, docLink, sortFindings, type Finding, type Severity } from './findings.js';
import type { ProbeSummary } from './probe.js';

export const DOCTOR_FORMAT = 'trustctl-doctor/1';

export interface DoctorReport {
  readonly format: typeof DOCTOR_FORMAT;
  readonly database: string;
  readonly serverVersion: string;
  readonly schemas: readonly string[];
  readonly checked: {
    readonly tables: number;
    readonly tenantTables: number;
    readonly policies: number;
    readonly runtimeRoles: number;
    readonly functions: number;
    readonly indexes: number;
    readonly foreignKeys: number;
  };
  readonly probe: ProbeSummary | null;
  readonly findings: ReadonlyArray<Finding & { readonly doc: string }>;
  readonly summary: Record<Severity, number>;
}

/** By default: every schema a run-time role (or PUBLIC) may use, and always public. */
async function runtimeSchemas(client: ClientBase): Promise<string[]> {
  const res = await client.query<{ nspname: string }>(`
    select n.nspname from pg_namespace n
    where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'
      and (n.nspname = $1 or has_schema_privilege('public', n.oid, 'USAGE')
        or exists (select 1 from pg_roles r where r.rolname in ('app_user', 'trustctl_operator') and has_schema_privilege(r.oid, n.oid, 'USAGE')))`, [MAPPED_SCHEMA]);
  return res.rows.map((r) => r.nspname);
}

/** Checks schema names' form and existence (exit 2 otherwise). */
/**
 * Checks a --schema name's form, before anything is connected to.
 *
 * @example
 * parseSchemaName('public') // 'public'
 */
export function parseSchemaName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(name)) throw new RefusedError(`--schema "${name}" is not a schema name`);
  return name;
}

export async function resolveSchemas(client: ClientBase, requested: readonly string[]): Promise<string[]> {
  const schemas = requested.length > 0 ? [...new Set(requested)] : await runtimeSchemas(client);
  schemas.forEach(parseSchemaName);
  const found = await client.query<{ nspname: string }>('select nspname from pg_namespace where nspname = any ($1)', [schemas]);
  const missing = schemas.filter((s) => !found.rows.some((r) => r.nspname === s));
  if (missing.length > 0) {
    throw new RefusedError(`unknown schema: ${missing.join(', ')}`, 'List schemas with: psql -c "\\dn"');
  }
  return schemas.sort();
}

/** The catalog half: one snapshot, every check. */
export async function checkCatalog(client: ClientBase, schemas: readonly string[]): Promise<{ catalog: Catalog; findings: Finding[] }> {
  const catalog = await readCatalog(client, schemas);
  return { catalog, findings: runDoctorChecks(catalog) };
}

/** Tenant tables of schema public, which the live probe crosses. */
export function probeTables(catalog: Catalog): string[] {
  return catalog.tables
    .filter((t) => t.schema === MAPPED_SCHEMA && isTenantTable(t) && !t.partitionOf && 'org_id' in t.columns)
    .map((t) => t.name);
}

export function buildReport(catalog: Catalog, findings: readonly Finding[], probe: ProbeSummary | null): DoctorReport {
  const sorted = sortFindings(findings);
  return {
    format: DOCTOR_FORMAT,
    database: catalog.database,
    serverVersion: catalog.serverVersion,
    schemas: catalog.schemas,
    checked: {
      tables: catalog.tables.filter((t) => t.kind === 'r' || t.kind === 'p').length,
      tenantTables: catalog.tables.filter(isTenantTable).length,
      policies: catalog.policies.length,
      runtimeRoles: catalog.runtimeRoles.size,
      functions: catalog.functions.length,
      indexes: catalog.indexes.length,
      foreignKeys: catalog.foreignKeys.length,
    },
    probe,
    findings: sorted.map((f) => ({ ...f, doc: docLink(f.code) })),
    summary: countBySeverity(sorted),
  };
}
