// SQL coverage for mutation testing (scripts/mutate-sql.mjs): when
// TRUSTCTL_TEST_SQL_COVERAGE names a folder, each test database records,
// before it is dropped, which `app` functions ran in it (triggers included;
// its database sets track_functions = all) and which tables were read or
// written. A SQL mutant then runs only with the test files that reach its
// function or its policy's table. A no-op otherwise.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';

export async function recordSqlCoverage(config: pg.ClientConfig): Promise<void> {
  const dir = process.env.TRUSTCTL_TEST_SQL_COVERAGE;
  if (!dir) return;
  const c = new pg.Client(config);
  await c.connect();
  try {
    // Every other backend of this database has ended (and flushed its counts on exit).
    const functions = await c.query<{ signature: string }>(
      `select funcid::regprocedure::text as signature from pg_catalog.pg_stat_user_functions where calls > 0 order by 1`,
    );
    const tables = await c.query<{ name: string }>(
      `select schemaname || '.' || relname as name from pg_catalog.pg_stat_user_tables
        where coalesce(seq_scan, 0) + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd + n_tup_del > 0 order by 1`,
    );
    const testPath = expect.getState().testPath ?? 'unknown';
    await writeFile(
      join(dir, `${randomBytes(6).toString('hex')}.json`),
      JSON.stringify({
        file: relative(process.cwd(), testPath),
        functions: functions.rows.map((r) => r.signature),
        tables: tables.rows.map((r) => r.name),
      }),
    );
  } finally {
    await c.end();
  }
}
