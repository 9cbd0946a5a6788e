// Builds the commander program and holds the single error boundary that maps
// error classes to the documented exit codes (see src/errors.ts).
import { Command, CommanderError, Option } from 'commander';
import { CONNECTION_LOST, exitCodeFor, ExitCode, hintFor, isConnectionLost } from './errors.js';
import { printable } from './io/printable.js';
import { refuseBlankValues } from './commands/context.js';
import { runInterruptCleanups, runShutdownCleanups } from './lifecycle.js';
import { registerAuditCommands } from './commands/audit/index.js';
import { registerDbCommands } from './commands/db/index.js';
import { registerDsarCommands } from './commands/dsar/index.js';
import { registerAccessCommands } from './commands/access/index.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerOperatorCommands } from './commands/operator/index.js';
import { registerOrgCommands } from './commands/org/index.js';
import { registerRolesCommands } from './commands/roles/index.js';
import { registerHoldCommands, registerRetentionCommands } from './commands/retention/index.js';
import { registerSessionCommands } from './commands/session/index.js';

import { VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('trustctl')
    .description(
      'Compliance jobs for a multi-tenant PostgreSQL platform holding children’s, families’ and staff data.\n\n' +
        'With no --database-url or DATABASE_URL, trustctl uses an embedded PostgreSQL under $TRUSTCTL_HOME ' +
        '(default $XDG_STATE_HOME/trustctl, else ~/.local/state/trustctl).',
    )
    .version(VERSION, '-V, --version')
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL, else the embedded database)')
    .option('--reason <text>', 'why you are doing this; recorded with the operator session in the audit trail')
    .option('--ticket <ref>', 'ticket reference for the operator session')
    .option('--json', 'machine-readable output on stdout')
    .option('-y, --yes', 'confirm destructive actions (retention sweep) without a prompt')
    .option('--verbose', 'show stack traces on errors')
    .option('--log-file <path>', 'write structured JSON logs (pino) to this file')
    .option('--log-level <level>', 'log level: fatal, error, warn, info, debug, trace (logs go to stderr without --log-file)')
    .addOption(
      new Option('--dangerously-skip-tls-verify', 'allow a remote database without verified TLS (insecure)').default(false),
    )
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 failed, 2 refused (bad input, missing reason or confirmation), 3 verification found problems, 130 interrupted.',
    );

  registerDbCommands(program);
  registerOperatorCommands(program);
  registerOrgCommands(program);
  registerDsarCommands(program);
  registerAuditCommands(program);
  registerRolesCommands(program);
  registerAccessCommands(program);
  registerRetentionCommands(program);
  registerHoldCommands(program);
  registerSessionCommands(program);
  registerDoctorCommand(program);
  registerDemoCommand(program);

  program.hook('preAction', (_program, command) => refuseBlankValues(command));

  // Usage errors throw (to the boundary in run) instead of exiting, at every depth.
  const overrideExit = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(overrideExit);
  };
  overrideExit(program);
  return program;
}

function formatError(error: unknown, verbose: boolean): string {
  const lost = isConnectionLost(error);
  const message = lost ? CONNECTION_LOST.message : error instanceof Error ? error.message : String(error);
  const hint = lost ? CONNECTION_LOST.hint : hintFor(error);
  // Messages can quote the data (a subject's name, a file name): shown printable.
  const line = `trustctl: ${printable(message.split('\n')[0])}${hint ? ` (${printable(hint)})` : ''}`;
  if (verbose && error instanceof Error && error.stack) return `${line}\n${error.stack.split('\n').map(printable).join('\n')}`;
  return line;
}

/**
 * Runs the CLI with argv; sets process.exitCode, never calls process.exit
 * except after an interrupt.
 *
 * @example
 * await run(['node', 'trustctl', 'db', 'status'])
 */
export async function run(argv: readonly string[]): Promise<void> {
  const verbose = argv.includes('--verbose');
  // Output piped into something that stops reading (`trustctl --help | head`)
  // is not an error of trustctl's: stop quietly, like any Unix tool.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\ntrustctl: interrupted (${signal}); closing the operator session\n`);
    void runInterruptCleanups().finally(() => process.exit(ExitCode.interrupted));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The safety net of the one boundary: an 'error' event nobody listened to
  // or a rejected promise nobody awaited (a stream, a child process, a
  // connection) still ends in one line and the exit code of its class. An
  // open operator session is closed (as interrupted) on the way out.
  let crashed = false;
  const onCrash = (error: unknown): void => {
    if (crashed || interrupted) return;
    crashed = true;
    process.stderr.write(`${formatError(error, verbose)}\n`);
    const code = exitCodeFor(error);
    void runInterruptCleanups().finally(() => process.exit(code));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (interrupted || crashed) return;
    if (error instanceof CommanderError) {
      // commander has already printed its one line (or the help text).
      // --help and --version exit 0; a usage error (or a group without its verb) exits 2.
      const asked = error.code === 'commander.helpDisplayed' || error.code === 'commander.version';
      process.exitCode = asked ? ExitCode.ok : ExitCode.refused;
      return;
    }
    process.stderr.write(`${formatError(error, verbose)}\n`);
    process.exitCode = exitCodeFor(error);
  } finally {
    await runShutdownCleanups();
  }
}
