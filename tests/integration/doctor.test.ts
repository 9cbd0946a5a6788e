// trustctl doctor against real databases: the migrated reference schema is
// clean, and every check sees exactly the defect a test introduces (on a
// fresh clone of the template), with exit 3 for errors. Roles are
// cluster-wide, so role defects use roles made for the test and dropped after.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK } from '../support/demo-ids.js';

interface ReportFinding {
  severity: 'error' | 'warn' | 'info';
  code: string;
  object: string;
  problem: string;
  fix: string;
  doc: string;
}
interface Report {
  format: string;
  findings: ReportFinding[];
  summary: { error: number; warn: number; info: number };
  probe: { home: string | null; attempts: number; crossed: number } | null;
}

/** Findings the reference schema always has: exceptions accepted by comment (migrations 0007, 0010). */
const isAccepted = (f: ReportFinding): boolean => f.severity === 'info' && f.problem.includes('— accepted (');
/** Seal tables are empty in the template: nothing of another tenant to aim the probe at. */
const UNTESTABLE = 'info probe-skipped database';

const line = (f: ReportFinding): string => `${f.severity} ${f.code} ${f.object}`;

async function doctor(db: TestDatabase, args: string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const res = await runCli(['--database-url', db.url('trustctl_test_op'), '--json', 'doctor', ...args]);
  if (res.stdout.trim() === '') return { code: res.code, report: { findings: [] } as unknown as Report, stderr: res.stderr };
  return { code: res.code, report: JSON.parse(res.stdout) as Report, stderr: res.stderr };
}

/** Fresh database, defect applied as the superuser, doctor run, database dropped. */
async function withDefect(sql: string[], args: string[], fn: (r: { code: number | null; report: Report; lines: string[] }) => void): Promise<void> {
  const db = await createTestDatabase();
  try {
    for (const s of sql) await db.admin.query(s);
    const { code, report, stderr } = await doctor(db, args);
    expect(stderr).not.toMatch(/Error|error:/);
    fn({ code, report, lines: report.findings.filter((f) => !isAccepted(f)).map(line).filter((l) => l !== UNTESTABLE) });
  } finally {
    await db.drop();
  }
}

const tempRole = () => `trustctl_doc_${randomBytes(4).toString('hex')}`;

