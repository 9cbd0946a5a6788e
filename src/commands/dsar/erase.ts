import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { join } from 'node:path';
import { withScopedSession } from '../scope.js';
import { commandContext, parseSlug, type CommandContext } from '../context.js';
import { VERSION } from '../../version.js';
import { dsarReason, mediaDirOf, subjectPicker } from './shared.js';
import type { ErasurePlan, MediaRemoval, ReplayOutcome } from '../../dsar/erase.js';

/** Where certificates go (and --replay reads them) unless told otherwise. */
async function defaultCertificateDir(): Promise<string> {
  const { trustctlHome } = await import('../../db/embedded.js');
  return process.env.TRUSTCTL_ERASURE_DIR ?? join(trustctlHome(), 'erasures');
}

/** The plan as a table a DPO can check before confirming. */
export function renderErasurePlan(plan: ErasurePlan): string {
  const lines = [`${'table'.padEnd(34)} ${'delete'.padStart(7)} ${'anonymise'.padStart(9)} ${'keep'.padStart(6)}  how / why`];
  for (const t of plan.tables) {
    const kept = t.kept.reduce((n, k) => n + k.rows, 0);
    const how = [
      ...(t.anonymised > 0 ? [Object.entries(t.columns).map(([c, s]) => `${c}: ${s}`).join(', ')] : []),
      ...(t.already_anonymised > 0 ? [`${t.already_anonymised} already anonymised`] : []),
      ...((t.revoked ?? 0) > 0 ? [`revoke ${t.revoked} live grant(s)`] : []),
      ...t.kept.map((k) => `kept ${k.rows}: ${k.reason}${k.until ? ` until ${k.until}` : ''}`),
    ].join('; ');
    lines.push(`${t.table.padEnd(34)} ${String(t.deleted).padStart(7)} ${String(t.anonymised).padStart(9)} ${String(kept).padStart(6)}  ${how}`);
  }
  lines.push(
    `${'total'.padEnd(34)} ${String(plan.totals.deleted).padStart(7)} ${String(plan.totals.anonymised).padStart(9)} ${String(plan.totals.kept).padStart(6)}`,
  );
  if (plan.mediaFiles > 0) lines.push(`${plan.mediaFiles} media file(s) will be removed from the store after the commit.`);
  const reasons = plan.tables.flatMap((t) => t.kept.map((k) => ({ table: t.table, ...k })));
  if (reasons.length > 0) {
    lines.push('Kept, and why:');
    const seen = new Set<string>();
    for (const k of reasons) {
      const line = `  ${k.reason}: ${printable(k.why)}`;
      if (!seen.has(line)) lines.push(line);
      seen.add(line);
    }
  }
  return lines.join('\n');
}

function mediaLines(media: readonly MediaRemoval[]): string[] {
  const lines: string[] = [];
  const removed = media.reduce((n, m) => n + m.removed, 0);
  if (removed > 0) lines.push(`  media    ${removed} file(s) removed from the store`);
  for (const m of media) {
    for (const f of m.failed) lines.push(`  WARNING  media ${printable(f.key)} not removed (${printable(f.problem)}); the next dsar erase in this organisation retries it`);
  }
  return lines;
}

async function replay(ctx: CommandContext, opts: { since?: string; from?: string; mediaDir?: string }): Promise<void> {
  const { RefusedError } = await import('../../errors.js');
  if (!opts.since) throw new RefusedError('--replay needs --since TIME (the time of the backup that was restored)');
  const { parseTimeOption } = await import('../../access/duration.js');
  const since = parseTimeOption(opts.since, '--since', { dates: 'utc' });
  const { assertDirectory } = await import('../../io/paths.js');
  if (opts.from !== undefined) await assertDirectory(opts.from, '--from', 'certificate directory');
  const from = opts.from ?? (await defaultCertificateDir());
  const mediaDir = await mediaDirOf(opts.mediaDir);
  const { readCertificates, replayErasures } = await import('../../dsar/erase.js');
  const certificates = await readCertificates(from, since);
  let outcomes: ReplayOutcome[] = [];
  if (certificates.length > 0) {
    const slugs = [...new Set(certificates.map((c) => parseSlug(c.certificate.organisation.slug)))].sort();
    outcomes = await withScopedSession(
      ctx,
      { orgSlugs: slugs, reason: ctx.options.reason ?? `Erasure replay: erasures since ${since.toISOString()}, after a restore` },
      (session) => replayErasures(session, certificates, { mediaDir, logger: ctx.logger }),
    );
  }
  ctx.print({ since: since.toISOString(), from, erasures: outcomes }, () => {
    const lines = [`Replayed ${outcomes.length} erasure(s) recorded since ${since.toISOString()} (certificates in ${from}).`];
    for (const o of outcomes) {
      const changed = o.deleted + o.anonymised;
      lines.push(
        `  ${o.erased_at}  ${o.organisation} ${o.request}  subject ${o.subject}: ` +
          (changed + o.revoked === 0 ? 'already in place, nothing changed' : `deleted ${o.deleted}, anonymised ${o.anonymised}, revoked ${o.revoked}`) +
          (o.ledger_restored ? '; ledger row restored' : ''),
      );
      lines.push(...mediaLines(o.media));
    }
    return lines.join('\n');
  });
}

