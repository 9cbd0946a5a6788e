// The organisation directory: slugs, names and site counts, readable by any
// operator without a session (it holds no personal data).
import { sql, type Kysely } from 'kysely';
import type { OperatorSession } from './operator-session.js';
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

export interface OrganisationSummary {
  readonly slug: string;
  readonly name: string;
  readonly kind: string;
  readonly operatorSessionId: string;
  readonly sites: ReadonlyArray<{ slug: string; name: string; children: number; staff: number; guardians: number }>;
}

/**
 * Counts per site of one organisation, read inside an operator session.
 *
 * @example
 * await withOperatorSession(db, scope, (s) => summariseOrganisation(s, 'oak-trust'), { logger })
 */
export async function summariseOrganisation(session: OperatorSession, slug: string): Promise<OrganisationSummary> {
  return session.transaction(
    async (trx) => {
      const org = await trx
        .selectFrom('organisations')
        .select(['org_id', 'slug', 'name', 'kind'])
        .where('slug', '=', slug)
        .executeTakeFirstOrThrow();
      const sites = await sql<{ slug: string; name: string; children: string; staff: string; guardians: string }>`
        select s.slug, s.name,
          (select count(*) from children c where c.org_id = s.org_id and c.site_id = s.site_id) as children,
          (select count(*) from users u where u.org_id = s.org_id and u.site_id = s.site_id and u.kind = 'staff') as staff,
          (select count(*) from users u where u.org_id = s.org_id and u.site_id = s.site_id and u.kind = 'guardian') as guardians
        from sites s where s.org_id = ${org.org_id} order by s.slug`.execute(trx);
      return {
        slug: org.slug,
        name: org.name,
        kind: org.kind,
        operatorSessionId: session.id,
        sites: sites.rows.map((s) => ({
          slug: s.slug,
          name: s.name,
          children: Number(s.children),
          staff: Number(s.staff),
          guardians: Number(s.guardians),
        })),
      };
    },
    { readOnly: true },
  );
}
