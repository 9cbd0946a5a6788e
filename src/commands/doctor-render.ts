// Human output of `trustctl doctor`.
import chalk, { Chalk } from 'chalk';
import type { DoctorReport } from '../doctor/index.js';
import { printable } from '../io/printable.js';

export function renderDoctorReport(report: DoctorReport, { color }: { color: boolean }): string {
  const c = color ? chalk : new Chalk({ level: 0 });
  const label = { error: c.red.bold('ERROR'), warn: c.yellow.bold('WARN '), info: c.cyan('INFO ') };
  const k = report.checked;
  const lines = [
    `trustctl doctor: database ${printable(report.database)}, PostgreSQL ${printable(report.serverVersion)}, schema${report.schemas.length > 1 ? 's' : ''} ${printable(report.schemas.join(', '))}`,
    `Checked ${k.tables} tables (${k.tenantTables} with a tenant key), ${k.policies} policies, ${k.runtimeRoles} run-time roles, ` +
      `${k.functions} functions, ${k.indexes} indexes, ${k.foreignKeys} foreign keys.`,
  ];
  if (report.probe?.home) {
    lines.push(
      `Live probe (rolled back): ${report.probe.tables} tenant tables × ${report.probe.personas.length} personas, ${report.probe.attempts} attempts, ` +
        `${report.probe.crossed} crossed a tenant boundary.`,
      ...report.probe.personas.map((p) => `  as ${printable(p)}`),
    );
  } else if (!report.probe) {
    lines.push('Live probe: not run (--no-probe).');
  }
  lines.push('');
  for (const f of report.findings) {
    // Object names come from the catalog, which a database user can name as they like.
    lines.push(`${label[f.severity]}  ${c.bold(f.code)}  ${printable(f.object)}`, `       ${printable(f.problem)}`, `       fix: ${printable(f.fix)}`, `       see ${f.doc}`);
  }
  const s = report.summary;
  if (report.findings.length > 0) lines.push('');
  lines.push(
    s.error > 0
      ? c.red(`FAILED: ${s.error} error(s), ${s.warn} warning(s), ${s.info} info`)
      : `OK: no errors, ${s.warn} warning(s), ${s.info} info`,
  );
  return lines.join('\n');
}
