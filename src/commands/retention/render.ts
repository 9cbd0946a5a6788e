// How retention policies, holds and the plan read to a person.
import { retentionCategories } from '../../retention/categories.js';
import type { PlanRow } from '../../retention/plan.js';
import type { UnitReport } from '../../retention/sweep.js';
import type { LegalHold, RetentionPolicy } from '../../retention/policies.js';
import { printable } from '../../io/printable.js';

export function renderPolicies(policies: readonly RetentionPolicy[], withUncovered = false): string {
  const lines = [
    `${'organisation'.padEnd(16)}${'site'.padEnd(22)}${'category'.padEnd(16)}${'keep'.padEnd(12)}${'action'.padEnd(11)}clock`,
    ...policies.map(
      (p) => `${p.org.padEnd(16)}${(p.site ?? '(every site)').padEnd(22)}${p.category.padEnd(16)}${p.keepFor.padEnd(12)}${p.action.padEnd(11)}${p.clock}`,
    ),
  ];
  if (withUncovered) {
    const orgs = [...new Set(policies.map((p) => p.org))];
    for (const org of orgs) {
      const missing = retentionCategories().map((c) => c.name).filter((c) => !policies.some((p) => p.org === org && p.category === c));
      if (missing.length > 0) lines.push(`${org}: no policy (never swept): ${missing.join(', ')}`);
    }
    if (policies.length === 0) lines.push('No retention policies: nothing is swept. Recommended starting points are in docs/retention.md.');
  }
  return lines.join('\n');
}

export function renderHolds(holds: readonly LegalHold[]): string {
  if (holds.length === 0) return 'No legal holds.';
  return holds
    .map((h) => {
      const scope = [h.site ? `site ${h.site}` : null, h.subjectId ? `subject ${h.subjectId}` : null, h.category ? `category ${h.category}` : null]
        .filter(Boolean)
        .join(', ');
      return `  ${h.id}  ${h.org}  ${scope}${h.releasedAt ? `  RELEASED ${h.releasedAt} (${printable(h.releaseReason)})` : ''}\n  reason: ${printable(h.reason)}`;
    })
    .join('\n');
}

export function renderPlan(rows: readonly PlanRow[], asOf: Date): string {
  if (rows.length === 0) return `No retention policies in scope: nothing would be swept (as of ${asOf.toISOString()}).`;
  const lines = [
    `Retention plan as of ${asOf.toISOString()} (a dry run: nothing changed)`,
    `${'organisation'.padEnd(15)}${'site'.padEnd(23)}${'category'.padEnd(15)}${'table'.padEnd(22)}${'action'.padEnd(10)}${'keep'.padEnd(10)}${'cut-off'.padEnd(12)}${'due'.padStart(9)}${'held'.padStart(8)}${'to act'.padStart(9)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.org.padEnd(15)}${(r.site ?? '(organisation)').padEnd(23)}${r.category.padEnd(15)}${r.table.padEnd(22)}${r.action.padEnd(10)}` +
        `${r.keepFor.padEnd(10)}${r.cutoff.slice(0, 10).padEnd(12)}${String(r.due).padStart(9)}${String(r.held).padStart(8)}${String(r.toAct).padStart(9)}`,
    );
  }
  const total = rows.reduce((a, r) => ({ due: a.due + r.due, held: a.held + r.held, toAct: a.toAct + r.toAct }), { due: 0, held: 0, toAct: 0 });
  lines.push(`Total: ${total.due} due, ${total.held} held, ${total.toAct} to act on. Clocks: ${[...new Set(rows.map((r) => `${r.table} ${r.clock}`))].join('; ')}.`);
  return lines.join('\n');
}

export function renderSweep(units: ReadonlyArray<UnitReport & { org: string }>): string {
  if (units.length === 0) return 'No retention policies in scope: nothing swept.';
  const lines = [
    `${'organisation'.padEnd(15)}${'site'.padEnd(23)}${'category'.padEnd(15)}${'table'.padEnd(22)}${'action'.padEnd(10)}${'swept'.padStart(8)}${'held'.padStart(7)}${'left'.padStart(6)}  status`,
  ];
  for (const u of units) {
    lines.push(
      `${u.org.padEnd(15)}${(u.site ?? '(organisation)').padEnd(23)}${u.category.padEnd(15)}${u.table.padEnd(22)}${u.action.padEnd(10)}` +
        `${String(u.swept).padStart(8)}${String(u.held).padStart(7)}${String(u.remaining).padStart(6)}  ${u.status}${u.resumed ? ' (resumed)' : ''}${u.note ? `: ${printable(u.note)}` : ''}`,
    );
  }
  const swept = units.reduce((n, u) => n + u.swept, 0);
  const longest = Math.max(0, ...units.map((u) => u.longestBatchMs));
  lines.push(`Swept ${swept} row(s); longest batch transaction ${longest} ms. Each run is in the audit trail (retention.sweep).`);
  return lines.join('\n');
}
