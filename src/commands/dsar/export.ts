import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { collect, withScopedSession } from '../scope.js';
import { commandContext, parseSlug } from '../context.js';
import { VERSION } from '../../version.js';
import { dsarReason, localToday, mediaDirOf, orgOption, subjectPicker } from './shared.js';


function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function registerDsarExport(dsar: Command): void {
  orgOption(
    dsar
      .command('export')
      .summary('write a subject access bundle')
      .description(
        'write a subject access bundle: everything held about one person, from one consistent snapshot. Safeguarding records, sensitive notes and records the person made about others are withheld pending review; --include releases a category and --reviewer records who reviewed it. The bundle is a zip: README.txt, index.html (a report a parent can read), manifest.json (every file’s size and SHA-256), data/<table>.json and .csv, media/. The export is recorded in the audit trail with the bundle’s SHA-256. Same data, same bytes. Beside the zip, REF.dpo-record.json lists what was withheld, down to row ids: the DPO’s record, not for the requester.',
      ),
  )
    .requiredOption('--subject <id|email>', 'a child’s id, or a guardian’s or staff member’s id or email')
    .requiredOption('--request <ref>', 'the request reference (see: trustctl dsar request open)')
    .option('--out <dir>', 'directory for the bundle', '.')
    .option('--include <category>', 'release a withheld category after review (repeatable): safeguarding, sensitive_notes, third_party_records', collect, [])
    .option('--reviewer <name>', 'who reviewed the released categories (required with --include)')
    .option('--encrypt', 'AES-256 encrypt the zip with a generated passphrase, shown once')
    .option('--media-dir <dir>', 'where media files are stored (default: $TRUSTCTL_MEDIA_DIR, else $TRUSTCTL_HOME/media)')
    .option('--force', 'replace an existing bundle file of the same name')
    .option('--sign-key <file>', 'Ed25519 private key (PEM, see: trustctl audit keygen) to sign manifest.json, as manifest.sig')
    .addHelpText(
      'after',
      '\nExample:\n  trustctl dsar export --org oak-trust --subject 6f1c…e2 --request DSAR-2026-001 --out ./bundles\n' +
        '\nThe operator session’s reason defaults to "Subject access request REF: export"; --reason overrides it.',
    )
    .action(
      async (
        opts: {
          org: string;
          subject: string;
          request: string;
          out: string;
          include: string[];
          reviewer?: string;
          encrypt?: boolean;
          mediaDir?: string;
          force?: boolean;
          signKey?: string;
        },
        cmd: Command,
      ) => {
        const ctx = await commandContext(cmd);
        const org = parseSlug(opts.org);
        const { parseReference } = await import('../../dsar/requests.js');
        const { parseSubjectQuery, describeSubject } = await import('../../dsar/subject.js');
        const { parseReleases } = await import('../../dsar/plan.js');
        const reference = parseReference(opts.request);
        const subject = parseSubjectQuery(opts.subject);
        const include = parseReleases(opts.include, opts.reviewer);
        const mediaDir = await mediaDirOf(opts.mediaDir);
        const { assertCanCreateDirectory } = await import('../../io/paths.js');
        await assertCanCreateDirectory(opts.out, '--out');
        const { loadPrivateKey } = await import('../../audit/keys.js');
        const signingKey = opts.signKey ? await loadPrivateKey(opts.signKey) : undefined;
        const { exportSubjectBundle } = await import('../../dsar/export.js');
        const result = await withScopedSession(ctx, { orgSlugs: [org], reason: dsarReason(ctx, reference, 'export') }, (session) =>
          exportSubjectBundle(
            session,
            {
              orgSlug: org,
              subject,
              reference,
              outDir: opts.out,
              include,
              reviewer: opts.reviewer ?? null,
              mediaDir,
              encrypt: opts.encrypt === true,
              force: opts.force === true,
              toolVersion: VERSION,
              ...(signingKey ? { signingKey } : {}),
              ...subjectPicker(ctx),
            },
            { logger: ctx.logger },
          ),
        );
        const due = result.request.effectiveDueOn;
        ctx.print(
          {
            path: result.path,
            dpo_record: result.dpoRecordPath,
            dpo_record_sha256: result.dpoRecordSha256,
            bytes: result.bytes,
            sha256: result.sha256,
            manifest_sha256: result.manifestSha256,
            encrypted: result.encrypted,
            passphrase: result.passphrase,
            as_of: result.asOf,
            snapshot_at: result.snapshotAt,
            organisation: result.organisation.slug,
            subject: { type: result.subject.type, id: result.subject.id },
            request: { reference: result.request.reference, due_on: due },
            rows: result.rows,
            files: result.files,
            withheld: result.withheld,
            released: result.released,
            media_unavailable: result.mediaUnavailable,
            audit_event_id: result.auditEventId,
          },
          () => {
            const lines = [
              `Bundle written: ${printable(result.path)} (${formatBytes(result.bytes)}, ${result.files} files${result.encrypted ? ', AES-256 encrypted' : ''})`,
              `  sha256   ${result.sha256}`,
              `  subject  ${describeSubject(result.subject)} in ${result.organisation.slug}`,
              `  request  ${result.request.reference}, received ${result.request.receivedOn}, due ${due} (${localToday() > due ? 'OVERDUE' : 'in time'})`,
              `  as of    ${result.asOf} (last recorded change to these records)`,
              `  records  ${Object.entries(result.rows).map(([t, n]) => `${t} ${n}`).join(', ')}`,
            ];
            for (const w of result.withheld) {
              lines.push(`  withheld ${w.table}: ${w.rows} (${w.category}; release after review with --include ${w.category} --reviewer NAME)`);
            }
            for (const r of result.released) lines.push(`  released ${r.table}: ${r.rows} (${r.category}, reviewed by ${printable(r.reviewer)})`);
            for (const m of result.mediaUnavailable) lines.push(`  WARNING  media ${m.media_id} (${printable(m.storage_key)}) left out: ${printable(m.problem)}`);
            lines.push(`  DPO record ${result.dpoRecordPath} (what was withheld, with row ids: keep it, do not send it)`);
            lines.push(`  recorded as audit event ${result.auditEventId} (dsar.export); check with: trustctl dsar verify ${result.path}`);
            if (result.passphrase) {
              lines.push('', `Passphrase (shown once, not stored; send it to the requester by another channel): ${result.passphrase}`);
            }
            return lines.join('\n');
          },
        );
      },
    );
}
