// Tenant isolation, proven against the live schema. The matrix comes from
// the catalog, so a table added tomorrow is covered without editing this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { mintTwins, orgDroppedPolicies, setPolicies, twinPersonas, type PolicyCommand, type Twin } from '../support/decoys.js';
import { ACORNS, OAK, OAK_PRIMARY, PLATFORM, demoId } from '../support/demo-ids.js';
import { plantArchivedRows } from '../support/archive.js';
import { installWitness, probePersona, tenantTablesFromCatalog, type Persona, type TenantTable } from '../support/matrix.js';

let db: TestDatabase;
let tables: TenantTable[];
let oakSession: string;

const siteForeign = (org: string, site: string) => (t: TenantTable, r: string) =>
  t.hasSite
    ? `(${r}.org_id <> '${org}' or ${r}.site_id is distinct from '${site}')`
    : `${r}.org_id <> '${org}'`;
const orgForeign = (org: string) => (_t: TenantTable, r: string) => `${r}.org_id <> '${org}'`;
const everything = () => 'true';

// A user's own account and own role assignments are never foreign to them
// (a support engineer may see their own pending grant): matched with the
// user's organisation, as the policies match them.
function appPersona(label: string, userName: string, org: string | undefined, foreign: Persona['foreign']): Persona {
  const id = demoId(userName);
  const own = (t: TenantTable, r: string) =>
    t.name === 'users' ? `(${r}.org_id, ${r}.id) = ('${org}', '${id}')`
      : t.name === 'role_assignments' ? `(${r}.user_org_id, ${r}.user_id) = ('${org}', '${id}')`
      : 'false';
  return {
    label,
    login: 'trustctl_test_app',
    settings: { 'app.user_id': id },
    foreign: (t, r) => `(${foreign(t, r)}) and not (${org ? own(t, r) : 'false'})`,
    home: org,
  };
}

const sitePersonas = (['site_admin', 'teacher', 'senco', 'safeguarding_lead', 'office'] as const).map((role) =>
  appPersona(`${role}@oak-primary`, `staff:oak-primary:${role}:1`, OAK, siteForeign(OAK, OAK_PRIMARY)),
);
const ceo = () => appPersona('org_admin@oak-trust', 'staff:oak-trust:ceo', OAK, orgForeign(OAK));
const trustDsl = () => appPersona('trust safeguarding lead', 'staff:oak-trust:dsl', OAK, orgForeign(OAK));

/** Opens an operator session over oak-trust on the database; returns its id. */
async function oakOperatorSession(on: TestDatabase): Promise<string> {
  return on.withClient('trustctl_test_op', async (c) => {
    const res = await c.query(
      `select session_id from app.begin_operator_session('isolation test', null, array['oak-trust'], false, 'vitest', 'ci', 'ci')`,
    );
    return res.rows[0].session_id as string;
  });
}
const oakOperator = (session: string): Persona => ({
  label: 'operator, session scoped to oak-trust',
  login: 'trustctl_test_op',
  settings: { 'app.operator_session': session },
  foreign: orgForeign(OAK),
  home: OAK,
});

beforeAll(async () => {
  db = await createTestDatabase();
  // The audit seal tables are empty in the template; give them rows of two
  // organisations so their probes are not vacuous (content need not verify).
  await db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    for (const org of [OAK, ACORNS]) {
      await c.query(
        `insert into audit_chain (org_id, chain_seq, event_id, prev_hash, hash)
         select org_id, row_number() over (order by txid, id), id, sha256('prev'), sha256(id::text::bytea)
         from (select * from audit_events where org_id = $1 order by txid, id limit 3) e`,
        [org],
      );
      await c.query(`insert into audit_checkpoints (org_id, chain_seq, head_hash, rows, horizon) values ($1, 3, sha256('x'), 3, '1')`, [org]);
      await c.query(`insert into audit_anchors (org_id, chain_seq, hash) values ($1, 1, sha256('a'))`, [org]);
    }
    await c.query('commit');
  });
  // Archive tables are empty in the template too: copies of Oak's rows, archived at Oak and at Little Acorns.
  await plantArchivedRows(db, { from: OAK, into: [OAK, ACORNS] });
  tables = await tenantTablesFromCatalog(db.admin);
  await installWitness(db.admin, tables);
  oakSession = await oakOperatorSession(db);
});
afterAll(() => db?.drop());

