import type { Command } from 'commander';
import { commandContext } from '../context.js';

export function registerAuditKeygen(audit: Command): void {
  audit
    .command('keygen')
    .summary('make an Ed25519 key pair for signing audit checkpoints')
      .description(
        'make an Ed25519 key pair for signing audit checkpoints. Keep the private key outside the database (and away from anyone with database access); give the public key to verifiers.',
      )
    .requiredOption('--out <prefix>', 'writes PREFIX.key (private, mode 0600) and PREFIX.pub')
    .action(async (opts: { out: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { assertParentDirectory } = await import('../../io/paths.js');
      await assertParentDirectory(opts.out, '--out');
      const { generateSigningKey } = await import('../../audit/keys.js');
      const result = await generateSigningKey(`${opts.out}.key`, `${opts.out}.pub`);
      ctx.print({ private: `${opts.out}.key`, public: `${opts.out}.pub`, key_id: result.keyId }, () =>
        `Wrote ${opts.out}.key (private; keep it safe) and ${opts.out}.pub (public), key id ${result.keyId}`,
      );
    });
}
