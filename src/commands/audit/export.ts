import type { Command } from 'commander';
import { commandContext, parseSlug, parseUuid } from '../context.js';
import { ExitCode, RefusedError } from '../../errors.js';
import { withScopedSession } from '../scope.js';

export function registerAuditExport(audit: Command): void {
  audit
    .command('export')
    .summary('export an organisation’s audit trail as CSV or JSON Lines, streamed in constant memory, checking each sealed event against its seal as it goes')
      .description(
        'export an organisation’s audit trail as CSV or JSON Lines, streamed in constant memory, checking each sealed event against its seal as it goes. Writes FILE and FILE.manifest.json (filters, rows, chain range, SHA-256, verification). The export is itself audited. Exit 3 if an exported event does not match its seal (the file is still written, for investigation).',
      )
    .requiredOption('--org <slug>', 'the organisation')
    .requiredOption('--out <file>', 'where to write the export')
    .option('--site <slug>', 'only events of this site')
    .option('--from <time>', 'only events at or after this time (YYYY-MM-DD or ISO 8601)')
    .option('--to <time>', 'only events before this time')
    .option('--actor <id>', 'only events by this actor (user id or operator role)')
    .option('--action <action>', 'only this action, or a prefix ending in * (e.g. "dsar.*")')
    .option('--subject <id>', 'only events naming this data subject')
    .option('--format <format>', 'csv or jsonl', 'csv')
    .option('--gzip', 'compress the file with gzip')
    .option(
      '--for-people',
      'a CSV to open in a spreadsheet: cells starting with = + - @ tab or CR get a leading \' so they cannot run as formulas (the file is then not exact: no \\copy re-import)',
    )
    .addHelpText('after', '\nExample:\n  trustctl audit export --org oak-trust --from 2026-09-01 --to 2026-10-01 --action "dsar.*" --out sep.csv')
    .action(
      async (
        opts: {
          org: string;
          out: string;
          site?: string;
          from?: string;
          to?: string;
          actor?: string;
          action?: string;
          subject?: string;
          format: string;
          gzip?: boolean;
          forPeople?: boolean;
        },
        cmd: Command,
      ) => {
        const ctx = await commandContext(cmd);
        const org = parseSlug(opts.org);
        if (opts.format !== 'csv' && opts.format !== 'jsonl') throw new RefusedError(`--format must be csv or jsonl, not "${opts.format}"`);
        if (opts.forPeople && opts.format !== 'csv') throw new RefusedError('--for-people applies to CSV only', 'JSON Lines are for programs and always exact: leave out --for-people');
        const { parseActionFilter, parseExportTime, exportAuditTrail } = await import('../../audit/export.js');
        const filters = {
          ...(opts.site !== undefined ? { site: parseSlug(opts.site, 'site') } : {}),
          ...(opts.from !== undefined ? { from: parseExportTime(opts.from, '--from') } : {}),
          ...(opts.to !== undefined ? { to: parseExportTime(opts.to, '--to') } : {}),
          ...(opts.actor !== undefined ? { actor: opts.actor } : {}),
          ...(opts.action !== undefined ? { action: parseActionFilter(opts.action) } : {}),
          ...(opts.subject !== undefined ? { subject: parseUuid(opts.subject, 'subject') } : {}),
        };
        if (filters.from && filters.to && filters.from >= filters.to) throw new RefusedError('--from must be before --to');
        const { assertParentDirectory } = await import('../../io/paths.js');
        await assertParentDirectory(opts.out, '--out');
        const progress = process.stderr.isTTY && !ctx.options.json;
        const started = Date.now();
        const result = await withScopedSession(ctx, { orgSlugs: [org], reason: ctx.options.reason ?? 'Audit trail: export' }, (session) =>
          exportAuditTrail(
            session,
            {
              org,
              filters,
              format: opts.format as 'csv' | 'jsonl',
              gzip: opts.gzip === true,
              out: opts.out,
              forPeople: opts.forPeople === true,
              ...(progress
                ? {
                    onProgress: (rows: number) => {
                      const rate = Math.round(rows / Math.max(0.001, (Date.now() - started) / 1000));
                      process.stderr.write(`\r${rows.toLocaleString('en-GB')} events (${rate.toLocaleString('en-GB')}/s)   `);
                    },
                  }
                : {}),
            },
            { logger: ctx.logger },
          ),
        );
        if (progress) process.stderr.write('\n');
        const m = result.manifest;
        ctx.print({ path: result.path, manifest_path: result.manifestPath, ...m }, () =>
          [
            `${m.verification.ok ? 'Exported' : 'Exported, with problems:'} ${m.rows.toLocaleString('en-GB')} events to ${result.path} ` +
              `(${m.sealed_rows} sealed, chain ${m.first_chain_seq ?? '-'}..${m.last_chain_seq ?? '-'}; ${m.unsealed_rows} not yet sealed)`,
            `  sha256 ${m.file.sha256}; manifest ${result.manifestPath}`,
            ...(m.file.format !== 'csv'
              ? []
              : m.file.cells === 'exact'
                ? ['  values exact (re-importable with \\copy); to open in a spreadsheet, export with --for-people']
                : ['  formulas escaped for a spreadsheet (not exact: export without --for-people to re-import)']),
            `  ${m.verification.checked} sealed events checked against their seal, ${m.verification.links_checked} links`,
            ...m.verification.problems.map((p) => `INVALID: ${p}`),
          ].join('\n'),
        );
        if (!m.verification.ok) process.exitCode = ExitCode.verificationFailed;
      },
    );
}
