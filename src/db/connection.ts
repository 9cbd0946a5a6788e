// Turns a database URL into connection settings, enforcing trustctl's TLS
// rule: to any host other than loopback or a Unix socket, TLS with
// certificate and host-name verification (libpq's sslmode=verify-full), unless
// the user opts out with --dangerously-skip-tls-verify. The host classified is
// the one node-postgres will connect to: the URL's host, else PGHOST, else
// localhost (pg 8 reads PGHOST but not PGHOSTADDR or service files, so those
// are refused rather than guessed at), and it is pinned in the config so pg
// cannot re-read the environment. Passwords never leave this module except
// inside the pg config object.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { PoolConfig } from 'pg';
import { parse } from 'pg-connection-string';
import { RefusedError } from '../errors.js';

/** A parsed, checked connection target. */
export interface ConnectionTarget {
  /** What to pass to pg.Pool / pg.Client. Holds the password: never log it. */
  readonly config: PoolConfig;
  /** user@host:port/database, safe to print and log. */
  readonly display: string;
  /** Loopback or Unix socket. */
  readonly local: boolean;
  /** True when the user skipped TLS verification for a remote host. */
  readonly insecure: boolean;
}

export interface ConnectionOptions {
  /** --dangerously-skip-tls-verify */
  readonly skipTlsVerify?: boolean;
  readonly applicationName?: string;
  /** Where PGHOST and friends are read from; process.env unless a test says otherwise. */
  readonly env?: NodeJS.ProcessEnv;
}

/** True for a Unix socket directory, localhost, 127.0.0.0/8 or ::1. */
export function isLocalHost(host: string | null | undefined): boolean {
  if (!host || host.startsWith('/')) return true;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** How a refused URL is put right (the one line names the option it came from). */
const URL_FORM = 'Give --database-url (or DATABASE_URL) as postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full';

/**
 * Parses and checks a PostgreSQL URL.
 *
 * @example
 * const target = parseDatabaseUrl('postgres://alice@db.internal/platform?sslmode=verify-full')
 * new pg.Pool(target.config)
 */
export function parseDatabaseUrl(url: string, options: ConnectionOptions = {}): ConnectionTarget {
  // The parser reads anything as a URL relative to postgres://base ("not a url" would be host "base").
  if (!/^(postgres(ql)?:\/\/|socket:|\/)/i.test(url.trim())) {
    throw new RefusedError('the database URL is not a postgres:// URL', URL_FORM);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    // sslmode and the certificate files are handled below, not by the parser.
    const u = stripSslFiles(url);
    parsed = parse(u.url);
    Object.assign(parsed, u.files);
  } catch (error) {
    throw new RefusedError(
      `the database URL could not be parsed (${(error as Error).message.split('\n')[0]})`,
      URL_FORM,
    );
  }
  const p = parsed as Record<string, string | undefined>;
  const host = effectiveHost(p.host || undefined, options.env ?? process.env);
  const local = isLocalHost(host);
  const sslmode = (p.sslmode ?? '').toLowerCase();
  const display = `${p.user || '(default user)'}@${host}${p.port ? `:${p.port}` : ''}/${p.database || '(default database)'}`;

  let ssl: PoolConfig['ssl'];
  let insecure = false;
  if (local) {
    ssl = sslmode === '' || sslmode === 'disable' ? false : buildTls(p, sslmode === 'verify-full');
  } else if (sslmode === '' || sslmode === 'verify-full') {
    ssl = buildTls(p, true);
  } else if (options.skipTlsVerify) {
    insecure = true;
    ssl = sslmode === 'disable' ? false : buildTls(p, false);
  } else {
    throw new RefusedError(
      `sslmode=${sslmode} is not allowed for remote host ${host}: trustctl requires verified TLS (sslmode=verify-full)`,
      'Use sslmode=verify-full (with sslrootcert=FILE for a private CA), or pass --dangerously-skip-tls-verify',
    );
  }

  const port = p.port ? Number(p.port) : undefined;
  if (p.port && (!Number.isInteger(port) || port! <= 0 || port! > 65535)) {
    throw new RefusedError(`the database URL has an invalid port "${p.port}"`, URL_FORM);
  }
  const config: PoolConfig = {
    host,
    port,
    user: p.user || undefined,
    password: p.password || undefined,
    database: p.database || undefined,
    ssl,
    application_name: options.applicationName ?? 'trustctl',
    connectionTimeoutMillis: 10_000,
  };
  return { config, display, local, insecure };
}

/**
 * The host pg will connect to, refusing the libpq variables pg ignores (a
 * remote PGHOSTADDR, PGSERVICE) because the user meant them to pick the host.
 *
 * @example
 * effectiveHost(undefined, { PGHOST: 'db.example.com' }) // 'db.example.com'
 */
function effectiveHost(urlHost: string | undefined, env: NodeJS.ProcessEnv): string {
  if (env.PGSERVICE) {
    throw new RefusedError(
      `PGSERVICE=${env.PGSERVICE} is set, but trustctl's PostgreSQL driver ignores service files, so the host it names cannot be checked`,
      'Unset PGSERVICE and give the host in --database-url (postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full)',
    );
  }
  const host = urlHost || env.PGHOST || 'localhost';
  if (env.PGHOSTADDR && !isLocalHost(env.PGHOSTADDR)) {
    throw new RefusedError(
      `PGHOSTADDR=${env.PGHOSTADDR} is set, but trustctl's PostgreSQL driver ignores it and would connect to ${host}`,
      'Unset PGHOSTADDR and give the host in --database-url (postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full)',
    );
  }
  return host;
}

function stripSslFiles(url: string): { url: string; files: Record<string, string> } {
  const files: Record<string, string> = {};
  const q = url.indexOf('?');
  if (q < 0) return { url, files };
  const params = new URLSearchParams(url.slice(q + 1));
  // sslmode is interpreted here, not by the parser (which warns and aliases).
  for (const key of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) {
    const value = params.get(key);
    if (value !== null) {
      files[key] = value;
      params.delete(key);
    }
  }
  const rest = params.toString();
  return { url: url.slice(0, q) + (rest ? `?${rest}` : ''), files };
}

function buildTls(p: Record<string, string | undefined>, verify: boolean): NonNullable<PoolConfig['ssl']> {
  const read = (key: string): string | undefined => {
    const file = p[key];
    if (!file) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new RefusedError(`cannot read ${key} file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return { rejectUnauthorized: verify, ca: read('sslrootcert'), cert: read('sslcert'), key: read('sslkey') };
}
