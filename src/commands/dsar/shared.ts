// What the dsar commands share: the --org option, the session reason a
// DSAR job gives, and the operator's local date.
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import type { DsarSubject } from '../../dsar/subject.js';

/**
 * The session reason for DSAR work: --reason if given, else the request
 * itself ("Subject access request REF"), which is why the operator is there.
 */
export function dsarReason(ctx: CommandContext, reference: string | null, verb: string): string {
  return ctx.options.reason ?? (reference ? `Subject access request ${reference}: ${verb}` : `Subject access requests: ${verb}`);
}

/**
 * Where media files live: --media-dir (which must be a directory: a typo
 * would leave every file out of a bundle), else $TRUSTCTL_MEDIA_DIR, else
 * $TRUSTCTL_HOME/media.
 */
export async function mediaDirOf(option: string | undefined): Promise<string> {
  if (option !== undefined) {
    const { assertDirectory } = await import('../../io/paths.js');
    await assertDirectory(option, '--media-dir', 'media store');
  }
  const { defaultMediaDir } = await import('../../seed/index.js');
  return option ?? process.env.TRUSTCTL_MEDIA_DIR ?? defaultMediaDir();
}

/** The organisation option every DSAR command takes. */
export function orgOption(cmd: Command): Command {
  return cmd.requiredOption('--org <slug>', 'the organisation (trust or nursery group) that holds the data');
}

/** Today's date where the operator is, as YYYY-MM-DD. */
export function localToday(now = new Date()): string {
  const y = now.getFullYear();
  const m = String(now.getMonth() + 1).padStart(2, '0');
  const d = String(now.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

/**
 * On a terminal, a prompt that picks one of several people matching
 * --subject; elsewhere nothing, so the core refuses with the candidates.
 */
export function subjectPicker(
  ctx: CommandContext,
): { pickSubject?: (candidates: readonly DsarSubject[]) => Promise<DsarSubject> } {
  if (!ctx.interactive || ctx.options.json) return {};
  return {
    pickSubject: async (candidates) => {
      const { select } = await import('@inquirer/prompts');
      const { describeSubject } = await import('../../dsar/subject.js');
      return select({
        message: 'More than one person matches --subject; which one is the request about?',
        choices: candidates.map((c) => ({ name: describeSubject(c), value: c })),
      });
    },
  };
}
