// An installation from before the operator-proof migrations (0016 on),
// holding data, upgrades by `db migrate`: the platform organisation is
// pinned from the data it has, the data map's rules are written, the
// archive is captured, and the doctor finds nothing wrong.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import { seedDemo } from '../../src/seed/demo.js';
import { runCli } from '../support/cli.js';
import { PLATFORM } from '../support/demo-ids.js';

const name = `trustctl_up_${randomBytes(4).toString('hex')}`;
const logger = pino({ level: 'silent' });
let client: pg.Client;
let media: string;

beforeAll(async () => {
  const boot = new pg.Client(inject('adminConfig'));
  await boot.connect();
  await boot.query(`create database ${name}`);
  await boot.query(`grant connect, temporary on database ${name} to app_user, trustctl_operator`);
  await boot.end();
  client = new pg.Client({ ...inject('adminConfig'), database: name });
  await client.connect();
  // The schema as it was before migration 0016, recorded as migrate records it.
  await client.query('create table public.trustctl_migrations (name text primary key, sha256 text not null, applied_at timestamptz not null default now())');
  for (const m of (await readMigrations()).filter((f) => f.name < '0016')) {
    await client.query('begin');
    await client.query(m.sql);
    await client.query('reset role');
    await client.query('insert into public.trustctl_migrations (name, sha256) values ($1, $2)', [m.name, m.sha256]);
    await client.query('commit');
  }
  media = await mkdtemp(join(tmpdir(), 'trustctl-upgrade-'));
  await seedDemo(client, { mediaDir: media, logger });
  // The pin is what the upgrade must establish from the data, not the seed.
  await client.query(`delete from platform_settings where key = 'platform_org_id'`);
}, 240_000);

afterAll(async () => {
  await client?.end();
  const boot = new pg.Client(inject('adminConfig'));
  await boot.connect();
  await boot.query(`drop database if exists ${name} with (force)`);
  await boot.end();
  await rm(media, { recursive: true, force: true });
});

describe('upgrading an installation with data', () => {
  it('applies the new migrations, pins the platform organisation, writes the rules, and the doctor is clean', async () => {
    const applied = await migrate(client, { logger });
    expect(applied[0]).toBe('0016_bound_context.sql');
    expect(applied).toContain('0017_operator_purposes.sql');
    expect((await client.query(`select value from platform_settings where key = 'platform_org_id'`)).rows).toEqual([{ value: PLATFORM }]);
    const rules = await client.query(`select schema_name, count(*)::int as n from app.datamap_rules group by 1 order by 1`);
    expect(rules.rows).toEqual([{ schema_name: 'archive', n: 8 }, { schema_name: 'public', n: expect.any(Number) }]);
    expect((await client.query(`select count(*)::int as n from pg_trigger where tgname = 'audit_capture' and tgrelid::regclass::text like 'archive.%'`)).rows[0].n).toBe(8);

    const cfg = inject('adminConfig');
    await client.query(`do $$ begin if not exists (select from pg_roles where rolname = 'trustctl_upgrade_op') then
      create role trustctl_upgrade_op login password 'upgrade-op' in role trustctl_operator; end if; end $$`);
    try {
      const url = `postgres://trustctl_upgrade_op:upgrade-op@${cfg.host}:${cfg.port}/${name}`;
      const doctor = await runCli(['--database-url', url, '--json', 'doctor']);
      const report = JSON.parse(doctor.stdout) as { findings: Array<{ severity: string; code: string; object: string }> };
      expect(report.findings.filter((f) => f.severity !== 'info').map((f) => `${f.code} ${f.object}`)).toEqual([]);
      expect(doctor.code).toBe(0);
    } finally {
      await client.query('drop owned by trustctl_upgrade_op');
      await client.query('drop role trustctl_upgrade_op');
    }
  }, 240_000);
});