describe('the catalog-driven isolation matrix', () => {
  it('finds every tenant table of the reference schema', () => {
    const names = tables.map((t) => t.name);
    expect(names.length).toBeGreaterThanOrEqual(20);
    for (const t of ['children', 'notes', 'safeguarding_concerns', 'audit_events', 'role_assignments', 'media_files', 'archive.notes', 'archive.rota_shifts']) {
      expect(names).toContain(t);
    }
  });

  it('has rows of at least two organisations in every tenant table, so no probe is vacuous', async () => {
    for (const t of tables) {
      const res = await db.admin.query(`select count(distinct org_id)::int as orgs from ${t.qualified}`);
      expect({ table: t.name, orgs: res.rows[0].orgs >= 2 }).toEqual({ table: t.name, orgs: true });
    }
  });

  it('lets no app_user persona reach another site or organisation', async () => {
    const personas: Persona[] = [
      ...sitePersonas,
      appPersona('guardian@oak-primary', 'guardian:oak-primary:1:1', OAK, siteForeign(OAK, OAK_PRIMARY)),
      ceo(),
      trustDsl(),
      appPersona('org_admin@little-acorns', 'staff:little-acorns:owner', ACORNS, orgForeign(ACORNS)),
      appPersona('support, grant expired', 'support:1', PLATFORM, everything),
      appPersona('support, grant pending', 'support:2', PLATFORM, everything),
      appPersona('unknown user', 'nobody', undefined, everything),
      { label: 'app_user without context', login: 'trustctl_test_app', settings: {}, foreign: everything },
      { label: 'app_user with empty context', login: 'trustctl_test_app', settings: { 'app.user_id': '' }, foreign: everything },
    ];
    const violations = (await Promise.all(personas.map((p) => probePersona(db, p, tables)))).flat();
    expect(violations).toEqual([]);
  });

  it('lets an operator reach only the organisations of an open session', async () => {
    const personas: Persona[] = [
      { label: 'operator without session', login: 'trustctl_test_op', settings: {}, foreign: everything },
      { label: 'operator, empty session', login: 'trustctl_test_op', settings: { 'app.operator_session': '' }, foreign: everything },
      oakOperator(oakSession),
      {
        label: 'another operator borrowing that session',
        login: 'trustctl_test_op2',
        settings: { 'app.operator_session': oakSession },
        foreign: everything,
      },
    ];
    const violations = (await Promise.all(personas.map((p) => probePersona(db, p, tables)))).flat();
    expect(violations).toEqual([]);
  });
});

