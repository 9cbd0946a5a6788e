// The doctor's checks for the operator-proof rules (migrations 0016, 0017;
// docs/threat-model.md): who acts is bound once per transaction, operators
// change personal data only under a checked purpose, the archive is written
// only by the database, and no decision trusts a column tenants write.
import { dataMap } from '../datamap/index.js';
import { RUNTIME_GROUPS, type Catalog, type CatalogFunction, type CatalogTable } from './catalog.js';
import { acceptedBy, finding, type Finding } from './findings.js';

const BIND_TRIGGER = 'app.bind_statement_context';
/** Row or statement triggers that decide who is acting, or what they may do. */
const ACTOR_TRIGGERS = ['app.capture_change', 'app.guard_role_assignment', 'app.guard_operator_change'];
/** Guards that check an operator's UPDATE or DELETE of a personal table. */
const CHANGE_GUARDS = ['app.guard_operator_change', 'app.guard_role_assignment', 'app.guard_history_columns'];
/** Calls that bind, or check, the transaction's actor (and its purpose). */
const BINDING_CALLS = /\bapp\s*\.\s*(bind_context|check_bound_context|require_operator_org|rebind_context_for_probe|set_purpose|begin_retention_batch|begin_erasure|begin_archive_purge)\s*\(/i;
/** Reading who acts straight from the settings. */
const CONTEXT_READ = /current_setting\s*\(\s*'app\.(operator_session|user_id|user_org_id)'|\bapp\s*\.\s*current_(operator_session_id|user_id|user_org_id)\s*\(/i;
const WRITES = /\b(?:delete\s+from|update)\s+(?:only\s+)?("?[a-z_][a-z0-9_]*"?)\s*\.\s*("?[a-z_][a-z0-9_]*"?)/gi;
const PLATFORM_KIND = /\bkind\s*(?:=|<>|!=)\s*'(?:platform|support)'/i;
/** Where the pinned platform organisation is read: a 'support' user there is platform staff. */
const PINNED = /platform_org_id/i;

const qualified = (t: CatalogTable): string => `${t.schema}.${t.name}`;
const unquote = (s: string): string => s.replace(/^"(.*)"$/, '$1');

/** Tables whose rows name people (the data map's subjects), in public and archive. */
function isPersonal(t: CatalogTable): boolean {
  return (t.schema === 'public' || t.schema === 'archive') && (dataMap.find((m) => m.table === t.name)?.subjects.length ?? 0) > 0;
}

/** The run-time groups themselves (a member that is a superuser or owner is reported by the role checks). */
function groupRoles(cat: Catalog, names: readonly string[]): Set<number> {
  return new Set(cat.roles.filter((r) => names.includes(r.name)).map((r) => r.oid));
}

export function operatorProofChecks(cat: Catalog): Finding[] {
  return [...bindingChecks(cat), ...guardChecks(cat), ...functionChecks(cat)];
}

function bindingChecks(cat: Catalog): Finding[] {
  const out: Finding[] = [];
  for (const t of cat.tables) {
    const triggers = cat.triggers.filter((g) => g.tableOid === t.oid && g.enabled);
    if (!triggers.some((g) => ACTOR_TRIGGERS.includes(g.functionName))) continue;
    const bind = triggers.find((g) => g.functionName === BIND_TRIGGER && g.before && !g.rowLevel &&
      g.events.has('insert') && g.events.has('update') && g.events.has('delete'));
    if (!bind) {
      out.push(finding('context-not-bound', `table ${qualified(t)}`,
        'its triggers decide who acted, but no BEFORE statement trigger binds the actor first: a set_config() in a later row or in RETURNING can change who a statement acts as',
        `CREATE TRIGGER context_bind BEFORE INSERT OR UPDATE OR DELETE ON ${qualified(t)} FOR EACH STATEMENT EXECUTE FUNCTION app.bind_statement_context();`));
    }
  }
  return out;
}

function guardChecks(cat: Catalog): Finding[] {
  const out: Finding[] = [];
  const operators = groupRoles(cat, ['trustctl_operator']);
  const groups = groupRoles(cat, RUNTIME_GROUPS);
  for (const t of cat.tables.filter((x) => x.kind === 'r' || x.kind === 'p')) {
    const triggers = cat.triggers.filter((g) => g.tableOid === t.oid && g.enabled);
    if (t.schema === 'archive') {
      const writers = [...new Set([...t.writableBy.insert, ...t.writableBy.update])].filter((r) => groups.has(r));
      if (writers.length > 0) {
        out.push(acceptedBy(t.comment, finding('archive-writable', `table ${qualified(t)}`,
          'a run-time role may insert or update archived rows directly: it could forge an archived record; archiving goes through app.archive_rows',
          `REVOKE INSERT, UPDATE ON ${qualified(t)} FROM ${writers.map((r) => cat.roles.find((x) => x.oid === r)?.name ?? r).join(', ')};`)));
      }
    }
    if (!isPersonal(t)) continue;
    const unguarded = (['update', 'delete'] as const).filter((ev) =>
      t.writableBy[ev].some((r) => operators.has(r)) &&
      !triggers.some((g) => CHANGE_GUARDS.includes(g.functionName) && g.events.has(ev)));
    if (unguarded.length > 0) {
      out.push(acceptedBy(t.comment, finding('operator-change-unguarded', `table ${qualified(t)}`,
        `operators may ${unguarded.join(' and ')} its rows with no guard checking legal holds and the transaction's purpose: psql skips what trustctl enforces`,
        `CREATE TRIGGER operator_guard_${unguarded[0]} AFTER ${unguarded[0]!.toUpperCase()} ON ${qualified(t)} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION app.guard_operator_change();`)));
    }
  }
  return out;
}

function writesPersonalData(cat: Catalog, f: CatalogFunction): string[] {
  const hit = new Set<string>();
  for (const m of f.source.matchAll(WRITES)) {
    const t = cat.tables.find((x) => x.schema === unquote(m[1]!.toLowerCase()) && x.name === unquote(m[2]!.toLowerCase()));
    if (t && isPersonal(t)) hit.add(qualified(t));
  }
  return [...hit].sort();
}

function functionChecks(cat: Catalog): Finding[] {
  const out: Finding[] = [];
  for (const f of cat.functions) {
    const obj = `function ${f.signature}`;
    const binds = BINDING_CALLS.test(f.source);
    const implementsBinding = /^app\.(bind_context|check_bound_context)\(/.test(f.signature);
    if ((f.isTrigger || f.volatility === 'v') && CONTEXT_READ.test(f.source) && !binds && !implementsBinding) {
      out.push(acceptedBy(f.comment, finding('context-read-unbound', obj,
        'reads the acting user or operator session from settings that can change inside a statement, and never checks them against the transaction’s binding',
        `Take the actor from app.bind_context() (or call app.require_operator_org) in ${f.signature}.`)));
    }
    if (f.securityDefiner && f.executableBy.length > 0 && !binds) {
      const tables = writesPersonalData(cat, f);
      if (tables.length > 0) {
        out.push(finding('definer-writes-unchecked', obj,
          `runs as ${f.owner}, which the operator guard does not hold, and changes ${tables.join(', ')} without binding the session and a checked purpose: a caller skips holds and retention through it`,
          `Begin with app.require_operator_org(org) and a purpose (app.begin_retention_batch / app.begin_erasure), or do not grant it to run-time roles.`));
      }
    }
    if (PLATFORM_KIND.test(f.source) && !PINNED.test(f.source)) {
      out.push(finding('trusts-tenant-column', obj,
        'decides who is platform staff from organisations.kind or users.kind alone, which a tenant’s admin writes',
        'Compare the organisation with app.platform_org_id() (platform_settings, written only by the owner).'));
    }
  }
  for (const p of cat.policies) {
    const text = `${p.using ?? ''} ${p.withCheck ?? ''}`;
    if (PLATFORM_KIND.test(text) && !PINNED.test(text)) {
      const t = cat.tables.find((x) => x.oid === p.tableOid);
      out.push(finding('trusts-tenant-column', `policy ${p.name} on ${t ? qualified(t) : p.tableOid}`,
        'decides who is platform staff from organisations.kind or users.kind alone, which a tenant’s admin writes',
        'Compare the organisation with app.platform_org_id() (platform_settings, written only by the owner).'));
    }
  }
  return out;
}
