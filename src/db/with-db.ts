// Owns the lifetime of database connections: resolves the target (a URL, or
// the embedded cluster), connects, runs the work, and always closes the pool
// in try/finally. An embedded server lives for the whole process and is
// stopped when the command ends (onShutdown, run by src/cli.ts).
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { ClosingCursor } from './cursor.js';
import type { PoolConfig } from 'pg';
import type { Logger } from 'pino';
import { DatabaseUnavailableError } from '../errors.js';
import { onShutdown } from '../lifecycle.js';
import { parseDatabaseUrl } from './connection.js';
import type { EmbeddedCluster } from './embedded.js';
import { migrate } from './migrate.js';
import { ensureOperatorRole } from './operators.js';
import { assertOperatorPosture, type RolePosture } from './posture.js';
import type { Database } from './schema.js';

export interface DbSettings {
  /** --database-url or DATABASE_URL; undefined means the embedded database. */
  readonly databaseUrl?: string;
  readonly skipTlsVerify: boolean;
  readonly logger: Logger;
  /** One-line notices for the person at the terminal (stderr). */
  readonly notice: (line: string) => void;
  /** TRUSTCTL_HOME override, for tests. */
  readonly home?: string;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly pool: pg.Pool;
  /** user@host:port/database */
  readonly display: string;
}

export interface OperatorDb extends Db {
  readonly posture: RolePosture;
}

interface Target {
  readonly config: PoolConfig;
  readonly display: string;
}

/** Turns connection failures into one line that names the target, never its password. */
export function describeConnectError(error: unknown, display: string): DatabaseUnavailableError {
  const e = error as { code?: string; message?: string };
  const why =
    e.code === 'ECONNREFUSED'
      ? 'connection refused'
      : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
        ? 'host not found'
        : e.code === 'ETIMEDOUT' || /timeout/i.test(e.message ?? '')
          ? 'timed out'
          : e.code === '28P01' || e.code === '28000'
            ? 'authentication failed'
            : e.code === '3D000'
              ? 'database does not exist'
              : (e.message ?? String(error)).split('\n')[0];
  return new DatabaseUnavailableError(
    `cannot connect to ${display}: ${why}`,
    'Check --database-url / DATABASE_URL, or omit both to use the embedded database',
  );
}

// DATE values stay 'YYYY-MM-DD' strings: pg's default turns them into a
// Date at local midnight, which shifts the day in any time zone west of UTC.
const DATE_OID = 1082;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === DATE_OID ? (value: string) => value : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

async function openPool(target: Target, logger: Logger): Promise<pg.Pool> {
  const pool = new pg.Pool({ ...target.config, max: 4, types });
  pool.on('error', (error) => logger.warn({ err: error.message }, 'idle database connection failed'));
  // A connection that fails while in use (the server killed mid-command)
  // rejects the query it was running; its 'error' event is only logged.
  pool.on('connect', (client) => client.on('error', (error) => logger.debug({ err: error.message }, 'database connection failed')));
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw describeConnectError(error, target.display);
  }
  return pool;
}

// One embedded cluster per process: commands that connect twice (the demo
// seeds as admin, then tours as operator) start it once and say so once.
let embedded: Promise<EmbeddedCluster> | undefined;

async function startEmbeddedTarget(settings: DbSettings): Promise<EmbeddedCluster> {
  const { startEmbedded } = await import('./embedded.js');
  const cluster = await startEmbedded({ logger: settings.logger, home: settings.home });
  onShutdown(() => cluster.stop());
  const copied = cluster.binaries.copiedTo ? `, PostgreSQL ${cluster.binaries.version} run from ${cluster.binaries.copiedTo}` : '';
  settings.notice(
    `Using the embedded PostgreSQL database in ${cluster.dataDir} (port ${cluster.port}${copied}); set DATABASE_URL to use another.`,
  );
  try {
    const client = new pg.Client(cluster.adminConfig);
    client.on('error', (error) => settings.logger.debug({ err: error.message }, 'database connection failed'));
    await client.connect();
    try {
      await migrate(client, { logger: settings.logger });
      await ensureOperatorRole(client, cluster.operatorRole, String(cluster.operatorConfig.password), {
        resetPassword: false,
        // The embedded cluster's operator role is trustctl's own: it was created here.
        adopt: true,
      });
    } finally {
      await client.end();
    }
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function resolveTarget(settings: DbSettings, as: 'admin' | 'operator'): Promise<Target> {
  if (settings.databaseUrl) {
    const parsed = parseDatabaseUrl(settings.databaseUrl, { skipTlsVerify: settings.skipTlsVerify });
    if (parsed.insecure) {
      settings.notice(`WARNING: TLS verification is OFF for ${parsed.display} (--dangerously-skip-tls-verify).`);
    }
    return { config: parsed.config, display: parsed.display };
  }
  embedded ??= startEmbeddedTarget(settings);
  const cluster = await embedded;
  const config = as === 'admin' ? cluster.adminConfig : cluster.operatorConfig;
  return { config, display: `${config.user}@127.0.0.1:${cluster.port}/${cluster.database} (embedded)` };
}

async function withTarget<T>(settings: DbSettings, as: 'admin' | 'operator', fn: (db: Db) => Promise<T>): Promise<T> {
  const target = await resolveTarget(settings, as);
  const pool = await openPool(target, settings.logger);
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: ClosingCursor }) });
  try {
    return await fn({ kysely, pool, display: target.display });
  } finally {
    // Kysely ends the pool only if it used it; commands that took a raw
    // client would otherwise keep the process alive for pg's idle timeout.
    await kysely.destroy();
    if (!pool.ended) await pool.end();
  }
}

/**
 * Runs work with an administrative connection: `db migrate`, `db seed`,
 * `operator add`. With no URL, that is the embedded cluster's superuser.
 *
 * @example
 * await withAdminDb(settings, async ({ pool }) => migrate(await pool.connect(), { logger }))
 */
export function withAdminDb<T>(settings: DbSettings, fn: (db: Db) => Promise<T>): Promise<T> {
  return withTarget(settings, 'admin', fn);
}

/**
 * Runs work as an operator, after checking that the connected role is not a
 * superuser, BYPASSRLS role or owner (exit 2 otherwise).
 *
 * @example
 * await withOperatorDb(settings, (db) => listOrganisations(db.kysely, ...))
 */
export function withOperatorDb<T>(settings: DbSettings, fn: (db: OperatorDb) => Promise<T>): Promise<T> {
  return withTarget(settings, 'operator', async (db) => {
    const client = await db.pool.connect();
    let posture: RolePosture;
    try {
      posture = await assertOperatorPosture(client);
    } finally {
      client.release();
    }
    return fn({ ...db, posture });
  });
}
