// Gives a test file its own database, cloned from the migrated, demo-seeded
// template, and connections to it as the superuser or any test login role.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { TEMPLATE_DB, TEST_ROLES, type TestRoleName } from './roles.js';
import { recordSqlCoverage } from './sql-coverage.js';

export interface TestDatabase {
  readonly name: string;
  /** Superuser pool on this database: for fixtures and independent checks. */
  readonly admin: pg.Pool;
  /** A new connected client as a test login role (or the superuser). Caller ends it (or use withClient). */
  connect(role: TestRoleName | 'admin'): Promise<pg.Client>;
  /** Runs fn with a client as role, always ending it. */
  withClient<T>(role: TestRoleName | 'admin', fn: (client: pg.Client) => Promise<T>): Promise<T>;
  /**
   * Runs fn in one transaction as role, with the given settings set
   * transaction-locally (app.user_id, app.operator_session; app.user_org_id
   * filled in as userContext does); commits when
   * commit is true, else rolls back.
   */
  inTransaction<T>(
    role: TestRoleName,
    settings: Readonly<Record<string, string>>,
    fn: (client: pg.Client) => Promise<T>,
    options?: { commit?: boolean },
  ): Promise<T>;
  /**
   * The platform's user context: app.user_id and, when the settings name a
   * user but not their organisation, app.user_org_id looked up from users
   * (demo user ids are unique, so the lookup is unambiguous).
   */
  userContext(settings: Readonly<Record<string, string>>): Promise<Record<string, string>>;
  /** postgres:// URL for a role (or 'admin'), for running the CLI. */
  url(role: TestRoleName | 'admin'): string;
  drop(): Promise<void>;
}

function configFor(role: TestRoleName | 'admin', database: string): pg.ClientConfig {
  const admin = inject('adminConfig');
  if (role === 'admin') return { ...admin, database };
  const r = TEST_ROLES.find((x) => x.name === role)!;
  return { host: admin.host, port: admin.port, user: r.name, password: r.password, database };
}

/**
 * @example
 * const db = await createTestDatabase()
 * afterAll(() => db.drop())
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `trustctl_t_${randomBytes(5).toString('hex')}`;
  const bootstrap = new pg.Client(inject('adminConfig'));
  await bootstrap.connect();
  try {
    await bootstrap.query(`create database ${name} template ${TEMPLATE_DB}`);
    // Database-level privileges are not copied from a template.
    await bootstrap.query(`revoke all on database ${name} from public`);
    await bootstrap.query(`grant connect, temporary on database ${name} to app_user, trustctl_operator`);
    await bootstrap.query(`grant connect, create on database ${name} to trustctl_owner`);
    await bootstrap.query(`grant connect on database ${name} to trustctl_test_nobody`);
    // Counts the functions run, for SQL coverage (tests/support/sql-coverage.ts).
    if (process.env.TRUSTCTL_TEST_SQL_COVERAGE) await bootstrap.query(`alter database ${name} set track_functions = 'all'`);
  } finally {
    await bootstrap.end();
  }
  const admin = new pg.Pool({ ...configFor('admin', name), max: 3 });
  // An idle connection the server ends while the database is dropped is not a test failure.
  admin.on('error', () => undefined);
  const connect = async (role: TestRoleName | 'admin'): Promise<pg.Client> => {
    const client = new pg.Client(configFor(role, name));
    client.on('error', () => undefined); // a connection ended by the database's drop
    await client.connect();
    return client;
  };
  const withClient = async <T>(role: TestRoleName | 'admin', fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = await connect(role);
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const userContext = async (settings: Readonly<Record<string, string>>): Promise<Record<string, string>> => {
    const id = settings['app.user_id'];
    if (!id || 'app.user_org_id' in settings) return { ...settings };
    const res = await admin.query<{ org_id: string }>('select org_id from users where id::text = $1', [id]);
    return res.rows.length === 1 ? { 'app.user_org_id': res.rows[0]!.org_id, ...settings } : { ...settings };
  };
  return {
    name,
    admin,
    connect,
    withClient,
    userContext,
    inTransaction: (role, settings, fn, { commit = false } = {}) =>
      withClient(role, async (client) => {
        await client.query('begin');
        let committed = false;
        try {
          for (const [k, v] of Object.entries(await userContext(settings))) await client.query('select set_config($1, $2, true)', [k, v]);
          const result = await fn(client);
          if (commit) {
            await client.query('commit');
            committed = true;
          }
          return result;
        } finally {
          if (!committed) await client.query('rollback');
        }
      }),
    url(role) {
      const c = configFor(role, name);
      return `postgres://${c.user}:${encodeURIComponent(String(c.password))}@${c.host}:${c.port}/${name}`;
    },
    async drop() {
      await admin.end();
      const b = new pg.Client(inject('adminConfig'));
      await b.connect();
      try {
        // Let closing connections finish, so the forced drop ends none mid-goodbye.
        for (let i = 0; i < 50; i++) {
          const left = await b.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
          if (left.rows[0].n === 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await recordSqlCoverage(configFor('admin', name));
        await b.query(`drop database if exists ${name} with (force)`);
      } finally {
        await b.end();
      }
    },
  };
}