describe('the migrated reference schema', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('passes every check and the live probe, with only the documented exceptions', async () => {
    const before = await db.admin.query(`select (select count(*) from users) as users, (select count(*) from role_assignments) as grants,
      (select count(*) from audit_events where action not like 'operator_session.%') as events`);
    const { code, report } = await doctor(db);
    expect(report.format).toBe('trustctl-doctor/1');
    expect(report.findings.filter((f) => !isAccepted(f)).map(line)).toEqual([UNTESTABLE]);
    expect(report.findings.filter(isAccepted).map(line)).toEqual([
      ...[
        'access_policy_for(p_org uuid, p_role text)',
        'archive_rows(p_ids uuid[])',
        'audit_checkpoint(p_org_id uuid, p_chain_seq bigint, p_head_hash bytea, p_rows bigint, p_horizon xid8, p_key_id text, p_signature bytea)',
        'audit_prune(p_org_id uuid, p_through_seq bigint)',
        'audit_record(p_org_id uuid, p_site_id uuid, p_action text, p_target_type text, p_target_id text, p_subject_ids uuid[], p_outcome text, p_context jsonb)',
        'audit_seal_append(p_org_id uuid, p_event_ids bigint[], p_prev_hashes bytea[], p_hashes bytea[])',
        'begin_archive_purge(p_org uuid)',
        'begin_erasure_replay(p_org uuid, p_erasure uuid, p_subject_type text, p_subject uuid, p_reference text, p_session uuid, p_sha256 text, p_seal text)',
        'begin_erasure(p_org uuid, p_reference text, p_subject uuid)',
        'begin_operator_session(p_reason text, p_ticket text, p_org_slugs text[], p_all_orgs boolean, p_command text, p_os_user text, p_host text)',
        'begin_retention_batch(p_run uuid)',
        'bind_context()',
        'check_bound_context()',
        'continuous_access_start(p_org uuid, p_site uuid, p_user_org uuid, p_user uuid, p_role text, p_starts timestamp with time zone, p_expires timestamp with time zone)',
        'doctor_probe(p_org uuid, p_site uuid, p_tables text[])',
        'end_operator_session(p_session_id uuid, p_outcome text)',
        'erasure_certificate_seal(p_org uuid, p_erasure uuid)',
        'erasure_certificate_valid(p_org uuid, p_erasure uuid, p_subject_type text, p_subject uuid, p_reference text, p_session uuid, p_sha256 text, p_seal text)',
        'erasure_pseudonym(p_org uuid, p_id uuid)',
        'erasure_redact_sessions(p_org uuid, p_subject uuid)',
        'is_support_user(p_org uuid, p_user uuid)',
        'live_roles()',
        'operator_org_ids()',
        'operator_session_user(p_session uuid)',
        'operator_sessions_covering(p_org_id uuid, p_at timestamp with time zone)',
        'organisation_directory()',
        'platform_org_id()',
        'subject_last_change(p_org_id uuid, p_subject_id uuid, p_tables text[])',
        'support_user_directory()',
        'user_admin_org_ids()',
        'user_guardian_children()',
        'user_org_ids()',
        'user_sites(p_roles text[])',
        'user_teacher_children()',
      ].map((f) => `info definer-bypasses-rls function app.${f}`),
      'info foreign-key-without-tenant-key constraint role_assignments_user_org_id_user_id_fkey on public.role_assignments',
      'info unique-without-tenant-key index public.organisations_slug_key',
    ]);
    expect(report.summary).toEqual({ error: 0, warn: 0, info: 37 });
    expect(code).toBe(0);
    // The probe ran over every tenant table as all five personas, crossed nothing, and left nothing behind.
    expect(report.probe?.home).toMatch(/^[a-z-]+\/[a-z-]+$/);
    expect((report.probe as unknown as { personas: string[] }).personas).toHaveLength(5);
    expect(report.probe!.attempts).toBeGreaterThan(600);
    expect(report.probe!.crossed).toBe(0);
    const after = await db.admin.query(`select (select count(*) from users) as users, (select count(*) from role_assignments) as grants,
      (select count(*) from audit_events where action not like 'operator_session.%') as events`);
    expect(after.rows[0]).toEqual(before.rows[0]);
    expect((await db.admin.query(`select count(*)::int as n from users where email like 'doctor-probe-%'`)).rows[0].n).toBe(0);
    // The probe's operator session is on record, closed with success.
    const session = await db.admin.query(`select reason, all_orgs, cardinality(org_ids) as orgs, outcome from operator_sessions where command like '%doctor%' order by started_at desc limit 1`);
    expect(session.rows[0]).toEqual({ reason: 'trustctl doctor: live isolation probe (rolled back)', all_orgs: false, orgs: 1, outcome: 'success' });
  });

  it('prints the same report twice, each finding with its fix and a link to its doc section', async () => {
    const a = await runCli(['--database-url', db.url('trustctl_test_op'), 'doctor']);
    const b = await runCli(['--database-url', db.url('trustctl_test_op'), 'doctor']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toContain('see docs/doctor.md#unique-without-tenant-key');
    expect(a.stdout).toMatch(/OK: no errors, 0 warning\(s\), 37 info/);
    expect(a.stdout).toMatch(/Live probe \(rolled back\): \d+ tenant tables × 5 personas, \d+ attempts, 0 crossed/);
  });

  it('refuses a bad or unknown --schema with exit 2 and one line', async () => {
    for (const bad of ['nope', 'public;drop']) {
      const res = await runCli(['--database-url', db.url('trustctl_test_op'), 'doctor', '--schema', bad]);
      expect(res.code).toBe(2);
      expect(res.stderr.trim().split('\n')[0]).toMatch(/unknown schema: nope|is not a schema name/);
      expect(res.stdout).toBe('');
    }
  });

  it('refuses to run as a superuser (exit 2): the probe would prove nothing', async () => {
    const res = await runCli(['--database-url', db.url('admin'), 'doctor']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/refusing to run as superuser/);
  });
});

