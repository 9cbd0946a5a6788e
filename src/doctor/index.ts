// trustctl doctor: catalog checks plus the live probe, as one report.
import type { ClientBase } from 'pg';
import type { OperatorSession } from '../db/operator-session.js';
import { RefusedError } from '../errors.js';
import { readCatalog, type Catalog } from './catalog.js';
import { isTenantTable, MAPPED_SCHEMA, runDoctorChecks } from './checks.js';
import { countBySeverity, docLink, sortFindings, type Finding, type Severity } from './findings.js';
import { runLiveProbe, type ProbeSummary } from './probe.js';

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

/** Checks schema names' form and existence (exit 2 otherwise). */
export async function resolveSchemas(client: ClientBase, requested: readonly string[]): Promise<string[]> {
  const schemas = requested.length > 0 ? [...new Set(requested)] : [MAPPED_SCHEMA];
  for (const s of schemas) {
    if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(s)) throw new RefusedError(`"${s}" is not a schema name`);
  }
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

/** The live probe over the catalog's tenant tables in schema public. */
export function probeCatalog(catalog: Catalog, session: OperatorSession): ReturnType<typeof runLiveProbe> {
  const tables = catalog.tables
    .filter((t) => t.schema === MAPPED_SCHEMA && isTenantTable(t) && !t.partitionOf && 'org_id' in t.columns)
    .map((t) => ({ name: t.name, hasSite: 'site_id' in t.columns }));
  return runLiveProbe(session, tables);
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
