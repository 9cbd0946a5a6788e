// What every command gets: the global options parsed once into a typed,
// fully defaulted value, a logger, and helpers to talk to a person (stderr
// notices, prompts on a TTY only) or a machine (--json on stdout).
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { RefusedError } from '../errors.js';
import { redactCommandLine } from '../redact.js';
import { printable, terminalSafeJson } from '../io/printable.js';
import type { DbSettings } from '../db/with-db.js';

export interface GlobalOptions {
  readonly databaseUrl?: string;
  readonly reason?: string;
  readonly ticket?: string;
  readonly json: boolean;
  readonly yes: boolean;
  readonly verbose: boolean;
  readonly logFile?: string;
  readonly logLevel?: string;
  readonly dangerouslySkipTlsVerify: boolean;
}

export interface CommandContext {
  readonly options: GlobalOptions;
  readonly logger: Logger;
  readonly db: DbSettings;
  /** The command line with secrets removed, for operator_sessions. */
  readonly commandLine: string;
  /** True when a person can answer prompts (stdin and stderr are TTYs, not CI). */
  readonly interactive: boolean;
  /** A line for people, on stderr (never part of --json output). */
  notice(line: string): void;
  /**
   * Prints a result: JSON on stdout with --json (DEL, C1 and bidi characters
   * as \u escapes), else the human text, whose data values must have gone
   * through printable().
   */
  print(json: unknown, human: () => string): void;
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function parseGlobals(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): GlobalOptions {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
  const logLevel = str(raw.logLevel);
  if (logLevel && !LOG_LEVELS.has(logLevel)) {
    throw new RefusedError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`);
  }
  return {
    databaseUrl: str(raw.databaseUrl) ?? str(env.DATABASE_URL),
    reason: str(raw.reason),
    ticket: str(raw.ticket),
    json: raw.json === true,
    yes: raw.yes === true,
    verbose: raw.verbose === true,
    logFile: str(raw.logFile),
    logLevel,
    dangerouslySkipTlsVerify: raw.dangerouslySkipTlsVerify === true,
  };
}

async function createLogger(options: GlobalOptions): Promise<Logger> {
  const { pino } = await import('pino');
  const redact = { paths: ['password', '*.password', 'config.password', 'databaseUrl', '*.databaseUrl'], censor: '***' };
  if (options.logFile) {
    let destination;
    try {
      destination = pino.destination({ dest: options.logFile, sync: true, mkdir: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new RefusedError(`--log-file: cannot write ${options.logFile} (${code})`, 'Choose a file in a directory you can write to');
    }
    return pino({ level: options.logLevel ?? 'info', redact }, destination);
  }
  if (options.logLevel) return pino({ level: options.logLevel, redact }, pino.destination(2));
  return pino({ level: 'silent' });
}

/**
 * Builds the context from a commander command's options (its own and the
 * program's globals).
 *
 * @example
 * program.command('status').action(async (_opts, cmd) => { const ctx = await commandContext(cmd) })
 */
export async function commandContext(cmd: Command, env: NodeJS.ProcessEnv = process.env): Promise<CommandContext> {
  const options = parseGlobals(cmd.optsWithGlobals(), env);
  const logger = await createLogger(options);
  // Notices may quote the data (a subject's name): each line is made printable.
  const notice = (line: string): void => {
    process.stderr.write(`${line.split('\n').map(printable).join('\n')}\n`);
  };
  return {
    options,
    logger,
    commandLine: redactCommandLine(['trustctl', ...process.argv.slice(2)]),
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY) && !env.CI,
    db: {
      databaseUrl: options.databaseUrl,
      skipTlsVerify: options.dangerouslySkipTlsVerify,
      logger,
      notice,
    },
    notice,
    print(json, human) {
      // human() escapes the data it shows (src/io/printable.ts); JSON is escaped as a whole.
      process.stdout.write(options.json ? `${terminalSafeJson(json, 2)}\n` : `${human()}\n`);
    },
  };
}

/**
 * The reason for an operator session: --reason, or a prompt on a TTY.
 * Without either: RefusedError, exit 2, nothing done.
 */
export async function resolveReason(ctx: CommandContext, what: string): Promise<string> {
  if (ctx.options.reason) return ctx.options.reason;
  if (ctx.interactive && !ctx.options.json) {
    const { input } = await import('@inquirer/prompts');
    const answer = await input({
      message: `Reason for ${what} (recorded in the audit trail):`,
      validate: (v) => v.trim() !== '' || 'A reason is required',
    });
    return answer.trim();
  }
  throw new RefusedError(
    `a reason is required for ${what}`,
    'Pass --reason "why" (and --ticket REF where your policy needs one); it is recorded in the audit trail',
  );
}

/** Checks an organisation slug's form before anything touches the database. */
export function parseSlug(value: string, what = 'organisation'): string {
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(value)) {
    throw new RefusedError(`"${value}" is not a valid ${what} slug`, 'Slugs are lower-case letters, digits and dashes');
  }
  return value;
}

/**
 * Parses a whole number an option gives (--batch-size 500), refusing
 * anything else: no signs, decimals, exponents, hex or spaces, and nothing
 * outside min..max.
 *
 * @example
 * parseWholeNumber('500', '--batch-size', 1, 100_000) // 500
 */
export function parseWholeNumber(value: string, option: string, min: number, max: number): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new RefusedError(`${option} "${value}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/**
 * Refuses an option or argument given an empty (or blank) value, for every
 * command, before its action runs: `--site ""` (a variable that was not set)
 * must never quietly mean "no filter" or "the default".
 *
 * @example
 * program.hook('preAction', (_program, command) => refuseBlankValues(command))
 */
export function refuseBlankValues(command: Command): void {
  const blank = (v: unknown): boolean => typeof v === 'string' && v.trim() === '';
  for (let cmd: Command | null = command; cmd; cmd = cmd.parent) {
    for (const option of cmd.options) {
      const key = option.attributeName();
      if (!(option.required || option.optional) || cmd.getOptionValueSource(key) !== 'cli') continue;
      const value: unknown = cmd.getOptionValue(key);
      if (Array.isArray(value) ? value.some(blank) : blank(value)) {
        throw new RefusedError(`${option.long} is empty`, `Give ${option.long} a value, or leave it out`);
      }
    }
  }
  command.registeredArguments.forEach((argument, i) => {
    if (blank(command.args[i])) throw new RefusedError(`<${argument.name()}> is empty`, 'Give it a value');
  });
}

/** Checks a UUID's form. */
export function parseUuid(value: string, what: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    throw new RefusedError(`"${value}" is not a valid ${what} id (expected a UUID)`);
  }
  return value.toLowerCase();
}
