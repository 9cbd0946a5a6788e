// What the doctor reports: findings with a severity, a stable code (an anchor
// in docs/doctor.md), the object, what is wrong and how to fix it.

export type Severity = 'error' | 'warn' | 'info';

export interface Finding {
  readonly severity: Severity;
  readonly code: CheckCode;
  /** e.g. `table public.notes`, `role app_user`, `policy notes_app_select on public.notes`. */
  readonly object: string;
  readonly problem: string;
  /** SQL or a step that fixes it. */
  readonly fix: string;
}

/** Every check, its default severity and one line on what it looks for. */
export const CHECKS = {
  'rls-disabled': ['error', 'a tenant table without row-level security'],
  'rls-not-forced': ['error', 'a tenant table whose owner bypasses its policies (RLS not FORCEd)'],
  'rls-no-policy': ['warn', 'a tenant table with RLS but no policy: every run-time query sees nothing'],
  'partition-without-rls': ['error', 'a partition of a tenant table without its own forced RLS'],
  'policy-always-true': ['error', 'a policy whose condition is literally true'],
  'policy-no-tenant-key': ['error', 'a policy that never reads the tenant key'],
  'policy-missing-with-check': ['warn', 'an INSERT, UPDATE or ALL policy without WITH CHECK'],
  'policy-permissive-overlap': ['error', 'several permissive policies for one role and command (they are OR-ed)'],
  'setting-without-nullif': ['error', 'a tenant setting read without nullif(…, \'\')'],
  'setting-not-in-subselect': ['warn', 'current_setting() in a policy outside a sub-select (evaluated per row)'],
  'runtime-role-superuser': ['error', 'a run-time role that is, or can SET ROLE to, a superuser'],
  'runtime-role-bypassrls': ['error', 'a run-time role that has, or can SET ROLE to a role with, BYPASSRLS'],
  'runtime-role-server-access': ['error', 'a run-time role that can read or write server files or run server programs'],
  'bypassrls-role': ['warn', 'a login role other than a superuser with BYPASSRLS'],
  'runtime-role-owns-table': ['error', 'a run-time role that owns a tenant table, directly or through membership'],
  'public-privilege': ['error', 'a privilege on a tenant table granted to PUBLIC'],
  'truncate-or-references': ['error', 'TRUNCATE or REFERENCES (which ignore RLS) granted to a run-time role'],
  'view-without-security-invoker': ['error', 'a view over tenant tables that runs with its owner’s rights'],
  'materialized-view-readable': ['error', 'a materialized view readable by a run-time role (no RLS at all)'],
  'foreign-table-readable': ['error', 'a foreign table readable by a run-time role (no RLS at all)'],
  'definer-search-path': ['error', 'a SECURITY DEFINER function without a fixed, safe search_path'],
  'definer-public-execute': ['error', 'a SECURITY DEFINER function executable by PUBLIC'],
  'definer-bypasses-rls': ['error', 'a SECURITY DEFINER function owned by a role that bypasses RLS, executable by a run-time role, not reviewed'],
  'leakproof-function': ['warn', 'a user-defined LEAKPROOF function (runs before RLS filters)'],
  'unique-without-tenant-key': ['error', 'a unique index on a tenant table without the tenant key (an existence oracle)'],
  'foreign-key-without-tenant-key': ['error', 'a foreign key between tenant tables that does not match the tenant key'],
  'tenant-key-not-leading': ['warn', 'no index of a tenant table leads with the tenant key'],
  'missing-audit-capture': ['error', 'a tenant table without the audit-capture trigger'],
  'audit-capture-misses-subject': ['error', 'an audit-capture trigger that does not name a person the data map lists'],
  'missing-append-only': ['error', 'an audit table without its append-only triggers'],
  'context-not-bound': ['error', 'a table whose triggers decide who acts, without the statement-level binding of the actor'],
  'context-read-unbound': ['error', 'a trigger or writing function that reads the acting user or session from settings, not from the transaction’s binding'],
  'operator-change-unguarded': ['error', 'a personal-data table an operator may update or delete without the database checking holds and purpose'],
  'archive-writable': ['error', 'an archive table a run-time role may insert into or update directly'],
  'definer-writes-unchecked': ['error', 'a SECURITY DEFINER function run-time roles may call that updates or deletes personal data without the bound session and purpose'],
  'trusts-tenant-column': ['error', 'a function or policy that decides platform identity from a column tenants write'],
  'unmapped-table': ['error', 'a table the data map does not describe'],
  'mapped-table-missing': ['error', 'a table in the data map that does not exist'],
  'mapped-column-missing': ['error', 'a column named by the data map that does not exist'],
  'unmapped-person-reference': ['error', 'a foreign key to a people table that the data map does not name'],
  'probe-visible-rows': ['error', 'the live probe saw rows of another tenant'],
  'probe-update-crossed': ['error', 'the live probe updated rows of another tenant'],
  'probe-delete-crossed': ['error', 'the live probe deleted rows of another tenant'],
  'probe-insert-crossed': ['error', 'the live probe inserted a row into another tenant'],
  'probe-inconclusive': ['warn', 'a live-probe step failed for a reason other than a refusal'],
  'probe-skipped': ['info', 'the live probe did not run'],
} as const satisfies Record<string, readonly [Severity, string]>;

export type CheckCode = keyof typeof CHECKS;

export const DOC_PAGE = 'docs/doctor.md';

export function docLink(code: CheckCode): string {
  return `${DOC_PAGE}#${code}`;
}

/** A finding at its check's default severity. */
export function finding(code: CheckCode, object: string, problem: string, fix: string): Finding {
  return { severity: CHECKS[code][0], code, object, problem, fix };
}

const ACCEPT = /trustctl-doctor:\s*accept\s+([a-z-]+)(?:\s+sha256=([0-9a-f]{64}))?\s*:\s*(.+)/s;

/**
 * A comment `trustctl-doctor: accept CODE: reason` on the object turns that
 * finding into an info finding that names the reason.
 *
 * @example
 * acceptedBy('trustctl-doctor: accept unique-without-tenant-key: global slug', f) // info finding
 */
export function acceptedBy(comment: string | null | undefined, f: Finding, bodySha256?: string): Finding {
  const m = comment ? ACCEPT.exec(comment) : null;
  if (!m || m[1] !== f.code) return f;
  // An acceptance pinned to a function body lapses when the body changes.
  if (bodySha256 !== undefined && m[2] !== bodySha256) {
    return { ...f, problem: `${f.problem} (accepted once, but its body has changed since: review it again)` };
  }
  return { ...f, severity: 'info', problem: `${f.problem} — accepted (${f.code}): ${m[3]!.trim()}`, fix: 'none needed while the reason holds' };
}

const ORDER: Record<Severity, number> = { error: 0, warn: 1, info: 2 };

/** Severity, then code, then object: two runs on one database print the same. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      ORDER[a.severity] - ORDER[b.severity] ||
      a.code.localeCompare(b.code) ||
      a.object.localeCompare(b.object) ||
      a.problem.localeCompare(b.problem),
  );
}

export function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warn: 0, info: 0 };
  for (const f of findings) counts[f.severity] += 1;
  return counts;
}
