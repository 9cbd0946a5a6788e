// What the dsar commands share: the --org option, the session reason a
// DSAR job gives, and the operator's local date.
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/**
 * The session reason for DSAR work: --reason if given, else the request
 * itself ("Subject access request REF"), which is why the operator is there.
 */
export function dsarReason(ctx: CommandContext, reference: string | null, verb: string): string {
  return ctx.options.reason ?? (reference ? `Subject access request ${reference}: ${verb}` : `Subject access requests: ${verb}`);
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