describe('what each persona does see (the matrix is not vacuous)', () => {
  // Rows an app user (by demo name) sees, or, with userName null, an operator with settings.
  async function visible(userName: string | null, sql: string, settings: Record<string, string> = {}) {
    const login = userName === null ? 'trustctl_test_op' : 'trustctl_test_app';
    const context = userName === null ? settings : { 'app.user_id': demoId(userName), ...settings };
    return (await db.inTransaction(login, context, (c) => c.query(sql))).rows;
  }
  async function truth(sql: string, params: unknown[] = []) {
    return (await db.admin.query(sql, params)).rows;
  }

  it('an operator session over oak-trust sees every oak-trust row of every tenant table', async () => {
    for (const t of tables) {
      const [seen] = await visible(null, `select count(*)::int as n from ${t.qualified}`, {
        'app.operator_session': oakSession,
      });
      const [all] = await truth(`select count(*)::int as n from ${t.qualified} where org_id = $1`, [OAK]);
      expect({ table: t.name, n: seen.n }).toEqual({ table: t.name, n: all.n });
    }
  });

  it('a site admin sees all children of the site, a teacher only the caseload, a guardian only their own', async () => {
    const [siteKids] = await truth(`select count(*)::int as n from children where site_id = $1`, [OAK_PRIMARY]);
    const [adminSees] = await visible('staff:oak-primary:site_admin:1', 'select count(*)::int as n from children');
    expect(adminSees.n).toBe(siteKids.n);
    expect(adminSees.n).toBeGreaterThan(0);

    const teacher = demoId('staff:oak-primary:teacher:1');
    const caseload = await truth(
      `select distinct c.child_id from group_memberships t
       join group_memberships c on c.group_id = t.group_id and c.child_id is not null
       where t.staff_id = $1 order by 1`,
      [teacher],
    );
    const teacherSees = await visible('staff:oak-primary:teacher:1', 'select id as child_id from children order by 1');
    expect(teacherSees).toEqual(caseload);
    expect(caseload.length).toBeLessThan(siteKids.n);

    const guardian = demoId('guardian:oak-primary:1:1');
    const own = await truth(`select child_id from guardianships where guardian_id = $1 order by 1`, [guardian]);
    const guardianSees = await visible('guardian:oak-primary:1:1', 'select id as child_id from children order by 1');
    expect(guardianSees).toEqual(own);
    expect(own.length).toBeGreaterThan(0);
  });

  it('guardians\u2019 emails and phones: a teacher sees only those of caseload children, a site admin the whole site\u2019s', async () => {
    const teacherKids = (await visible('staff:oak-primary:teacher:1', 'select id from children')).map((r) => r.id);
    const caseloadGuardians = await truth(
      `select distinct guardian_id as id from guardianships where org_id = $1 and child_id = any($2::uuid[]) order by 1`, [OAK, teacherKids]);
    const siteGuardians = await truth(`select id from users where org_id = $1 and site_id = $2 and kind = 'guardian' order by 1`, [OAK, OAK_PRIMARY]);
    const teacherSees = await visible('staff:oak-primary:teacher:1', `select id, email, phone from users where kind = 'guardian' order by 1`);
    expect(teacherSees.map((r) => ({ id: r.id }))).toEqual(caseloadGuardians);
    expect(caseloadGuardians.length).toBeGreaterThan(0);
    expect(caseloadGuardians.length).toBeLessThan(siteGuardians.length);
    // Colleagues stay visible to a teacher.
    const staff = await truth(`select id from users where org_id = $1 and site_id = $2 and kind = 'staff' order by 1`, [OAK, OAK_PRIMARY]);
    expect(await visible('staff:oak-primary:teacher:1', `select id from users where kind = 'staff' order by 1`)).toEqual(staff);
    expect(await visible('staff:oak-primary:site_admin:1', `select id from users where kind = 'guardian' and site_id = '${OAK_PRIMARY}' order by 1`)).toEqual(siteGuardians);
  });

  it('sensitive notes and safeguarding concerns only for the safeguarding lead; guardians see guardian-visible notes only', async () => {
    const [sensitive] = await truth(`select count(*)::int as n from notes where site_id = $1 and kind = 'sensitive'`, [OAK_PRIMARY]);
    const [concerns] = await truth(`select count(*)::int as n from safeguarding_concerns where site_id = $1`, [OAK_PRIMARY]);
    expect(sensitive.n).toBeGreaterThan(0);
    expect(concerns.n).toBeGreaterThan(0);

    const dsl = 'staff:oak-primary:safeguarding_lead:1';
    expect((await visible(dsl, `select count(*)::int as n from notes where kind = 'sensitive'`))[0].n).toBe(sensitive.n);
    expect((await visible(dsl, `select count(*)::int as n from safeguarding_concerns`))[0].n).toBe(concerns.n);

    for (const other of ['staff:oak-primary:site_admin:1', 'staff:oak-primary:teacher:1', 'guardian:oak-primary:1:1']) {
      expect((await visible(other, `select count(*)::int as n from notes where kind = 'sensitive'`))[0].n).toBe(0);
      expect((await visible(other, `select count(*)::int as n from safeguarding_concerns`))[0].n).toBe(0);
    }
    const guardianNotes = await visible('guardian:oak-primary:1:1', `select bool_and(guardian_visible) as all_visible, count(*)::int as n from notes`);
    expect(guardianNotes[0].n).toBeGreaterThan(0);
    expect(guardianNotes[0].all_visible).toBe(true);
  });
});