export function registerDsarErase(dsar: Command): void {
  dsar
    .command('erase')
    .summary('erase a person (right to erasure), with a certificate; --replay re-applies erasures after a restore')
    .description(
      'erase everything held about one person under a request, as the data map says: rows deleted, or anonymised column by column (null, redaction, keyed pseudonym, year only). Rows under a legal hold or a statutory retention rule (safeguarding records until the child is 25) are kept, and so is what identifies the person in their own record while anything about them is kept; records the person made about others and record-keeping tables (audit trail, requests, holds, the erasure ledger) keep their id. Archived rows are erased too. The plan is shown first; --dry-run stops there; without --yes a terminal asks and anything else exits 2. Everything is applied in one transaction with an erasures ledger row and a dsar.erase audit event; then the certificate (ORG-REF.erasure.json and .txt, with the JSON’s SHA-256) is written to --out and the person’s media files are removed from the store. Rerun with the same request, it finishes what an interrupted run left. Keep the certificates outside the database’s backups: dsar erase --replay --since TIME re-applies every erasure recorded after TIME from them, after a restore.',
    )
    .option('--org <slug>', 'the organisation that holds the data')
    .option('--subject <id|email>', 'a child’s id, or a guardian’s or staff member’s id or email')
    .option('--request <ref>', 'the request reference (see: trustctl dsar request open)')
    .option('--dry-run', 'show the plan and change nothing')
    .option('--out <dir>', 'directory for certificates (default: $TRUSTCTL_ERASURE_DIR, else $TRUSTCTL_HOME/erasures)')
    .option('--media-dir <dir>', 'where media files are stored (default: $TRUSTCTL_MEDIA_DIR, else $TRUSTCTL_HOME/media)')
    .option('--replay', 're-apply the erasures whose certificates are in --from, recorded at or after --since')
    .option('--since <time>', 'with --replay: the time of the restored backup (ISO 8601)')
    .option('--from <dir>', 'with --replay: the certificate directory (default: as --out)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  trustctl dsar erase --org oak-trust --subject 6f1c…e2 --request ER-2026-004 --dry-run\n' +
        '  trustctl dsar erase --org oak-trust --subject 6f1c…e2 --request ER-2026-004 --yes\n' +
        '  trustctl dsar erase --replay --since 2026-11-20T02:00:00Z --yes\n' +
        '\nThe request must be recorded first (trustctl dsar request open). Exit codes: 0 done (or planned), 2 refused or not confirmed (nothing changed).',
    )
    .action(
      async (
        opts: {
          org?: string;
          subject?: string;
          request?: string;
          dryRun?: boolean;
          out?: string;
          mediaDir?: string;
          replay?: boolean;
          since?: string;
          from?: string;
        },
        cmd: Command,
      ) => {
        const ctx = await commandContext(cmd);
        const { RefusedError } = await import('../../errors.js');
        if (opts.replay) {
          if (opts.org || opts.subject || opts.request || opts.dryRun || opts.out) {
            throw new RefusedError('--replay takes --since, --from and --media-dir only', 'It re-applies every erasure in the certificates');
          }
          if (!ctx.options.yes) throw new RefusedError('--replay changes data: pass --yes', 'It re-applies recorded erasures; see --help');
          return replay(ctx, opts);
        }
        if (opts.since || opts.from) throw new RefusedError('--since and --from go with --replay');
        for (const [name, value] of [
          ['--org', opts.org],
          ['--subject', opts.subject],
          ['--request', opts.request],
        ] as const) {
          if (!value) throw new RefusedError(`${name} is required`, 'See: trustctl dsar erase --help');
        }
        const org = parseSlug(opts.org!);
        const { parseReference } = await import('../../dsar/requests.js');
        const { parseSubjectQuery, describeSubject } = await import('../../dsar/subject.js');
        const reference = parseReference(opts.request!);
        const subject = parseSubjectQuery(opts.subject!);
        const outDir = opts.out ?? (await defaultCertificateDir());
        const { assertCanCreateDirectory } = await import('../../io/paths.js');
        await assertCanCreateDirectory(outDir, '--out');
        const mediaDir = await mediaDirOf(opts.mediaDir);
        const { eraseSubject } = await import('../../dsar/erase.js');
        const result = await withScopedSession(ctx, { orgSlugs: [org], reason: dsarReason(ctx, reference, 'erasure') }, (session) =>
          eraseSubject(
            session,
            {
              orgSlug: org,
              subject,
              reference,
              outDir,
              mediaDir,
              toolVersion: VERSION,
              dryRun: opts.dryRun === true,
              confirm: async (plan, who, o) => {
                if (ctx.options.yes) return true;
                process.stderr.write(`Erasure plan for ${describeSubject(who)} in ${o.slug}:\n${renderErasurePlan(plan)}\n`);
                if (!ctx.interactive || ctx.options.json) {
                  throw new RefusedError(
                    `dsar erase would delete ${plan.totals.deleted} and anonymise ${plan.totals.anonymised} row(s): pass --yes to erase`,
                    'Review the plan above first; nothing was changed',
                  );
                }
                const { confirm } = await import('@inquirer/prompts');
                return confirm({ message: `Erase ${describeSubject(who)} as shown? This cannot be undone.`, default: false });
              },
              ...subjectPicker(ctx),
            },
            { logger: ctx.logger },
          ),
        );
        if (result.status === 'declined') throw new RefusedError('erasure not confirmed; nothing changed');
        ctx.print(
          {
            status: result.status,
            organisation: result.organisation.slug,
            subject: { type: result.subject.type, id: result.subject.id },
            request: result.reference,
            erasure_id: result.erasureId,
            erased_at: result.erasedAt,
            plan: result.plan,
            plan_changed: result.planChanged,
            certificate: result.certificate,
            certificates_completed: result.certificatesCompleted,
            media: result.media,
          },
          () => {
            const who = `${describeSubject(result.subject)} in ${result.organisation.slug}`;
            if (result.status === 'planned') {
              return `Erasure plan (dry run, nothing changed) for ${who}:\n${renderErasurePlan(result.plan)}`;
            }
            const t = result.plan.totals;
            const lines =
              result.status === 'already_erased'
                ? [
                    `Already erased under ${result.reference} at ${result.erasedAt}: ${who}.` +
                      (result.certificate ? ' Finished what was left (certificate, media).' : ' Nothing changed.'),
                    ...(t.deleted + t.anonymised + t.revoked > 0
                      ? [
                          `  NOTE     ${t.deleted + t.anonymised + t.revoked} row(s) about them could be erased now (recorded since, or no longer held or kept by law);`,
                          '           record a new request (trustctl dsar request open) and erase under it',
                        ]
                      : []),
                  ]
                : [
                    `Erased ${who} under ${result.reference} at ${result.erasedAt}.`,
                    `  deleted ${t.deleted}, anonymised ${t.anonymised}, kept ${t.kept} row(s)${t.revoked > 0 ? `, revoked ${t.revoked} live role grant(s)` : ''}`,
                  ];
            if (result.planChanged) lines.push('  NOTE     the data changed after the plan was shown; the certificate records what was done');
            if (result.certificate) {
              lines.push(`  certificate ${result.certificate.json}`, `              ${result.certificate.text}`);
              lines.push(`  sha256   ${result.certificate.sha256}`);
            }
            for (const c of result.certificatesCompleted) lines.push(`  written  ${c} (an earlier erasure's certificate, left unwritten by an interrupted run)`);
            lines.push(...mediaLines(result.media));
            if (result.status === 'erased') lines.push(`  recorded in the erasures ledger (${result.erasureId}) and the audit trail (dsar.erase)`);
            return lines.join('\n');
          },
        );
      },
    );
}
