// The migrated schema: migrations are idempotent, run-time roles are plain,
// RLS is enabled and forced on every tenant table, tenant keys lead every key,
// and the data map is checked by the doctor (doctor.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { migrate, migrationStatus } from '../../src/db/migrate.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('migrations', () => {
  it('are all applied, and a second run applies nothing and changes no object', async () => {
    const client = await db.admin.connect();
    try {
      const fingerprint = async () =>
        (await client.query(`select md5(string_agg(format('%s:%s', oid::regclass, relkind), ',' order by oid)) as h from pg_class where relnamespace in ('public'::regnamespace, 'app'::regnamespace)`)).rows[0].h;
      const before = await fingerprint();
      expect(await migrate(client, { logger: pino({ level: 'silent' }) })).toEqual([]);
      expect(await fingerprint()).toBe(before);
      const status = await migrationStatus(client);
      expect(status.length).toBeGreaterThanOrEqual(4);
      expect(status.every((m) => m.state === 'applied')).toBe(true);
    } finally {
      client.release();
    }
  });
});

describe('roles', () => {
  it('gives no run-time role superuser, BYPASSRLS or ownership', async () => {
    const res = await db.admin.query(`
      select r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin,
        exists (select 1 from pg_class c where pg_has_role(r.oid, c.relowner, 'MEMBER') and c.relnamespace = 'public'::regnamespace) as owns
      from pg_roles r where r.rolname in ('app_user', 'trustctl_operator', 'trustctl_test_app', 'trustctl_test_op', 'trustctl_owner', 'trustctl_definer')
      order by r.rolname`);
    const byName = Object.fromEntries(res.rows.map((r) => [r.rolname, r]));
    for (const name of ['app_user', 'trustctl_operator', 'trustctl_test_app', 'trustctl_test_op']) {
      expect({ name, ...byName[name], rolcanlogin: undefined }).toEqual({ name, rolname: name, rolsuper: false, rolbypassrls: false, owns: false, rolcanlogin: undefined });
    }
    // The owner and the definer cannot log in; only the definer bypasses RLS, and it owns no table.
    expect(byName.trustctl_owner).toMatchObject({ rolcanlogin: false, rolbypassrls: false, owns: true });
    expect(byName.trustctl_definer).toMatchObject({ rolcanlogin: false, rolbypassrls: true, owns: false });
  });

  it('grants no TRUNCATE, REFERENCES or PUBLIC privilege on tenant tables', async () => {
    const res = await db.admin.query(`
      select table_name, grantee, privilege_type from information_schema.role_table_grants
      where table_schema = 'public' and (grantee = 'PUBLIC' or privilege_type in ('TRUNCATE', 'REFERENCES', 'TRIGGER'))
        and grantee <> 'trustctl_owner' and grantee <> current_user`);
    expect(res.rows).toEqual([]);
  });
});

describe('tenant tables', () => {
  it('all have RLS enabled and forced, and policies for both run-time roles', async () => {
    const res = await db.admin.query(`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity,
        (select array_agg(distinct r) from pg_policy p, unnest(p.polroles) pr, lateral (select rolname from pg_roles where oid = pr) x(r) where p.polrelid = c.oid) as roles
      from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id')
      order by 1`);
    expect(res.rows.length).toBeGreaterThanOrEqual(20);
    for (const row of res.rows) {
      expect({ t: row.relname, on: row.relrowsecurity, forced: row.relforcerowsecurity }).toEqual({ t: row.relname, on: true, forced: true });
      expect(row.roles).toContain('trustctl_operator');
    }
  });

  it('have org_id leading every primary key, unique index and foreign key', async () => {
    const keys = await db.admin.query(`
      select c.relname, i.indexrelid::regclass::text as what, (select attname from pg_attribute where attrelid = c.oid and attnum = i.indkey[0]) as lead
      from pg_index i join pg_class c on c.oid = i.indrelid
      where c.relnamespace = 'public'::regnamespace and (i.indisunique or i.indisprimary)
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id')
      union all
      select c.relname, k.conname, (select attname from pg_attribute where attrelid = c.oid and attnum = k.conkey[1])
      from pg_constraint k join pg_class c on c.oid = k.conrelid
      where k.contype = 'f' and c.relnamespace = 'public'::regnamespace
        and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid and a.attname = 'org_id')`);
    // Deliberate exceptions: the organisation slug is global (it names the
    // tenant), and a grant names a support user of the platform organisation.
    const allowed = new Set(['organisations_slug_key', 'role_assignments_user_org_id_user_id_fkey']);
    const offenders = keys.rows.filter((r) => r.lead !== 'org_id' && !allowed.has(r.what));
    expect(offenders).toEqual([]);
    expect(keys.rows.length).toBeGreaterThan(40);
  });
});

// The data map against the live catalog (every table, person reference,
// capture-trigger subject and named column) is the doctor's job: see
// tests/integration/doctor.test.ts, which runs those checks on this schema
// and proves each one fails when its defect is introduced.
