// The operator session a job opens, and the --org / --all-orgs options that
// scope it; shared by every command group that reads tenant data.
import type { Command } from 'commander';
import type { CommandContext } from './context.js';
import { parseSlug } from './context.js';
import { RefusedError } from '../errors.js';
import type { OperatorSession } from '../db/operator-session.js';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { OrganisationRef } from '../dsar/subject.js';

export type OrgScope = { readonly orgSlugs: readonly string[] } | { readonly allOrgs: true };

/** A check of input that needs the database but no session (a PostgreSQL regular expression). */
export type BeforeSession = (db: Kysely<Database>) => Promise<void>;

/**
 * Runs work in an operator session with this scope and reason; `before`
 * runs first, on the same connection pool, so its refusal opens no session.
 */
export async function withScopedSession<T>(
  ctx: CommandContext,
  scope: OrgScope & { readonly reason: string },
  fn: (session: OperatorSession) => Promise<T>,
  { before }: { readonly before?: BeforeSession } = {},
): Promise<T> {
  const { withOperatorDb } = await import('../db/with-db.js');
  const { withOperatorSession } = await import('../db/operator-session.js');
  return withOperatorDb(ctx.db, async (db) => {
    await before?.(db.kysely);
    return withOperatorSession(db.kysely, { ...scope, ticket: ctx.options.ticket, command: ctx.commandLine }, fn, {
      logger: ctx.logger,
    });
  });
}

/** Commander option parser for a repeatable option. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Runs fn in one transaction of an operator session scoped to one
 * organisation, with that organisation and the session.
 */
export async function inOrg<T>(
  ctx: CommandContext,
  orgSlug: string,
  reason: string,
  fn: (trx: Transaction<Database>, org: OrganisationRef, session: OperatorSession) => Promise<T>,
  options: { readonly before?: BeforeSession } = {},
): Promise<T> {
  const slug = parseSlug(orgSlug);
  const { findOrganisation } = await import('../dsar/subject.js');
  return withScopedSession(
    ctx,
    { orgSlugs: [slug], reason },
    (session) => session.transaction(async (trx) => fn(trx, await findOrganisation(trx, slug), session)),
    options,
  );
}

/** Adds --org (repeatable) and --all-orgs. */
export function orgScopeOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--org <slug>', `an organisation to ${what} (repeatable)`, collect, [])
    .option('--all-orgs', `every organisation (an explicit, audited all-organisation session)`);
}

/**
 * Parses --org / --all-orgs. Without either: `fallback` decides (all
 * organisations for platform-wide jobs, else a refusal).
 */
export function parseOrgScope(
  opts: { readonly org?: readonly string[]; readonly allOrgs?: boolean },
  fallback: 'all' | 'refuse',
): OrgScope {
  const slugs = (opts.org ?? []).map((s) => parseSlug(s));
  if (slugs.length > 0 && opts.allOrgs) throw new RefusedError('pass --org or --all-orgs, not both');
  if (slugs.length > 0) return { orgSlugs: slugs };
  if (opts.allOrgs || fallback === 'all') return { allOrgs: true };
  throw new RefusedError('name the organisations', 'Pass --org SLUG (repeatable) or --all-orgs');
}
