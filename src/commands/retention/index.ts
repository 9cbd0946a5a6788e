// `trustctl retention …` and `trustctl hold …`: retention policies, legal
// holds, and the plan of what a sweep would do.
import type { Command } from 'commander';
import { commandContext, parseSlug, parseUuid, parseWholeNumber, resolveReason } from '../context.js';
import { collect, inOrg, orgScopeOptions, parseOrgScope, withScopedSession } from '../scope.js';
import { renderHolds, renderPlan, renderPolicies } from './render.js';

export function registerRetentionCommands(program: Command): void {
  const retention = program
    .command('retention')
    .summary('retention: policies per organisation, site and category, the plan, sweeps, the archive')
    .description(
      'retention policies per organisation (optionally per site) and data category: how long to keep, from which clock, and what to do then (delete, anonymise, archive). Legal holds (trustctl hold) keep rows from ever being swept. retention plan shows, per site and category, what is due, what is held, and the cut-off.',
    );
  const policy = retention.command('policy').description('set, unset and list retention policies (changes are audited)');
  policy
    .command('set')
    .summary('set how long a category is kept at an organisation or one site, and what then')
    .description(
      'set a retention policy: for --category at --org (every site without its own policy) or one --site, keep rows for --keep after their clock, then --action. The clock is the data map’s for each table (e.g. the session date for attendance, the child’s 25th birthday for safeguarding) unless --clock names one. Needs --reason; audited.',
    )
    .requiredOption('--org <slug>', 'the organisation')
    .option('--site <slug>', 'one site (default: the organisation’s policy)')
    .requiredOption('--category <name>', 'a data category, e.g. attendance, notes, safeguarding (see: retention policy list)')
    .requiredOption('--keep <period>', 'how long after the clock, e.g. 30d, 12w, 6mo, 7y')
    .requiredOption('--action <action>', 'delete, anonymise or archive')
    .option('--clock <column>', 'a date column of the category’s tables, or child_left_on / child_25th_birthday')
    .addHelpText('after', '\nExample:\n  trustctl retention policy set --org oak-trust --category attendance --keep 3y --action archive --reason "Retention schedule 2026"')
    .action(async (opts: { org: string; site?: string; category: string; keep: string; action: string; clock?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { findCategory, parseAction, parseKeepFor } = await import('../../retention/categories.js');
      const { parseClockName, setRetentionPolicy } = await import('../../retention/policies.js');
      const { findSite } = await import('../../access/grants.js');
      const category = findCategory(opts.category);
      const action = parseAction(opts.action, category);
      const keepFor = parseKeepFor(opts.keep);
      const siteSlug = opts.site !== undefined ? parseSlug(opts.site, 'site') : null;
      const clock = opts.clock !== undefined ? parseClockName(opts.clock) : undefined;
      const reason = await resolveReason(ctx, 'this retention policy');
      const result = await inOrg(ctx, opts.org, reason, async (trx, org, session) => {
        const site = siteSlug ? await findSite(trx, org, siteSlug) : null;
        return setRetentionPolicy(trx, session.id, { org, site, category: category.name, keepFor, action, ...(clock ? { clock } : {}) });
      });
      ctx.print(result, () => `Set:\n${renderPolicies([result])}`);
    });
  policy
    .command('unset')
    .summary('remove a policy (the category is then not swept there, or falls back to the organisation’s)')
    .requiredOption('--org <slug>', 'the organisation')
    .option('--site <slug>', 'the site whose own policy to remove')
    .requiredOption('--category <name>', 'the data category')
    .action(async (opts: { org: string; site?: string; category: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { unsetRetentionPolicy } = await import('../../retention/policies.js');
      const { findSite } = await import('../../access/grants.js');
      const { findCategory } = await import('../../retention/categories.js');
      const category = findCategory(opts.category).name;
      const siteSlug = opts.site !== undefined ? parseSlug(opts.site, 'site') : null;
      const reason = await resolveReason(ctx, 'removing this retention policy');
      const result = await inOrg(ctx, opts.org, reason, async (trx, org) =>
        unsetRetentionPolicy(trx, org, siteSlug ? await findSite(trx, org, siteSlug) : null, category),
      );
      ctx.print(result, () => `Removed:\n${renderPolicies([result])}`);
    });
  orgScopeOptions(policy.command('list').description('retention policies, and the categories that have none (never swept)'), 'list')
    .action(async (opts: { org: string[]; allOrgs?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { listRetentionPolicies } = await import('../../retention/policies.js');
      const result = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Retention: list policies' }, (session) =>
        session.transaction((trx) => listRetentionPolicies(trx, session.orgIds)),
      );
      ctx.print(result, () => renderPolicies(result, true));
    });

  registerSweep(retention);
  retention
    .command('archive')
    .description('the archive schema, where archived rows wait to be exported')
    .command('export')
    .summary('write an organisation’s archived rows to JSON Lines with a manifest, verify, then purge them')
    .description(
      'write an organisation’s archived rows to DIR/archive-ORG-TIME/, one TABLE.jsonl per table (one row as JSON per line) and manifest.json (rows, bytes and SHA-256 of each file); the directory (0700, files 0600, never written through a symlink) is built in a private work folder and renamed when complete. The files are read back and checked, and only then are exactly the exported rows purged from the archive schema (unless --no-purge). Audited with the manifest’s SHA-256.',
    )
    .requiredOption('--org <slug>', 'the organisation')
    .requiredOption('--out <dir>', 'an existing directory for the export')
    .option('--category <name>', 'only this category’s tables (repeatable)', collect, [])
    .option('--no-purge', 'export only; keep the rows in the archive')
    .action(async (opts: { org: string; out: string; category: string[]; purge: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { findCategory } = await import('../../retention/categories.js');
      const tables = opts.category.length > 0 ? opts.category.flatMap((c) => findCategory(c).tables.map((t) => t.table)) : null;
      const { exportArchive } = await import('../../retention/archive-export.js');
      const { findOrganisation } = await import('../../dsar/subject.js');
      const slug = parseSlug(opts.org);
      const { assertWritableDirectory } = await import('../../io/paths.js');
      await assertWritableDirectory(opts.out, '--out');
      const { resolve } = await import('node:path');
      const result = await withScopedSession(ctx, { orgSlugs: [slug], reason: ctx.options.reason ?? 'Retention: archive export' }, async (session) => {
        const org = await session.transaction((trx) => findOrganisation(trx, slug));
        return exportArchive(session, { id: org.id, slug }, resolve(opts.out), tables, { purge: opts.purge });
      });
      ctx.print(result, () =>
        [
          `Exported to ${result.dir} (manifest sha256 ${result.manifestSha256}):`,
          ...result.files.map((f) => `  ${f.name.padEnd(28)} ${String(f.rows).padStart(9)} rows  ${f.sha256.slice(0, 16)}…`),
          opts.purge ? `Verified; purged ${result.purged} row(s) from the archive.` : 'Verified; nothing purged (--no-purge).',
        ].join('\n'),
      );
    });
  orgScopeOptions(
    retention
      .command('plan')
      .summary('dry run: per site and category, rows due, rows held, cut-off and action')
      .description(
        'dry run of a sweep: for every policy, per site and category and table, the cut-off, the rows past it, the rows a legal hold keeps, and what the sweep would do with the rest. Changes nothing. Without --org: every organisation.',
      ),
    'plan',
  )
    .option('--as-of <time>', 'plan as of this moment (ISO 8601; default: now)')
    .action(async (opts: { org: string[]; allOrgs?: boolean; asOf?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { parseTimeOption } = await import('../../access/duration.js');
      const asOf = opts.asOf ? parseTimeOption(opts.asOf, '--as-of') : new Date();
      const { planRetention } = await import('../../retention/plan.js');
      const rows = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Retention: plan' }, (session) =>
        session.transaction((trx) => planRetention(trx, session.orgIds, asOf), { isolation: 'repeatable read', readOnly: true }),
      );
      ctx.print({ asOf: asOf.toISOString(), rows }, () => renderPlan(rows, asOf));
    });
}

function registerSweep(retention: Command): void {
  orgScopeOptions(
    retention
      .command('sweep')
      .summary('apply the policies: archive, delete or anonymise what is due, in short resumable batches')
      .description(
        'apply the retention policies: for every site, category and table with a policy, rows past the cut-off and not under a legal hold are archived (to the archive schema) and deleted, deleted, or anonymised, in keyset batches of --batch-size rows, each its own short transaction with lock_timeout and FOR UPDATE SKIP LOCKED. A run killed at any moment is resumed by the next sweep with the same cut-off; a second sweep over the same data changes nothing. One sweep per organisation at a time. Without --yes it shows the plan and, on a terminal, asks; elsewhere it exits 2. One audit event per run with its counts. A policy you set or changed in the last 24 hours is skipped (another operator applies it); the database checks every batch against its run and refuses held rows. Name the organisations with --org; every organisation needs --all-orgs and an explicit --reason (exit 2 otherwise, nothing changed).',
      ),
    'sweep',
  )
    .option('--category <name>', 'only this category (repeatable)', collect, [])
    .option('--batch-size <n>', 'rows per transaction', '200')
    .option('--max-duration <duration>', 'stop after this long (e.g. 20m); the next sweep resumes')
    .action(async (opts: { org: string[]; allOrgs?: boolean; category: string[]; batchSize: string; maxDuration?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { RefusedError } = await import('../../errors.js');
      // Destructive across every school: named, never the default, and never under a canned reason.
      const scope = parseOrgScope(opts, 'refuse');
      if ('allOrgs' in scope && !ctx.options.reason?.trim()) {
        throw new RefusedError('a sweep of every organisation needs an explicit reason', 'Pass --reason "why" with --all-orgs; it is recorded in the audit trail');
      }
      const { findCategory } = await import('../../retention/categories.js');
      const { parseDuration } = await import('../../access/duration.js');
      const batchSize = parseWholeNumber(opts.batchSize, '--batch-size', 1, 100_000);
      const categories = opts.category.map((c) => findCategory(c).name);
      const maxDurationMs = opts.maxDuration ? parseDuration(opts.maxDuration, '--max-duration') * 1000 : undefined;
      const { planRetention } = await import('../../retention/plan.js');
      const { withOperatorDb } = await import('../../db/with-db.js');
      const { withOperatorSession } = await import('../../db/operator-session.js');
      const { sweepOrganisation } = await import('../../retention/sweep.js');
      const reason = ctx.options.reason ?? 'Retention: sweep';
      const result = await withOperatorDb(ctx.db, (db) =>
        withOperatorSession(db.kysely, { ...scope, reason, ticket: ctx.options.ticket, command: ctx.commandLine }, async (session) => {
          const plan = (await session.transaction((trx) => planRetention(trx, session.orgIds, new Date()), { readOnly: true }))
            .filter((r) => categories.length === 0 || categories.includes(r.category));
          if (!ctx.options.yes) {
            const toAct = plan.reduce((n, r) => n + r.toAct, 0);
            if (!ctx.interactive || ctx.options.json) {
              process.stderr.write(`${renderPlan(plan, new Date())}\n`);
              throw new RefusedError(`retention sweep would act on ${toAct} row(s): pass --yes to sweep`, 'Review the plan above first');
            }
            process.stderr.write(`${renderPlan(plan, new Date())}\n`);
            const { confirm } = await import('@inquirer/prompts');
            if (!(await confirm({ message: `Archive, delete or anonymise ${toAct} row(s) as shown?`, default: false }))) {
              throw new RefusedError('sweep not confirmed; nothing changed');
            }
          }
          const orgs = await session.transaction((trx) =>
            trx.selectFrom('organisations').select(['org_id', 'slug']).where('org_id', 'in', [...session.orgIds]).orderBy('slug').execute(),
          );
          const progress = ctx.interactive && !ctx.options.json;
          const t0 = Date.now();
          const reports = [];
          for (const org of orgs) {
            const units = await db.kysely.connection().execute((conn) =>
              sweepOrganisation(conn, session, { id: org.org_id, slug: org.slug }, {
                categories,
                batchSize,
                startedAt: t0,
                ...(maxDurationMs !== undefined ? { maxDurationMs } : {}),
                ...(progress
                  ? {
                      onProgress: (p: { unit: string; swept: number; total: number }) => {
                        const rate = p.swept / Math.max(0.001, (Date.now() - t0) / 1000);
                        const eta = rate > 0 ? Math.round((p.total - p.swept) / rate) : 0;
                        process.stderr.write(`\r${p.unit}: ${p.swept}/${p.total} rows, ${Math.round(rate)}/s, ETA ${eta}s   `);
                      },
                    }
                  : {}),
              }),
            );
            reports.push(...units.map((x) => ({ org: org.slug, ...x })));
          }
          if (progress) process.stderr.write('\n');
          return reports;
        }, { logger: ctx.logger }),
      );
      const { renderSweep } = await import('./render.js');
      ctx.print(result, () => renderSweep(result));
      if (result.some((r) => r.status === 'failed')) process.exitCode = 1;
    });
}

export function registerHoldCommands(program: Command): void {
  const hold = program
    .command('hold')
    .summary('legal holds: rows they cover are never swept')
    .description('legal holds by subject, site, category or a combination, with a reason: a retention sweep never touches a row one covers. Audited.');
  hold
    .command('add')
    .summary('place a hold')
    .requiredOption('--org <slug>', 'the organisation')
    .option('--site <slug>', 'only this site')
    .option('--subject <id>', 'only rows about or by this person (a child’s or user’s id)')
    .option('--category <name>', 'only this data category')
    .addHelpText('after', '\nAt least one of --site, --subject, --category. Needs --reason.\nExample:\n  trustctl hold add --org oak-trust --subject 3f6c… --reason "Tribunal case 2026/114"')
    .action(async (opts: { org: string; site?: string; subject?: string; category?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const subjectId = opts.subject !== undefined ? parseUuid(opts.subject, 'subject') : null;
      const siteSlug = opts.site !== undefined ? parseSlug(opts.site, 'site') : null;
      const { findCategory } = await import('../../retention/categories.js');
      const category = opts.category !== undefined ? findCategory(opts.category).name : null;
      const reason = await resolveReason(ctx, 'this legal hold');
      const { addLegalHold } = await import('../../retention/policies.js');
      const { findSite } = await import('../../access/grants.js');
      const result = await inOrg(ctx, opts.org, reason, async (trx, org, session) => {
        const site = siteSlug ? await findSite(trx, org, siteSlug) : null;
        return addLegalHold(trx, session.id, { org, site, subjectId, category, reason });
      });
      ctx.print(result, () => `Placed:\n${renderHolds([result])}`);
    });
  hold
    .command('release')
    .argument('<id>', 'the hold’s id (see: trustctl hold list)')
    .summary('release a hold, with --reason')
    .requiredOption('--org <slug>', 'the organisation')
    .action(async (id: string, opts: { org: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const holdId = parseUuid(id, 'hold');
      const reason = await resolveReason(ctx, 'releasing this legal hold');
      const { releaseLegalHold } = await import('../../retention/policies.js');
      const result = await inOrg(ctx, opts.org, reason, (trx, org, session) => releaseLegalHold(trx, session.id, org, holdId, reason));
      ctx.print(result, () => `Released:\n${renderHolds([result])}`);
    });
  orgScopeOptions(hold.command('list').description('active holds (with --all, released ones too)'), 'list')
    .option('--all', 'include released holds')
    .action(async (opts: { org: string[]; allOrgs?: boolean; all?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { listLegalHolds } = await import('../../retention/policies.js');
      const result = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Retention: list holds' }, (session) =>
        session.transaction((trx) => listLegalHolds(trx, session.orgIds, Boolean(opts.all))),
      );
      ctx.print(result, () => renderHolds(result));
    });
}
