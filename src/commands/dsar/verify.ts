import type { Command } from 'commander';
import { printable } from '../../io/printable.js';
import { commandContext } from '../context.js';
import { ExitCode, RefusedError } from '../../errors.js';

async function readPassphrase(fromStdin: boolean, interactive: boolean): Promise<string | undefined> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (value === '') throw new RefusedError('--passphrase-stdin: standard input was empty');
    return value;
  }
  if (interactive) {
    const { password } = await import('@inquirer/prompts');
    return password({ message: 'Bundle passphrase:', mask: true });
  }
  return undefined;
}

export function registerDsarVerify(dsar: Command): void {
  dsar
    .command('verify')
    .argument('<bundle.zip>', 'a bundle written by trustctl dsar export')
    .summary('check a bundle offline')
      .description(
        'check a bundle offline: every file’s size and SHA-256 against manifest.json, and that no file is missing or extra. Exit 0 if it is intact, 3 with one line per problem otherwise.',
      )
    .option('--passphrase-stdin', 'read an encrypted bundle’s passphrase from standard input')
    .option('--pubkey <file>', 'Ed25519 public key (PEM): require manifest.sig and check it was signed with this key')
    .action(async (path: string, opts: { passphraseStdin?: boolean; pubkey?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { loadPublicKey } = await import('../../audit/keys.js');
      const publicKey = opts.pubkey ? await loadPublicKey(opts.pubkey) : undefined;
      const { verifyBundle } = await import('../../dsar/verify.js');
      let passphrase: string | undefined;
      if (opts.passphraseStdin) passphrase = await readPassphrase(true, false);
      let result;
      try {
        result = await verifyBundle(path, { ...(passphrase ? { passphrase } : {}), ...(publicKey ? { publicKey } : {}) });
      } catch (error) {
        // An encrypted bundle on a TTY: ask for the passphrase once.
        if (!passphrase && ctx.interactive && error instanceof RefusedError && /is encrypted/.test(error.message)) {
          passphrase = await readPassphrase(false, true);
          result = await verifyBundle(path, { passphrase, ...(publicKey ? { publicKey } : {}) });
        } else {
          throw error;
        }
      }
      ctx.print(result, () =>
        result.ok
          ? [
              // A bundle may come from anywhere: what it says is shown printable.
              `OK: ${printable(path)}: ${result.filesChecked} files match manifest.json (request ${printable(result.reference)}, subject ${printable(result.subjectId)}, as of ${printable(result.asOf)})`,
              `  bundle sha256 ${result.sha256}`,
              result.signatureChecked
                ? `  manifest.json is signed by key ${printable(result.signedBy)}, checked against --pubkey.`
                : result.signedBy
                  ? `  manifest.json is signed by key ${printable(result.signedBy)}; pass --pubkey to check the signature.`
                  : '  To prove it is the bundle that was exported, compare that with the DPO record or the dsar.export audit event.',
            ].join('\n')
          : [`FAILED: ${printable(path)}: ${result.problems.length} problem(s)`, ...result.problems.map((p) => `INVALID: ${printable(p)}`)].join('\n'),
      );
      if (!result.ok) process.exitCode = ExitCode.verificationFailed;
    });
}
