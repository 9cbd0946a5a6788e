import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { commandContext } from '../context.js';
import { ExitCode } from '../../errors.js';
import { orgScopeOptions, parseOrgScope, withScopedSession } from '../scope.js';

export function registerAuditVerify(audit: Command): void {
  orgScopeOptions(
    audit
      .command('verify')
      .summary('recompute every organisation’s audit chain from its newest proven anchor and check it')
      .description(
        'recompute every organisation’s audit chain from its newest proven anchor and check it: changed, removed or inserted events, broken links, checkpoints that do not match, anchors without their sealed audit.prune event, rows left below an anchor. With --checkpoints (kept outside the database) and --pubkey it also catches a rewrite of a whole chain. Exit 0 if intact; 3 with one INVALID line per problem. Without --org: every organisation.',
      ),
    'verify',
  )
    .option('--checkpoints <file>', 'checkpoints exported earlier (trustctl audit checkpoint export)')
    .option('--pubkey <file>', 'Ed25519 public key (PEM) the checkpoints were signed with')
    .action(async (opts: { org: string[]; allOrgs?: boolean; checkpoints?: string; pubkey?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { loadPublicKey } = await import('../../audit/keys.js');
      const { loadCheckpointsFile } = await import('../../audit/checkpoints.js');
      const publicKey = opts.pubkey ? await loadPublicKey(opts.pubkey) : undefined;
      const checkpoints = opts.checkpoints ? await loadCheckpointsFile(opts.checkpoints) : undefined;
      const { verifyAuditChain } = await import('../../audit/verify.js');
      const result = await withScopedSession(ctx, { ...scope, reason: ctx.options.reason ?? 'Audit trail: verify' }, (session) =>
        verifyAuditChain(
          session,
          {
            ...(checkpoints ? { checkpoints } : {}),
            ...(publicKey ? { publicKey } : {}),
            ...('orgSlugs' in scope ? { only: scope.orgSlugs } : {}),
          },
          { logger: ctx.logger },
        ),
      );
      ctx.print(result, () => {
        const problems = result.orgs.flatMap((o) => o.problems);
        const entries = result.orgs.reduce((n, o) => n + o.entries, 0);
        const summary = result.ok
          ? `OK: ${result.orgs.length} organisation(s), ${entries.toLocaleString('en-GB')} chain entries, ` +
            `${result.orgs.reduce((n, o) => n + o.checkpointsChecked, 0)} checkpoint(s) verified`
          : `FAILED: ${problems.length} problem(s) in ${result.orgs.filter((o) => o.problems.length > 0).length} organisation(s)`;
        return [
          summary,
          ...result.orgs.map(
            (o) => `  ${o.org.padEnd(16)} entries ${String(o.entries).padStart(9)}  anchor ${o.anchorSeq}  head ${o.headSeq}`,
          ),
          ...problems.map((p) => `INVALID: ${printable(p)}`),
        ].join('\n');
      });
      if (!result.ok) process.exitCode = ExitCode.verificationFailed;
    });
}
