// Starts one PostgreSQL for the whole run (embedded, or the server named by
// TRUSTCTL_TEST_DATABASE_URL, an administrative URL), builds a migrated and
// demo-seeded template database, and creates the login roles tests connect
// as. Test files clone the template (tests/support/db.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../src/db/embedded.js';
import { postgresServer, type PostgresServer } from '../../src/db/postgres-server.js';
import { migrate } from '../../src/db/migrate.js';
import { seedDemo } from '../../src/seed/demo.js';
import { TEMPLATE_DB, TEST_ROLES } from './roles.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminConfig: pg.ClientConfig;
    mediaDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = pino({ level: 'silent' });
  const work = await mkdtemp(join(tmpdir(), 'trustctl-test-'));
  const { chmod } = await import('node:fs/promises');
  await chmod(work, 0o711);
  let server: PostgresServer | undefined;
  let adminConfig: pg.ClientConfig;

  if (process.env.TRUSTCTL_TEST_DATABASE_URL) {
    const { parse } = await import('pg-connection-string');
    const p = parse(process.env.TRUSTCTL_TEST_DATABASE_URL);
    adminConfig = {
      host: p.host ?? undefined,
      port: p.port ? Number(p.port) : undefined,
      user: p.user,
      password: p.password,
      database: p.database ?? 'postgres',
    };
  } else {
    const port = await freePort();
    server = await postgresServer({
      dataDir: join(work, 'pg'),
      port,
      superuser: 'postgres',
      password: 'test-admin-password',
      settings: { fsync: 'off' },
    });
    await server.initialise();
    await server.start();
    adminConfig = { host: '127.0.0.1', port, user: 'postgres', password: 'test-admin-password', database: 'postgres' };
  }

  const admin = new pg.Client(adminConfig);
  await admin.connect();
  await admin.query(`drop database if exists ${TEMPLATE_DB}`);
  await admin.query(`create database ${TEMPLATE_DB}`);
  await admin.end();

  const mediaDir = join(work, 'media');
  const tpl = new pg.Client({ ...adminConfig, database: TEMPLATE_DB });
  await tpl.connect();
  try {
    await migrate(tpl, { logger });
    for (const role of TEST_ROLES) {
      const exists = await tpl.query('select 1 from pg_roles where rolname = $1', [role.name]);
      if (!exists.rowCount) await tpl.query(`create role ${role.name} login`);
      await tpl.query(`alter role ${role.name} login nosuperuser nobypassrls password '${role.password}'`);
      if (role.group !== 'public') await tpl.query(`grant ${role.group} to ${role.name}`);
    }
    await seedDemo(tpl, { mediaDir, logger });
    // SQL mutation testing (scripts/mutate-sql.mjs): the statements that plant one
    // mutant (a policy, guard or definer function rewritten), applied to the built
    // template so every test file's clone carries it.
    const mutation = process.env.TRUSTCTL_TEST_TEMPLATE_MUTATION;
    if (mutation) {
      const { statements } = JSON.parse(await readFile(mutation, 'utf8')) as { statements: string[] };
      await tpl.query('begin');
      for (const statement of statements) await tpl.query(statement);
      await tpl.query('commit');
    }
  } finally {
    await tpl.end();
  }

  project.provide('adminConfig', adminConfig);
  project.provide('mediaDir', mediaDir);

  return async () => {
    if (server) await server.stop();
    await rm(work, { recursive: true, force: true });
  };
}
