// Who a DSAR is about: a child (by id) or a guardian or member of staff (by
// id or email), found inside one organisation through the operator session,
// so a subject of an organisation outside the session's scope is simply not
// found.
import { sql, type Transaction } from 'kysely';
import { RefusedError } from '../errors.js';
import type { Database } from '../db/schema.js';
import { printable } from '../io/printable.js';

export type SubjectType = 'child' | 'guardian' | 'staff';

export interface DsarSubject {
  readonly type: SubjectType;
  readonly id: string;
  readonly siteId: string | null;
  readonly name: string;
  /** For people: their email; shown when picking between candidates. */
  readonly email: string | null;
}

export interface OrganisationRef {
  readonly id: string;
  readonly slug: string;
  readonly name: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A person named on the command line: by id or by email. */
export type PersonQuery = { readonly id: string } | { readonly email: string };

/**
 * Parses --subject (or --user): a UUID or an email address.
 *
 * @example
 * parseSubjectQuery('Parent@Example.org') // { email: 'parent@example.org' }
 */
export function parseSubjectQuery(
  value: string,
  option = '--subject',
  hint = 'Pass a child’s id, or a guardian’s or staff member’s id or email',
): PersonQuery {
  const v = value.trim();
  if (UUID.test(v)) return { id: v.toLowerCase() };
  if (/^[^\s@]+@[^\s@]+$/.test(v)) return { email: v.toLowerCase() };
  throw new RefusedError(`${option} "${value}" is neither an id nor an email address`, hint);
}

/**
 * The organisation named by slug, as the session sees it; RefusedError if the
 * session cannot see it.
 *
 * @example
 * const org = await findOrganisation(trx, 'oak-trust')
 */
export async function findOrganisation(trx: Transaction<Database>, slug: string): Promise<OrganisationRef> {
  const row = await trx
    .selectFrom('organisations')
    .select(['org_id', 'slug', 'name'])
    .where('slug', '=', slug)
    .executeTakeFirst();
  if (!row) {
    throw new RefusedError(`organisation "${slug}" is not in this operator session’s scope`, 'See: trustctl org list');
  }
  return { id: row.org_id, slug: row.slug, name: row.name };
}

/**
 * Every subject in the organisation matching the query (normally one).
 *
 * @example
 * await findSubjects(trx, org.id, { email: 'parent@example.org' })
 */
export async function findSubjects(
  trx: Transaction<Database>,
  orgId: string,
  query: { readonly id: string } | { readonly email: string },
): Promise<DsarSubject[]> {
  const subjects: DsarSubject[] = [];
  if ('id' in query) {
    const children = await trx
      .selectFrom('children')
      .select(['id', 'site_id', 'full_name'])
      .where('org_id', '=', orgId)
      .where('id', '=', query.id)
      .execute();
    for (const c of children) {
      subjects.push({ type: 'child', id: c.id, siteId: c.site_id, name: c.full_name, email: null });
    }
  }
  const users = await trx
    .selectFrom('users')
    .select(['id', 'site_id', 'full_name', 'email', 'kind'])
    .where('org_id', '=', orgId)
    .where((eb) => ('id' in query ? eb('id', '=', query.id) : eb(sql`lower(email)`, '=', query.email)))
    .orderBy('id')
    .execute();
  for (const u of users) {
    subjects.push({
      type: u.kind === 'guardian' ? 'guardian' : 'staff',
      id: u.id,
      siteId: u.site_id,
      name: u.full_name,
      email: u.email,
    });
  }
  return subjects;
}

/** One line naming a subject, for errors and prompts (printable: it is shown in a terminal). */
export function describeSubject(s: DsarSubject): string {
  return `${s.type} ${printable(s.name)}${s.email ? ` <${printable(s.email)}>` : ''} (${s.id})`;
}