// Each: the defect, the doctor's arguments, and exactly the findings (besides the accepted two) it must produce.
const POLICY_FOR_ORG = `org_id = any ((select app.user_org_ids())::uuid[])`;
const tenantTableSql = (name: string): string[] => [
  `create table ${name} (org_id uuid not null references public.organisations (org_id), id uuid not null, primary key (org_id, id))`,
  `alter table ${name} enable row level security`,
  `alter table ${name} force row level security`,
  `create policy p on ${name} for all to app_user using (${POLICY_FOR_ORG}) with check (${POLICY_FOR_ORG})`,
];

const defects: Array<{ check: string; sql: (role: string) => string[]; args?: string[]; expected: (role: string) => string[] }> = [
  { check: 'rls-disabled', sql: () => ['alter table notes disable row level security'], expected: () => ['error rls-disabled table public.notes'] },
  { check: 'rls-not-forced', sql: () => ['alter table notes no force row level security'], expected: () => ['error rls-not-forced table public.notes'] },
  {
    check: 'rls-no-policy',
    sql: () => ['select', 'insert', 'update', 'delete'].map((c) => `drop policy notes_app_${c} on notes`).concat('drop policy notes_operator on notes'),
    expected: () => ['warn rls-no-policy table public.notes'],
  },
  {
    check: 'partition-without-rls',
    sql: () => [
      'create schema part',
      `create table part.events (org_id uuid not null, id uuid not null, primary key (org_id, id)) partition by hash (org_id)`,
      'alter table part.events enable row level security',
      'alter table part.events force row level security',
      `create policy p on part.events for all to app_user using (${POLICY_FOR_ORG}) with check (${POLICY_FOR_ORG})`,
      `create table part.events_0 partition of part.events for values with (modulus 1, remainder 0)`,
    ],
    args: ['--schema', 'public', '--schema', 'part'],
    expected: () => ['error partition-without-rls table part.events_0'],
  },
  { check: 'policy-always-true', sql: () => ['alter policy children_app_select on children using (true)'], expected: () => ['error policy-always-true policy children_app_select on public.children'] },
  {
    check: 'policy-no-tenant-key',
    sql: () => ['alter policy children_app_select on children using (id = (select app.current_user_id()))'],
    expected: () => ['error policy-no-tenant-key policy children_app_select on public.children'],
  },
  {
    check: 'policy-missing-with-check',
    sql: () => ['drop policy notes_app_update on notes', `create policy notes_app_update on notes for update to app_user using (${POLICY_FOR_ORG})`],
    expected: () => ['warn policy-missing-with-check policy notes_app_update on public.notes'],
  },
  {
    check: 'policy-permissive-overlap',
    sql: () => [`create policy children_extra on children for select to app_user using ((org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(null) x))`],
    expected: () => ['error policy-permissive-overlap table public.children'],
  },
  {
    check: 'setting-without-nullif',
    sql: () => [`alter policy children_app_select on children using (org_id = (select current_setting('app.org_id', true))::uuid)`],
    expected: () => ['error setting-without-nullif policy children_app_select on public.children'],
  },
  {
    check: 'setting-without-nullif (in a function a policy calls)',
    sql: () => [`create or replace function app.current_user_id() returns uuid language sql stable parallel safe set search_path = pg_catalog, pg_temp
      as $$ select pg_catalog.current_setting('app.user_id', true)::uuid $$`],
    expected: () => ['error setting-without-nullif function app.current_user_id()'],
  },
  {
    check: 'setting-not-in-subselect',
    sql: () => [`alter policy children_app_select on children using (org_id = nullif(current_setting('app.org_id', true), '')::uuid)`],
    expected: () => ['warn setting-not-in-subselect policy children_app_select on public.children'],
  },
  {
    check: 'runtime-role-superuser',
    sql: (r) => [`create role ${r} nologin superuser in role app_user`],
    expected: (r) => [`error runtime-role-superuser role ${r}`],
  },
  {
    check: 'runtime-role-bypassrls',
    sql: (r) => [`create role ${r} nologin bypassrls in role trustctl_operator`],
    expected: (r) => [`error runtime-role-bypassrls role ${r}`],
  },
  {
    check: 'runtime-role-bypassrls (through membership)',
    sql: (r) => [`create role ${r} nologin in role app_user, trustctl_definer`],
    expected: (r) => [`error runtime-role-bypassrls role ${r}`],
  },
  { check: 'runtime-role-owns-table', sql: () => ['alter table notes owner to app_user'], expected: () => ['error runtime-role-owns-table role app_user'] },
  {
    check: 'runtime-role-owns-table (through membership)',
    sql: (r) => [`create role ${r} nologin in role app_user, trustctl_owner`],
    expected: (r) => [`error runtime-role-owns-table role ${r}`],
  },
  { check: 'public-privilege', sql: () => ['grant select on children to public'], expected: () => ['error public-privilege table public.children'] },
  { check: 'truncate-or-references', sql: () => ['grant truncate on notes to app_user'], expected: () => ['error truncate-or-references table public.notes'] },
  {
    check: 'view-without-security-invoker',
    sql: () => ['create view public.child_names as select org_id, site_id, full_name from children', 'grant select on public.child_names to app_user'],
    expected: () => ['error view-without-security-invoker view public.child_names'],
  },
  {
    check: 'materialized-view-readable',
    sql: () => ['create materialized view public.child_counts as select org_id, count(*) from children group by org_id', 'grant select on public.child_counts to app_user'],
    expected: () => ['error materialized-view-readable materialized view public.child_counts'],
  },
  {
    check: 'foreign-table-readable',
    sql: () => [
      'create foreign data wrapper doctor_fdw',
      'create server doctor_srv foreign data wrapper doctor_fdw',
      'create foreign table public.remote_children (org_id uuid, full_name text) server doctor_srv',
      'grant select on public.remote_children to trustctl_operator',
    ],
    expected: () => ['error foreign-table-readable foreign table public.remote_children'],
  },
  {
    check: 'definer-search-path',
    sql: () => [`create function public.doctor_f() returns int language sql security definer as 'select 1'`, 'revoke execute on function public.doctor_f() from public'],
    expected: () => ['error definer-search-path function public.doctor_f()'],
  },
  {
    check: 'definer-public-execute',
    sql: () => [`create function public.doctor_g() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1'`],
    expected: () => ['error definer-public-execute function public.doctor_g()'],
  },
  {
    check: 'leakproof-function',
    sql: () => [`create function public.doctor_lp(int) returns boolean language sql immutable leakproof as 'select $1 > 0'`],
    expected: () => ['warn leakproof-function function public.doctor_lp(integer)'],
  },
  { check: 'unique-without-tenant-key', sql: () => ['create unique index children_id_global on children (id)'], expected: () => ['error unique-without-tenant-key index public.children_id_global'] },
  {
    check: 'foreign-key-without-tenant-key',
    sql: () => [
      'create unique index children_id_global on children (id)',
      `comment on index children_id_global is 'trustctl-doctor: accept unique-without-tenant-key: needed by the test''s foreign key'`,
      'alter table notes add constraint notes_child_global_fk foreign key (child_id) references children (id)',
    ],
    expected: () => ['error foreign-key-without-tenant-key constraint notes_child_global_fk on public.notes'],
  },
  {
    check: 'tenant-key-not-leading',
    sql: () => [
      'create schema lab',
      'create table lab.things (org_id uuid not null, note text)',
      'create index on lab.things (note, org_id)',
      'alter table lab.things enable row level security',
      'alter table lab.things force row level security',
      `create policy p on lab.things for all to app_user using (${POLICY_FOR_ORG}) with check (${POLICY_FOR_ORG})`,
    ],
    args: ['--schema', 'lab'],
    expected: () => ['warn tenant-key-not-leading table lab.things'],
  },
  { check: 'missing-audit-capture', sql: () => ['drop trigger audit_capture on notes'], expected: () => ['error missing-audit-capture table public.notes'] },
  {
    check: 'audit-capture-misses-subject',
    sql: () => [
      'drop trigger audit_capture on notes',
      `create trigger audit_capture after insert or update or delete on notes for each row execute function app.capture_change('id', 'child_id')`,
    ],
    expected: () => ['error audit-capture-misses-subject trigger audit_capture on public.notes'],
  },
  { check: 'missing-append-only', sql: () => ['drop trigger audit_chain_append_only on audit_chain'], expected: () => ['error missing-append-only table public.audit_chain'] },
  {
    check: 'missing-append-only (disabled trigger)',
    sql: () => ['alter table audit_events disable trigger audit_events_no_truncate'],
    expected: () => ['error missing-append-only table public.audit_events'],
  },
  {
    check: 'unmapped-table',
    sql: () => [
      ...tenantTableSql('public.extra_things'),
      `create trigger audit_capture after insert or update or delete on public.extra_things for each row execute function app.capture_change('id')`,
    ],
    // Captured but never bound: a statement could change who it acts as half-way.
    expected: () => ['error unmapped-table table public.extra_things', 'error context-not-bound table public.extra_things'],
  },
  { check: 'mapped-table-missing', sql: () => ['drop table erasures cascade'], expected: () => ['error mapped-table-missing table public.erasures'] },
  { check: 'mapped-column-missing', sql: () => ['alter table notes rename column body to text_body'], expected: () => ['error mapped-column-missing table public.notes'] },
  {
    check: 'definer-search-path (pg_temp not last)',
    sql: () => ['alter function app.user_org_ids() set search_path = pg_catalog'],
    expected: () => ['error definer-search-path function app.user_org_ids()'],
  },
  {
    check: 'definer-bypasses-rls',
    sql: () => [
      `create function app.child_search(p text) returns table (id uuid, full_name text) language sql stable security definer
        set search_path = pg_catalog, pg_temp as $$ select c.id, c.full_name from public.children c where c.full_name ilike '%' || p || '%' $$`,
      'alter function app.child_search(text) owner to trustctl_definer',
      'revoke all on function app.child_search(text) from public',
      'grant execute on function app.child_search(text) to app_user',
    ],
    expected: () => ['error definer-bypasses-rls function app.child_search(p text)'],
  },
  {
    check: 'definer-bypasses-rls (a reviewed body changed)',
    sql: () => [`create or replace function app.organisation_directory() returns table (slug text, name text, kind text, site_count bigint)
      language sql stable security definer set search_path = pg_catalog, pg_temp
      as $$ select o.slug, o.name || (select string_agg(c.full_name, ',') from public.children c), o.kind, 0::bigint from public.organisations o $$`],
    expected: () => ['error definer-bypasses-rls function app.organisation_directory()'],
  },
  {
    check: 'runtime-role-server-access',
    sql: (r) => [`create role ${r} nologin in role app_user, pg_read_server_files`],
    expected: (r) => [`error runtime-role-server-access role ${r}`],
  },
  {
    check: 'bypassrls-role',
    sql: (r) => [`create role ${r} login bypassrls`],
    expected: (r) => [`warn bypassrls-role role ${r}`],
  },
  {
    check: 'missing-append-only (trigger enabled for replicas only)',
    sql: () => ['alter table audit_events enable replica trigger audit_events_append_only'],
    expected: () => ['error missing-append-only table public.audit_events'],
  },
  {
    check: 'unique-without-tenant-key (tenant key only INCLUDEd)',
    sql: () => ['create unique index children_upn_key on children (upn) include (org_id)'],
    expected: () => ['error unique-without-tenant-key index public.children_upn_key'],
  },
  {
    check: 'unique-without-tenant-key (an exclusion constraint)',
    sql: () => ['alter table users add constraint users_email_excl exclude using hash (email with =)'],
    expected: () => ['error unique-without-tenant-key index public.users_email_excl'],
  },
  {
    check: 'public-privilege (on columns)',
    sql: () => ['grant select (id, full_name) on children to public'],
    expected: () => ['error public-privilege table public.children'],
  },
  {
    check: 'a restrictive policy that narrows is not a finding',
    sql: () => [`create policy notes_written on notes as restrictive for select to app_user using (body is not null)`],
    expected: () => [],
  },
  {
    check: 'unmapped-person-reference',
    sql: () => ['alter table notes add column reviewed_by uuid', 'alter table notes add constraint notes_reviewed_by_fkey foreign key (org_id, reviewed_by) references users (org_id, id)'],
    expected: () => ['error unmapped-person-reference constraint notes_reviewed_by_fkey on public.notes'],
  },
  // The operator-proof rules (migrations 0016, 0017; docs/threat-model.md).
  { check: 'context-not-bound', sql: () => ['drop trigger context_bind on notes'], expected: () => ['error context-not-bound table public.notes'] },
  {
    check: 'context-read-unbound',
    sql: () => [`create function app.doctor_trusting_guard() returns trigger language plpgsql set search_path = pg_catalog, pg_temp as $$
      begin
        if nullif(pg_catalog.current_setting('app.operator_session', true), '') is null then return new; end if;
        return new;
      end $$`],
    expected: () => ['error context-read-unbound function app.doctor_trusting_guard()'],
  },
  { check: 'operator-change-unguarded', sql: () => ['drop trigger operator_guard_delete on notes'], expected: () => ['error operator-change-unguarded table public.notes'] },
  {
    check: 'operator-change-unguarded (a hold deletable)',
    sql: () => ['drop trigger legal_holds_history on legal_holds', 'drop trigger operator_guard_delete on legal_holds'],
    expected: () => ['error operator-change-unguarded table public.legal_holds'],
  },
  { check: 'archive-writable', sql: () => ['grant insert on archive.notes to trustctl_operator'], expected: () => ['error archive-writable table archive.notes'] },
  { check: 'missing-audit-capture (archive)', sql: () => ['drop trigger audit_capture on archive.notes'], expected: () => ['error missing-audit-capture table archive.notes'] },
  {
    check: 'definer-writes-unchecked',
    sql: () => [
      `create function app.doctor_purge(p uuid) returns void language sql security definer set search_path = pg_catalog, pg_temp
        as $$ delete from public.notes where org_id = p $$`,
      'alter function app.doctor_purge(uuid) owner to trustctl_definer',
      'revoke all on function app.doctor_purge(uuid) from public',
      'grant execute on function app.doctor_purge(uuid) to trustctl_operator',
      `select app.record_reviewed_definer('app.doctor_purge(uuid)', 'reviewed, wrongly')`,
    ],
    expected: () => ['error definer-writes-unchecked function app.doctor_purge(p uuid)'],
  },
  {
    check: 'trusts-tenant-column',
    sql: () => [`create function app.doctor_is_platform(p uuid) returns boolean language sql stable set search_path = pg_catalog, pg_temp
      as $$ select exists (select 1 from public.organisations o where o.org_id = p and o.kind = 'platform') $$`],
    expected: () => ['error trusts-tenant-column function app.doctor_is_platform(p uuid)'],
  },
];

