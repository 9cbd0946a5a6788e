import type { Command } from 'commander';
import { commandContext } from '../context.js';
import { orgScopeOptions, parseOrgScope, withScopedSession } from '../scope.js';

export function registerAuditCheckpoint(audit: Command): void {
  const checkpoint = audit.command('checkpoint').description('audit checkpoints: chain heads recorded after each seal');
  orgScopeOptions(
    checkpoint
      .command('export')
      .summary('write every checkpoint to a JSON Lines file to keep outside the database')
      .description(
        'write every checkpoint to a JSON Lines file to keep outside the database; give it to `audit verify --checkpoints`. Without --org: every organisation.',
      ),
    'export',
  )
    .requiredOption('--out <file>', 'the file to write')
    .action(async (opts: { org: string[]; allOrgs?: boolean; out: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const scope = parseOrgScope(opts, 'all');
      const { assertParentDirectory } = await import('../../io/paths.js');
      await assertParentDirectory(opts.out, '--out');
      const { exportCheckpoints } = await import('../../audit/checkpoints.js');
      const written = await withScopedSession(
        ctx,
        { ...scope, reason: ctx.options.reason ?? 'Audit trail: export checkpoints' },
        (session) => exportCheckpoints(session, opts.out),
      );
      ctx.print({ path: opts.out, ...written }, () => `Wrote ${written.count} checkpoint(s) to ${opts.out} (sha256 ${written.sha256})`);
    });
}
