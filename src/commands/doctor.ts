// `trustctl doctor`: prove a live database's tenant isolation.
import type { Command } from 'commander';
import { commandContext, type CommandContext } from './context.js';
import { ExitCode } from '../errors.js';
import { collect } from './scope.js';
import type { DoctorReport } from '../doctor/index.js';


export const DOCTOR_REASON = 'trustctl doctor: live isolation probe (rolled back)';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .summary('check a live database’s tenant isolation: catalog checks and a live probe')
    .description(
      'check a live database’s tenant isolation. Catalog checks: row-level security on and forced on every tenant table, policies that read the tenant key (never USING (true), never two permissive ones for one role and command, settings read with nullif), run-time roles that are not superuser, BYPASSRLS or owners, no PUBLIC, TRUNCATE or REFERENCES grants, views with security_invoker, no readable materialized views or foreign tables, SECURITY DEFINER functions with a fixed search_path and no PUBLIC execute, unique indexes and foreign keys that include the tenant key, audit-capture and append-only triggers, and the data map against the catalog. Then a live probe that undoes everything it does: as synthetic people (a user with every role at one site, teaching a class and guardian of a child there; an organisation admin) and as operators (without a session, with a made-up session id, in a session for one organisation), it counts other tenants’ rows that real statements reach in every tenant table, tries to insert a copy of one, and evaluates each command’s policies (SELECT, INSERT, UPDATE and its WITH CHECK, DELETE) over other tenants’ rows. The probe runs in an operator session scoped to the organisation with the most sites (recorded in the audit trail; --reason overrides its default reason). Each finding names its severity, the object, what is wrong and the fix, and links to docs/doctor.md. Output is sorted, so two runs on one database print the same. Exit 0 if no finding is an error, 3 otherwise.',
    )
    .option('--schema <name>', 'a schema whose tables to check (repeatable; default: every schema a run-time role may use)', collect, [])
    .option('--no-probe', 'catalog checks only: open no operator session, touch no table')
    .action(async (opts: { schema: string[]; probe: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseSchemaName } = await import('../doctor/index.js');
      opts.schema.forEach(parseSchemaName);
      const report = await runDoctorCommand(ctx, opts.schema, opts.probe);
      const { renderDoctorReport } = await import('./doctor-render.js');
      ctx.print(report, () => renderDoctorReport(report, { color: Boolean(process.stdout.isTTY) }));
      if (report.summary.error > 0) process.exitCode = ExitCode.verificationFailed;
    });
}

/** Connects as the operator, checks the catalog, then probes (unless probe is false). */
export async function runDoctorCommand(ctx: CommandContext, schemaNames: readonly string[], probe: boolean): Promise<DoctorReport> {
  const { withOperatorDb } = await import('../db/with-db.js');
  const { withOperatorSession } = await import('../db/operator-session.js');
  const { resolveSchemas, checkCatalog, probeTables, buildReport } = await import('../doctor/index.js');
  return withOperatorDb(ctx.db, async (db) => {
    const client = await db.pool.connect();
    let checked;
    try {
      const schemas = await resolveSchemas(client, schemaNames);
      checked = await checkCatalog(client, schemas);
    } finally {
      client.release();
    }
    if (!probe) return buildReport(checked.catalog, checked.findings, null);
    const { chooseProbeHome, runLiveProbe, skippedProbe } = await import('../doctor/probe.js');
    const home = await chooseProbeHome(db.kysely);
    const probed =
      !home || !home.reachable
        ? skippedProbe('the live probe needs at least two sites to probe across')
        : await withOperatorSession(
            db.kysely,
            { reason: ctx.options.reason ?? DOCTOR_REASON, ticket: ctx.options.ticket, orgSlugs: [home.slug], command: ctx.commandLine },
            (session) => runLiveProbe(session, probeTables(checked.catalog)),
            { logger: ctx.logger },
          );
    return buildReport(checked.catalog, [...checked.findings, ...probed.findings], probed.summary);
  });
}
