// How the demo's tour reads to a person.
import chalk from 'chalk';
import { printable } from '../io/printable.js';
import type { DemoSeedResult } from '../seed/demo.js';
import type { DemoAuditResult, DemoDsarResult, TourResult } from '../seed/tour.js';
import type { DoctorReport } from '../doctor/index.js';

export function renderTour(
  seed: DemoSeedResult,
  tour: TourResult & { operator: string },
  dsar: DemoDsarResult,
  audit: DemoAuditResult,
  doctor: DoctorReport,
  /** Whether a `trustctl` command is on the PATH; else the next steps say `npx trustctl`. */
  onPath: boolean,
): string {
  const h = (s: string): string => chalk.bold(s);
  const lines: string[] = [];
  lines.push(
    seed.seeded
      ? `${h('1. Seeded')} the demo dataset (anchor date ${seed.anchorDate}; media files in ${seed.mediaDir}).`
      : `${h('1. Demo data')} was already seeded; nothing changed.`,
  );
  lines.push('');
  lines.push(`${h('2. The operator’s door.')} You are operator role "${tour.operator}" (not superuser, not BYPASSRLS, owns nothing).`);
  lines.push(`   Without an operator session you see ${tour.withoutSession.childrenVisible} children.`);
  lines.push(
    `   With a session scoped to ${tour.scopedSession.org}: ${tour.scopedSession.childrenVisible} children there, ` +
      `${tour.scopedSession.otherOrgChildrenVisible} from any other organisation.`,
  );
  lines.push('');
  lines.push(`${h('3. What is held')} (a session over every organisation, reason "trustctl demo: guided tour"):`);
  const cols = ['sites', 'children', 'staff', 'guardians', 'attendance', 'notes', 'safeguarding', 'media', 'auditEvents'] as const;
  lines.push(`   ${'organisation'.padEnd(15)}${cols.map((c) => c.padStart(13)).join('')}`);
  for (const o of tour.organisations) {
    lines.push(`   ${o.slug.padEnd(15)}${cols.map((c) => String(o[c]).padStart(13)).join('')}`);
  }
  lines.push('');
  lines.push(
    `${h('4. The audit trail')} recorded every row the seed created (actor "system") and ${tour.sessionEvents} operator-session start/end events, including this tour’s.`,
  );
  lines.push('');
  const e = dsar.export;
  lines.push(
    `${h('5. A subject access request')} (${e.request.reference}, due ${e.request.effectiveDueOn}): the bundle for ${printable(e.subject.name)} is`,
  );
  lines.push(`   ${e.path}`);
  lines.push(`   and beside it the DPO’s record of what was withheld and why (not for the requester): ${e.dpoRecordPath}`);
  lines.push(
    `   ${e.files} files, ${Object.values(e.rows).reduce((a, b) => a + b, 0)} records, sha256 ${e.sha256.slice(0, 16)}…; ` +
      (e.withheld.length === 0
        ? 'nothing withheld.'
        : `withheld pending review: ${e.withheld.map((w) => `${w.table} ${w.rows}`).join(', ')} (the parent’s copy says only that something was withheld).`),
  );
  lines.push(
    dsar.verify.ok
      ? `   Verified offline: ${dsar.verify.filesChecked} files match its manifest. Open index.html inside it to read it as a parent would.`
      : `   VERIFY FAILED: ${printable(dsar.verify.problems.join('; '))}`,
  );
  lines.push('');
  const sealed = audit.seal.reduce((n, r) => n + r.sealed, 0);
  const entries = audit.verify.orgs.reduce((n, o) => n + o.entries, 0);
  lines.push(
    `${h('6. The audit trail, sealed.')} ${sealed.toLocaleString('en-GB')} new events appended to the organisations’ hash chains ` +
      `(${audit.seal.map((r) => `${r.org} head ${r.headSeq}`).join(', ')}), with a checkpoint each.`,
  );
  lines.push(
    audit.verify.ok
      ? `   Verified: ${entries.toLocaleString('en-GB')} chain entries recomputed, nothing changed, removed or inserted.`
      : `   VERIFY FAILED: ${printable(audit.verify.orgs.flatMap((o) => o.problems).slice(0, 3).join('; '))}`,
  );
  lines.push('');
  const k = doctor.checked;
  lines.push(
    `${h('7. Isolation, checked.')} The doctor read the catalog (${k.tenantTables} tenant tables, ${k.policies} policies, ` +
      `${k.runtimeRoles} run-time roles, ${k.functions} functions) and probed the boundary live, in a transaction it rolled back:`,
  );
  if (doctor.probe?.home) {
    lines.push(
      `   as ${doctor.probe.personas.length} personas (synthetic people at ${doctor.probe.home}, operators with no, a made-up and a scoped session), ` +
        `${doctor.probe.attempts} attempts to read, insert, update or delete another tenant’s rows: ${doctor.probe.crossed} succeeded.`,
    );
  }
  const s = doctor.summary;
  const accepted = doctor.findings.filter((f) => f.severity === 'info' && f.problem.includes('— accepted (')).length;
  lines.push(
    s.error === 0
      ? `   ${s.error} errors, ${s.warn} warnings; ${accepted} exceptions accepted in the catalog (reviewed definer functions, two keys: docs/doctor.md#accepted-findings).`
      : `   ${s.error} ERROR(S): ${doctor.findings.filter((f) => f.severity === 'error').slice(0, 3).map((f) => `${f.code} ${printable(f.object)}`).join('; ')}`,
  );
  lines.push('');
  const t = onPath ? 'trustctl' : 'npx trustctl';
  lines.push(
    `Next: ${t} doctor · ${t} dsar list --org oak-trust · ${t} audit verify · ${t} audit export --org oak-trust --out trail.csv · ${t} --help`,
  );
  if (!onPath) lines.push('      (npx runs trustctl from this folder; `npm install -g .` here puts `trustctl` on your PATH)');
  return lines.join('\n');
}