describe('the matrix fails when isolation is broken', () => {
  it('catches RLS disabled on any one tenant table', async () => {
    const persona = appPersona('teacher@oak-primary', 'staff:oak-primary:teacher:1', OAK, siteForeign(OAK, OAK_PRIMARY));
    const operator: Persona = { label: 'operator without session', login: 'trustctl_test_op', settings: {}, foreign: everything };
    for (const t of tables) {
      await db.admin.query(`alter table ${t.qualified} disable row level security`);
      try {
        const violations = [...(await probePersona(db, persona, [t])), ...(await probePersona(db, operator, [t]))];
        expect({ table: t.name, caught: violations.some((v) => v.startsWith(`${t.name} ×`)) }).toEqual({
          table: t.name,
          caught: true,
        });
      } finally {
        await db.admin.query(`alter table ${t.qualified} enable row level security`);
      }
    }
  });

  it('catches UPDATE and DELETE policies that let foreign rows through, though the SELECT policy hides them', async () => {
    // A statement with a WHERE clause is filtered by the SELECT policy too;
    // an attacker's blind UPDATE or DELETE is not.
    const teacher = appPersona('teacher@oak-primary', 'staff:oak-primary:teacher:1', OAK, siteForeign(OAK, OAK_PRIMARY));
    const attendance = tables.filter((t) => t.name === 'attendance_records');
    for (const command of ['update', 'delete'] as const) {
      await db.admin.query(`create policy leak on public.attendance_records for ${command} to app_user using (true)`);
      try {
        const violations = await probePersona(db, teacher, attendance);
        expect({ command, caught: violations.some((v) => v.includes(` ${command.toUpperCase()}: `) && v.includes('foreign rows reached')) })
          .toEqual({ command, caught: true });
        expect(violations.some((v) => v.includes(' SELECT: '))).toBe(false);
      } finally {
        await db.admin.query(`drop policy leak on public.attendance_records`);
      }
    }
  });

  it('catches an UPDATE policy whose check lets a row leave its organisation', async () => {
    await db.admin.query(`create policy leak on public.attendance_records for update to app_user using (false) with check (true)`);
    try {
      const teacher = appPersona('teacher@oak-primary', 'staff:oak-primary:teacher:1', OAK, siteForeign(OAK, OAK_PRIMARY));
      const violations = await probePersona(db, teacher, tables.filter((t) => t.name === 'attendance_records'));
      // The rows reach the foreign key, which stops them; RLS should have.
      expect(violations).toEqual([expect.stringMatching(/^attendance_records × teacher@oak-primary UPDATE into another organisation: refused for the wrong reason \(insert or update on table "attendance_records" violates foreign key constraint/)]);
    } finally {
      await db.admin.query(`drop policy leak on public.attendance_records`);
    }
  });

  it('catches foreign keys that leave out the tenant key (a row at home naming another organisation\u2019s site, child and author)', async () => {
    // Without them, a note of Oak can name an Acorns child: RLS lets an Oak
    // operator write at Oak, and only the foreign keys tie the child to Oak.
    // The audit event the note's capture writes names its site too, under a
    // foreign key of its own, so that one goes as well.
    const fks = (await db.admin.query(
      `select conrelid::regclass as tbl, conname, pg_get_constraintdef(oid) as def from pg_constraint
       where contype = 'f' and (conrelid = 'public.notes'::regclass
         or (conrelid = 'public.audit_events'::regclass and confrelid = 'public.sites'::regclass))`,
    )).rows;
    for (const fk of fks) await db.admin.query(`alter table ${fk.tbl} drop constraint ${fk.conname}`);
    try {
      const violations = await probePersona(db, oakOperator(oakSession), tables.filter((t) => t.name === 'notes'));
      expect(violations).toEqual([expect.stringContaining('notes × operator, session scoped to oak-trust INSERT at home with foreign ids: accepted')]);
    } finally {
      for (const fk of fks) await db.admin.query(`alter table ${fk.tbl} add constraint ${fk.conname} ${fk.def}`);
    }
  });

  it('catches a policy that is always true', async () => {
    await db.admin.query(`create policy leak on public.wellbeing_checkins for select to app_user using (true)`);
    try {
      const persona = appPersona('teacher@oak-primary', 'staff:oak-primary:teacher:1', OAK, siteForeign(OAK, OAK_PRIMARY));
      const violations = await probePersona(db, persona, tables.filter((t) => t.name === 'wellbeing_checkins'));
      expect(violations.some((v) => v.includes('SELECT'))).toBe(true);
    } finally {
      await db.admin.query(`drop policy leak on public.wellbeing_checkins`);
    }
  });
});

describe('the decoy-id attack: another organisation\u2019s ids minted at home (issue 25)', () => {
  // Every Little Acorns row is copied into Oak with its ids (tests/support/
  // decoys.ts): Oak then has a site with the nursery's id, children with the
  // ids of its children, users with the ids of its staff and parents, holding
  // the same roles over the twins. Oak's personas, and the twins signed in at
  // Oak, must reach nothing of Little Acorns, in any table or command.
  const scope = { victim: ACORNS, home: OAK };
  let decoy: TestDatabase;
  let decoyTables: TenantTable[];
  let twins: Twin[];
  let minted: Record<string, number>;
  let personas: Persona[];

  beforeAll(async () => {
    decoy = await createTestDatabase();
    decoyTables = await tenantTablesFromCatalog(decoy.admin);
    await installWitness(decoy.admin, decoyTables);
    minted = await mintTwins(decoy.admin, decoyTables, scope);
    twins = await twinPersonas(decoy.admin, scope);
    personas = [...twins.map((t) => t.persona), ceo(), trustDsl(), oakOperator(await oakOperatorSession(decoy))];
  });
  afterAll(() => decoy?.drop());

  const probeAll = async (on: readonly TenantTable[]) =>
    (await Promise.all(personas.map((p) => probePersona(decoy, p, on, { twinned: true })))).flat();

  it('mints at home a twin of every row of the other organisation that names a secondary key', async () => {
    const keyed = decoyTables.filter((t) => t.keyColumns.length > 0);
    expect(keyed.map((t) => t.name)).toEqual(expect.arrayContaining(['children', 'notes', 'role_assignments', 'users', 'attendance_records']));
    for (const t of keyed) {
      const naming = t.keyColumns.map((c) => `v.${c} is not null`).join(' or ');
      const [n] = (await decoy.admin.query(
        `select count(*)::int as rows, count(*) filter (where exists (
           select 1 from ${t.qualified} h where h.org_id = $2 and h.${t.idColumn} = v.${t.idColumn}))::int as twinned
         from ${t.qualified} v where v.org_id = $1 and (${naming})`,
        [ACORNS, OAK],
      )).rows;
      expect({ table: t.name, twinned: n.twinned }).toEqual({ table: t.name, twinned: n.rows });
    }
    expect(minted.children).toBeGreaterThan(0);
    expect(twins.map((t) => t.persona.label)).toEqual(expect.arrayContaining([
      'twin of a guardian', 'twin of a teacher', 'twin of a site_admin', 'twin of a safeguarding_lead', 'twin of a org_admin (organisation-wide)',
    ]));
  });

  it('gives each twin at home exactly the reach its original has in the other organisation (the attack is not vacuous)', async () => {
    // The ids of a table's rows a user sees in an organisation, among the
    // ids both organisations hold; or the refusal.
    const keyed = decoyTables.filter((x) => x.keyColumns.length > 0);
    const shared = new Map<string, string[]>();
    for (const t of keyed) {
      const res = await decoy.admin.query(
        `select array(select ${t.idColumn}::text from ${t.qualified} where org_id = $1
                      intersect select ${t.idColumn}::text from ${t.qualified} where org_id = $2) as ids`,
        [ACORNS, OAK],
      );
      shared.set(t.name, res.rows[0].ids);
    }
    const seen = (userId: string, org: string, t: TenantTable) =>
      decoy.inTransaction('trustctl_test_app', { 'app.user_id': userId, 'app.user_org_id': org }, (c) =>
        c.query(`select array(select ${t.idColumn}::text from ${t.qualified} where org_id = $1 and ${t.idColumn}::text = any ($2) order by 1) as ids`,
          [org, shared.get(t.name)]),
      ).then((res) => res.rows[0].ids as string[], (error: { code?: string }) => `refused ${error.code}`);
    await Promise.all(twins.map(async (twin) => {
      let reach = 0;
      for (const t of keyed) {
        const original = await seen(twin.userId, ACORNS, t);
        const atHome = await seen(twin.userId, OAK, t);
        expect({ twin: twin.persona.label, table: t.name, atHome }).toEqual({ twin: twin.persona.label, table: t.name, atHome: original });
        if (Array.isArray(atHome)) reach += atHome.length;
      }
      expect({ twin: twin.persona.label, reaches: reach > 0 }).toEqual({ twin: twin.persona.label, reaches: true });
    }));
  });

  it('lets no persona of the home organisation reach the other through the twins, in any table or command', async () => {
    expect(await probeAll(decoyTables)).toEqual([]);
  });

  // A policy that matches site_id, child_id or a user id without org_id, for
  // each command in turn, on every table at once: the matrix must catch
  // every one. The mutants come from the catalog (pg_policies), so a new
  // table's policies are planted too.
  const caughtBy: Record<PolicyCommand, readonly string[]> = {
    SELECT: [' SELECT: '],
    INSERT: [' INSERT: ', ' INSERT ON CONFLICT: '],
    UPDATE: [' UPDATE: ', ' UPDATE into another organisation: '],
    DELETE: [' DELETE: '],
  };
  for (const command of ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const) {
    it(`catches every ${command} policy that matches a secondary key without its organisation`, async () => {
      const mutants = await orgDroppedPolicies(decoy.admin, command);
      expect(mutants.length).toBeGreaterThan(0);
      await setPolicies(decoy.admin, mutants, 'mutant');
      let violations: string[];
      try {
        violations = await probeAll(decoyTables.filter((t) => mutants.some((m) => m.table === t.name)));
      } finally {
        await setPolicies(decoy.admin, mutants, 'original');
      }
      for (const m of mutants) {
        const caught = violations.some((v) => v.startsWith(`${m.table} ×`) && caughtBy[command].some((label) => v.includes(label)));
        expect({ policy: m.policy, caught }).toEqual({ policy: m.policy, caught: true });
      }
    });
  }
});