describe('every catalog check sees exactly the defect introduced', () => {
  for (const d of defects) {
    it(d.check, async () => {
      const role = tempRole();
      try {
        await withDefect(d.sql(role), ['--no-probe', ...(d.args ?? [])], ({ code, report, lines }) => {
          expect(report.probe).toBeNull();
          expect(lines.sort()).toEqual(d.expected(role).sort());
          expect(code).toBe(d.expected(role).some((l) => l.startsWith('error')) ? 3 : 0);
          expect(report.findings.every((f) => f.doc === `docs/doctor.md#${f.code}` && f.fix.length > 0)).toBe(true);
        });
      } finally {
        await dropRole(role);
      }
    });
  }
});

async function dropRole(role: string): Promise<void> {
  const { default: pg } = await import('pg');
  const { inject } = await import('vitest');
  const c = new pg.Client(inject('adminConfig'));
  await c.connect();
  try {
    await c.query(`drop role if exists ${role}`);
  } finally {
    await c.end();
  }
}

describe('the live probe', () => {
  const probeLines = (lines: string[]) => lines.filter((l) => l.includes(' probe-'));

  it('does not report an organisation admin’s insert at another of its own sites when no other organisation has rows (issue 16)', async () => {
    // As after a sweep archived every note of the other organisation.
    await withDefect([`delete from notes where org_id = '${ACORNS}'`], [], ({ code, lines }) => {
      expect(probeLines(lines)).toEqual([]);
      expect(code).toBe(0);
    });
  });

  it('sees a site user reading another tenant’s rows that the catalog checks cannot tell from a real condition', async () => {
    await withDefect(['alter policy children_app_select on children using (org_id is not null)'], [], ({ code, lines, report }) => {
      expect([...new Set(lines)]).toEqual(['error probe-visible-rows table public.children']);
      expect(report.findings.filter((f) => f.code === 'probe-visible-rows').map((f) => f.problem)).toContainEqual(
        expect.stringMatching(/^as a synthetic user with every site role at .*: \d+ row\(s\) of other tenants visible$/));
      expect(code).toBe(3);
    });
  });

  it('sees a site user inserting into another tenant', async () => {
    await withDefect(['alter policy children_app_insert on children with check (org_id is not null)'], [], ({ code, lines }) => {
      expect([...new Set(lines)]).toEqual(['error probe-insert-crossed table public.children']);
      expect(code).toBe(3);
    });
  });

  it('sees an operator without a session reading, updating, deleting and inserting', async () => {
    await withDefect(['alter policy notes_operator on notes using (org_id is not null) with check (org_id is not null)'], [], ({ code, lines, report }) => {
      expect([...new Set(lines)].sort()).toEqual([
        'error probe-delete-crossed table public.notes',
        'error probe-insert-crossed table public.notes',
        'error probe-update-crossed table public.notes',
        'error probe-visible-rows table public.notes',
      ]);
      expect(report.findings.filter((f) => f.code.startsWith('probe-')).map((f) => f.problem)).toContainEqual(
        expect.stringMatching(/^as an operator without a session: \d+ row\(s\) of other tenants visible$/));
      expect(code).toBe(3);
    });
  });

  it('sees UPDATE and DELETE policies that reach other tenants while SELECT is tight', async () => {
    await withDefect([
      'alter policy notes_app_update on notes using (org_id is not null) with check (org_id is not null)',
      'alter policy notes_app_delete on notes using (org_id is not null)',
    ], [], ({ code, lines }) => {
      expect([...new Set(lines)].sort()).toEqual(['error probe-delete-crossed table public.notes', 'error probe-update-crossed table public.notes']);
      expect(code).toBe(3);
    });
  });

  it('sees a leak only an organisation admin has', async () => {
    const orig = `(org_id, site_id) in (select x.org_id, x.site_id from app.user_sites(array['org_admin', 'site_admin', 'senco', 'safeguarding_lead', 'office']) x)`;
    await withDefect([
      `alter policy children_app_select on children using (${orig} or exists (select 1 from app.live_roles() r where r.role = 'org_admin' and r.org_id = org_id))`,
    ], [], ({ code, report, lines }) => {
      expect([...new Set(lines)]).toEqual(['error probe-visible-rows table public.children']);
      expect(report.findings.filter((f) => f.code === 'probe-visible-rows').every((f) => f.problem.includes('organisation admin'))).toBe(true);
      expect(code).toBe(3);
    });
  });

  it('sees an operator policy that honours any session id', async () => {
    const scoped = 'org_id = any ((select app.operator_org_ids())::uuid[])';
    const loose = `${scoped} or ((select app.current_operator_session_id()) is not null and org_id is not null)`;
    await withDefect([`alter policy children_operator on children using (${loose}) with check (${loose})`], [], ({ code, report, lines }) => {
      expect([...new Set(lines)].sort()).toEqual([
        'error probe-delete-crossed table public.children',
        'error probe-insert-crossed table public.children',
        'error probe-update-crossed table public.children',
        'error probe-visible-rows table public.children',
      ]);
      expect(report.findings.filter((f) => f.severity === 'error').every((f) => /made-up session id|session for .* only/.test(f.problem))).toBe(true);
      expect(code).toBe(3);
    });
  });

  it('warns when a probe step fails for another reason than a refusal', async () => {
    await withDefect([
      `create function public.doctor_boom() returns trigger language plpgsql set search_path = pg_catalog, pg_temp as $$ begin raise exception 'boom'; end $$`,
      'create trigger doctor_boom before insert on notes for each row execute function public.doctor_boom()',
    ], [], ({ code, report, lines }) => {
      expect([...new Set(lines)]).toEqual(['warn probe-inconclusive table public.notes']);
      expect(report.findings.find((f) => f.code === 'probe-inconclusive')!.problem).toMatch(/insert \(statement\) failed for another reason than a refusal \(P0001: boom\)/);
      expect(code).toBe(0);
    });
  });

  it('reports RLS switched off both from the catalog and from what it sees', async () => {
    await withDefect(['alter table notes disable row level security'], [], ({ code, lines }) => {
      expect(lines).toContain('error rls-disabled table public.notes');
      expect(probeLines(lines)).toContain('error probe-visible-rows table public.notes');
      expect(code).toBe(3);
    });
  });

  it('leaves nothing behind even when its caller commits, and cannot be used to act as a chosen user', async () => {
    const db = await createTestDatabase();
    try {
      const counts = () => db.admin.query(`select (select count(*) from users)::int as users, (select count(*) from role_assignments)::int as grants,
        (select count(*) from notes)::int as notes, (select count(*) from guardianships)::int as guardianships`).then((r) => r.rows[0]);
      const before = await counts();
      const site = (await db.admin.query(`select site_id from sites where org_id = $1 order by slug limit 1`, [OAK])).rows[0].site_id;
      const note = (await db.admin.query(`select to_jsonb(n) as row from notes n where org_id = $1 limit 1`, [OAK])).rows[0].row;
      await db.withClient('trustctl_test_op', async (c) => {
        const session = (await c.query(`select session_id from app.begin_operator_session('doctor test', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id;
        await c.query('begin');
        await c.query(`select set_config('app.operator_session', $1, true)`, [session]);
        const rows = (await c.query(`select * from app.doctor_probe($1, $2, array['notes', 'users'])`, [OAK, site])).rows;
        expect(rows.filter((r) => r.outcome === 'violation')).toEqual([]);
        expect(rows.length).toBeGreaterThan(20);
        // In its session the operator may insert an Oak note: the probe does, then undoes it.
        const own = await c.query(`select * from app.probe_boundary(null, null, array['notes'], jsonb_build_object('notes', $1::jsonb))`, [note]);
        expect(own.rows.find((r) => r.probe === 'insert')?.outcome).toBe('violation');
        await c.query('commit');
        // Without a session covering the organisation: refused.
        await expect(c.query(`select * from app.doctor_probe($1, $2, array['notes'])`, [ACORNS, site])).rejects.toMatchObject({ code: 'TC005' });
      });
      expect(await counts()).toEqual(before);
      expect((await db.admin.query(`select count(*)::int as n from users where email like 'doctor-probe-%'`)).rows[0].n).toBe(0);
      // Acting as a chosen user, and raw policy evaluation, are only for app.doctor_probe itself.
      const someone = (await db.admin.query(`select id from users where site_id = $1 limit 1`, [site])).rows[0].id;
      for (const role of ['trustctl_test_op', 'trustctl_test_app'] as const) {
        await expect(
          db.withClient(role, (c) => c.query(`select * from app.doctor_probe_as_user($1, $2, $1, $3, array['children'], '{}')`, [OAK, someone, site])),
        ).rejects.toMatchObject({ code: '42501' });
        await expect(
          db.withClient(role, (c) => c.query(`select * from app.doctor_policy_reach('app_user', null, null, array['children'])`)),
        ).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await db.drop();
    }
  });
});
