// The organisation directory: slugs, names and site counts, readable by any
// operator without a session (it holds no personal data).
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface OrganisationEntry {
  readonly slug: string;
  readonly name: string;
  readonly kind: string;
  readonly siteCount: number;
}

/**
 * @example
 * const orgs = await listOrganisations(db) // [{ slug: 'oak-trust', siteCount: 3, ... }]
 */
export async function listOrganisations(db: Kysely<Database>): Promise<OrganisationEntry[]> {
  const res = await sql<{ slug: string; name: string; kind: string; site_count: string }>`
    select * from app.organisation_directory()`.execute(db);
  return res.rows.map((r) => ({ slug: r.slug, name: r.name, kind: r.kind, siteCount: Number(r.site_count) }));
}
