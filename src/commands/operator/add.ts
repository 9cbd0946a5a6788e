import type { Command } from 'commander';
import { RefusedError } from '../../errors.js';
import { commandContext, type CommandContext } from '../context.js';

async function readPassword(ctx: CommandContext, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (!ctx.interactive) {
    throw new RefusedError('no password given', 'Pipe it in with --password-stdin, or run on a terminal to be prompted');
  }
  const { password } = await import('@inquirer/prompts');
  const first = await password({ message: 'Password for the new operator (12+ characters):', mask: true });
  const again = await password({ message: 'Repeat it:', mask: true });
  if (first !== again) throw new RefusedError('the two passwords differ');
  return first;
}

export function registerOperatorAdd(operator: Command): void {
  operator
    .command('add')
    .argument('<name>', 'the PostgreSQL role name for the operator (lower-case letters, digits, _)')
    .description(
      'create an operator LOGIN role, a member of trustctl_operator (not superuser, not BYPASSRLS),\n' +
        'or reset an operator\'s password. An existing role that is not an operator is refused unless\n' +
        '--adopt is given; trustctl\'s and the platform\'s own roles (app_user and its members,\n' +
        'trustctl_*, postgres, superusers, pg_*) are refused always. Needs an administrative connection.',
    )
    .option('--password-stdin', 'read the password from standard input instead of prompting')
    .option('--adopt', 'make an existing, non-reserved role an operator (its password is reset)')
    .action(async (name: string, opts: { passwordStdin?: boolean; adopt?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd);
      const { parseOperatorName, ensureOperatorRole } = await import('../../db/operators.js');
      parseOperatorName(name);
      const pw = await readPassword(ctx, opts.passwordStdin === true);
      const { withAdminDb } = await import('../../db/with-db.js');
      const result = await withAdminDb(ctx.db, async ({ pool }) => {
        const client = await pool.connect();
        try {
          return await ensureOperatorRole(client, name, pw, { adopt: opts.adopt === true });
        } finally {
          client.release();
        }
      });
      ctx.print(result, () =>
        result.created
          ? `Created operator role "${result.name}". Connect as it: postgres://${result.name}@HOST/DATABASE`
          : `Operator role "${result.name}" already existed; its password was reset.`,
      );
    });
}
