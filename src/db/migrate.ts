// Applies the SQL migrations in src/db/migrations in file-name order, each in
// its own transaction, recording them in public.trustctl_migrations. Safe to
// run twice and safe to run concurrently (an advisory lock serialises runs).
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClientBase } from 'pg';
import type { Logger } from 'pino';
import { syncDataMapRules } from '../datamap/rules.js';

/** The migrations directory, the same from src/ (tests) and dist/ (the CLI). */
export const migrationsDir = fileURLToPath(new URL('../../src/db/migrations/', import.meta.url));

const MIGRATE_LOCK = 7_340_001;

export interface MigrationFile {
  readonly name: string;
  readonly sha256: string;
  readonly sql: string;
}

export interface MigrationStatus {
  readonly name: string;
  readonly state: 'applied' | 'pending' | 'changed';
  readonly appliedAt: Date | null;
}

export async function readMigrations(): Promise<MigrationFile[]> {
  const names = (await readdir(migrationsDir)).filter((n) => /^\d{4}_[a-z0-9_]+\.sql$/.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(new URL(name, `file://${migrationsDir}`), 'utf8');
      return { name, sql, sha256: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

async function ensureLedger(client: ClientBase): Promise<void> {
  await client.query(`
    create table if not exists public.trustctl_migrations (
      name text primary key,
      sha256 text not null,
      applied_at timestamptz not null default now()
    )`);
  await client.query('revoke all on public.trustctl_migrations from public');
}

/**
 * Lists every migration with its state. Needs only read access to the ledger.
 *
 * @example
 * const rows = await migrationStatus(client)
 * rows.filter((m) => m.state === 'pending')
 */
export async function migrationStatus(
  client: ClientBase,
  files?: readonly MigrationFile[],
): Promise<MigrationStatus[]> {
  files ??= await readMigrations();
  const exists = await client.query<{ ok: boolean }>(
    `select to_regclass('public.trustctl_migrations') is not null as ok`,
  );
  const applied = new Map<string, { sha256: string; applied_at: Date }>();
  if (exists.rows[0]?.ok) {
    const res = await client.query<{ name: string; sha256: string; applied_at: Date }>(
      'select name, sha256, applied_at from public.trustctl_migrations',
    );
    for (const row of res.rows) applied.set(row.name, row);
  }
  return files.map((f) => {
    const row = applied.get(f.name);
    if (!row) return { name: f.name, state: 'pending', appliedAt: null };
    return { name: f.name, state: row.sha256 === f.sha256 ? 'applied' : 'changed', appliedAt: row.applied_at };
  });
}

/**
 * Applies pending migrations with an administrative connection. Returns the
 * names applied by this call (empty when already up to date).
 *
 * @example
 * await withAdminClient(target, (client) => migrate(client, { logger }))
 */
export async function migrate(client: ClientBase, { logger }: { logger: Logger }): Promise<string[]> {
  await client.query('select pg_advisory_lock($1)', [MIGRATE_LOCK]);
  try {
    await ensureLedger(client);
    const files = await readMigrations();
    const status = await migrationStatus(client, files);
    const changed = status.filter((m) => m.state === 'changed');
    if (changed.length > 0) {
      throw new Error(
        `migration ${changed.map((m) => m.name).join(', ')} changed after it was applied; restore the original file`,
      );
    }
    const pending = new Set(status.filter((m) => m.state === 'pending').map((m) => m.name));
    const applied: string[] = [];
    for (const file of files) {
      if (!pending.has(file.name)) continue;
      logger.info({ migration: file.name }, 'applying migration');
      await client.query('begin');
      try {
        await client.query(file.sql);
        await client.query('reset role');
        await client.query('insert into public.trustctl_migrations (name, sha256) values ($1, $2)', [
          file.name,
          file.sha256,
        ]);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw new Error(`migration ${file.name} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(file.name);
    }
    await client.query('grant select on public.trustctl_migrations to trustctl_operator');
    // The database's guard reads the data map's rules (migration 0017): always current.
    await syncDataMapRules(client);
    return applied;
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATE_LOCK]);
  }
}
