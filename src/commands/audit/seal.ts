import type { Command } from 'commander';
import { commandContext, parseWholeNumber } from '../context.js';
import { orgScopeOptions, parseOrgScope, withScopedSession } from '../scope.js';

export function registerAuditSeal(audit: Command): void {
  orgScopeOptions(
    audit
      .command('seal')
      .summary('seal the audit trail')
      .description(
        'seal the audit trail: append every event whose transaction has ended to its organisation’s hash chain, then write a checkpoint (signed with --sign-key). Safe to run at any time and concurrently with itself and with the application. Without --org: every organisation.',
      ),
    'seal',
  )
    .option('--sign-key <file>', 'Ed25519 private key (PEM) to sign the checkpoints with (see: trustctl audit keygen)')
    .option('--batch-size <n>', 'events per transaction', '10000')
    .action(async (opts: { org: string[]; allOrgs?: boolean; signKey?: string; batchSize: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const batchSize = parseWholeNumber(opts.batchSize, '--batch-size', 1, 100_000);
      const { loadPrivateKey } = await import('../../audit/keys.js');
      const signingKey = opts.signKey ? await loadPrivateKey(opts.signKey) : undefined;
      const { sealAuditChain } = await import('../../audit/seal.js');
      const progress = process.stderr.isTTY && !ctx.options.json;
      const started = Date.now();
      const results = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Audit trail: seal' }, (session) =>
        sealAuditChain(
          session,
          {
            batchSize,
            ...(signingKey ? { signingKey } : {}),
            ...(progress
              ? {
                  onProgress: ({ org, sealed }: { org: string; sealed: number }) => {
                    const rate = Math.round(sealed / Math.max(0.001, (Date.now() - started) / 1000));
                    process.stderr.write(`\r${org}: ${sealed.toLocaleString('en-GB')} events sealed (${rate.toLocaleString('en-GB')}/s)   `);
                  },
                }
              : {}),
          },
          { logger: ctx.logger },
        ),
      );
      if (progress) process.stderr.write('\n');
      ctx.print(results, () =>
        results
          .map(
            (r) =>
              `${r.org.padEnd(16)} sealed ${String(r.sealed).padStart(8)}  head seq ${r.headSeq.padStart(8)}  ` +
              `${r.headHash.slice(0, 16)}…  checkpoint ${r.checkpointId}${r.signedBy ? ` signed by ${r.signedBy}` : ''}`,
          )
          .join('\n'),
      );
    });
}
