// Erasure, column by column, from the data map and the catalog (issue 25).
//
// What is personal: a column the data map gives an anonymising strategy
// (erasure.columns: null, redact, pseudonym, generalise_date). The tenant
// key, the id column and the subject references name the row and people by
// id, and erasure deletes or keeps the row; every other column must be
// listed as 'keep' (left as it is). A column in the catalog (public or
// archive) that the map does not name fails here, so nobody can add a
// personal column unmapped; and for a person's own record, which erasure
// anonymises rather than deletes, the columns that may keep their value are
// pinned below, so marking a personal column 'keep' fails too.
//
// Then a child, a child whose safeguarding records the law keeps, a
// guardian and a member of staff under a legal hold are erased through the
// built CLI, with a trace value planted in every personal column of their
// record first, and, for every table of the map that can name them:
// - their record's personal columns hold what the map's strategy writes, or
//   what they held where the record is kept to say whose kept records are;
// - no trace value is left in any row of any table (other than those kept
//   columns);
// - the rows deleted are gone, and the rows left about them are exactly the
//   kept rows the certificate counts, with the reason it gives.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataMap, refersTo, type SubjectReference, type TableMap } from '../../src/datamap/index.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';

/**
 * The tables whose rows erasure anonymises (a person's own record): the
 * columns that keep their value, and why. Every other column of these
 * tables is personal and must be anonymised; compared with the data map.
 */
const UNCHANGED_WHEN_ANONYMISED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  children: {
    org_id: 'tenant key',
    site_id: 'tenant key',
    id: 'the id by which kept records, the audit trail and the erasure ledger name the child',
    enrolled_on: 'the school place’s dates, kept for the register’s counts',
    left_on: 'the pupil record’s retention clock',
    created_at: 'when the record was made',
  },
  users: {
    org_id: 'tenant key',
    site_id: 'tenant key',
    id: 'the id by which kept records, role grants and the erasure ledger name the account',
    kind: 'staff, guardian or support: what the account was, not who',
    created_at: 'when the account was made',
  },
};

/** What a person's own record keeps while records about them are kept (docs/erasure.md, identifies_kept_records). */
const IDENTIFY: Readonly<Record<string, readonly string[]>> = {
  children: ['full_name', 'date_of_birth', 'upn'],
  users: ['email', 'full_name'],
};

/** Columns every archive table adds to its public table's (migration 0013). */
const ARCHIVE_COLUMNS = ['archived_at', 'run_id'];

const REDACTED = '[redacted]';
const HELD_CHILD = demoId('child:elm-academy:8');
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

type SubjectType = 'child' | 'guardian' | 'staff';
type Row = Record<string, unknown>;

interface CatalogColumn {
  readonly column: string;
  readonly type: string;
}

/** The names the map gives a table's columns: keys, references, and erasure.columns. */
function namedColumns(m: TableMap): { keys: Set<string>; references: Set<string>; listed: Set<string> } {
  return {
    keys: new Set([m.idColumn, ...(m.tenantKey ? [m.tenantKey.org, ...(m.tenantKey.site ? [m.tenantKey.site] : [])] : [])]),
    references: new Set(m.subjects.flatMap((s) => [s.column, ...(s.orgColumn ? [s.orgColumn] : [])])),
    listed: new Set(Object.keys(m.erasure.columns)),
  };
}

/** A reference's match on row r (as to_jsonb gives it) for the person. */
function names(r: Row, s: SubjectReference, id: string): boolean {
  const v = r[s.column];
  const hit = s.array ? Array.isArray(v) && v.includes(id) : v === id;
  return hit && (!s.orgColumn || r[s.orgColumn] === OAK);
}

describe('the data map classifies every column', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('names every column of every table in public and archive, once, and pins what an anonymised record keeps', async () => {
    const catalog = await catalogOf(db);
    const problems: string[] = [];
    const publicTables = [...catalog.keys()].filter((t) => !t.startsWith('archive.'));
    for (const t of publicTables) if (!dataMap.some((m) => m.table === t)) problems.push(`${t}: a table the data map does not have`);
    for (const m of dataMap) {
      const live = catalog.get(m.table);
      if (!live) {
        problems.push(`${m.table}: in the data map, not in the database`);
        continue;
      }
      const { keys, references, listed } = namedColumns(m);
      const liveNames = new Set(live.map((c) => c.column));
      for (const c of liveNames) {
        if (!keys.has(c) && !references.has(c) && !listed.has(c)) problems.push(`${m.table}.${c}: not classified by the data map`);
      }
      for (const c of [...keys, ...references, ...listed]) if (!liveNames.has(c)) problems.push(`${m.table}.${c}: named by the data map, not in the database`);
      for (const c of listed) if (keys.has(c) || references.has(c)) problems.push(`${m.table}.${c}: a key or reference with an erasure strategy too`);
    }
    for (const t of [...catalog.keys()].filter((x) => x.startsWith('archive.'))) {
      const source = t.slice('archive.'.length);
      if (!dataMap.some((m) => m.table === source)) problems.push(`${t}: archives a table the data map does not have`);
      const expected = [...(catalog.get(source) ?? []).map((c) => c.column), ...ARCHIVE_COLUMNS].sort();
      const actual = catalog.get(t)!.map((c) => c.column).sort();
      if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`${t}: columns ${actual.join(', ')} are not ${source}'s and ${ARCHIVE_COLUMNS.join(', ')}`);
    }
    expect(problems).toEqual([]);

    // The records erasure anonymises: exactly the pinned tables, keeping exactly the pinned columns.
    const anonymised = dataMap.filter((m) => m.erasure.row === 'anonymise');
    expect(anonymised.map((m) => m.table).sort()).toEqual(Object.keys(UNCHANGED_WHEN_ANONYMISED).sort());
    for (const m of anonymised) {
      const { keys, references } = namedColumns(m);
      const kept = Object.entries(m.erasure.columns).filter(([, how]) => how === 'keep').map(([c]) => c);
      expect([...new Set([...keys, ...references, ...kept])].sort(), m.table).toEqual(Object.keys(UNCHANGED_WHEN_ANONYMISED[m.table]!).sort());
      expect([...(m.erasure.identify ?? [])].sort(), m.table).toEqual([...IDENTIFY[m.table]!].sort());
    }
  });
});

/** Every base table's columns in public and archive (`notes`, `archive.notes`), from information_schema. */
async function catalogOf(db: TestDatabase): Promise<Map<string, CatalogColumn[]>> {
  const r = await db.admin.query<{ t: string; column: string; type: string }>(`
    select case when c.table_schema = 'public' then c.table_name::text else 'archive.' || c.table_name end as t,
           c.column_name as column, c.data_type as type
    from information_schema.columns c join information_schema.tables b using (table_schema, table_name)
    where c.table_schema in ('public', 'archive') and b.table_type = 'BASE TABLE'
    order by 1, c.ordinal_position`);
  const out = new Map<string, CatalogColumn[]>();
  for (const row of r.rows) out.set(row.t, [...(out.get(row.t) ?? []), { column: row.column, type: row.type }]);
  return out;
}

interface TableAccount {
  table: string;
  deleted: number;
  anonymised: number;
  already_anonymised: number;
  kept: Array<{ reason: string; rows: number }>;
}

describe('dsar erase, column by column', () => {
  let db: TestDatabase;
  let opUrl: string;
  let work: string;
  let mediaDir: string;
  let catalog: Map<string, CatalogColumn[]>;

  beforeAll(async () => {
    db = await createTestDatabase();
    opUrl = db.url('trustctl_test_op');
    work = await mkdtemp(join(tmpdir(), 'trustctl-erase-columns-'));
    mediaDir = join(work, 'media');
    await cp(inject('mediaDir'), mediaDir, { recursive: true });
    catalog = await catalogOf(db);
  });
  afterAll(async () => {
    await db?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The map's tables (and their archives) that can name a subject of this type. */
  function unitsFor(type: SubjectType): Array<{ name: string; map: TableMap; refs: SubjectReference[] }> {
    return dataMap.flatMap((map) => {
      const refs = map.subjects.filter((s) => refersTo(s.kind, type));
      if (!map.tenantKey || refs.length === 0) return [];
      return [map.table, `archive.${map.table}`].filter((n) => catalog.has(n)).map((name) => ({ name, map, refs }));
    });
  }

  /**
   * Per table, the rows that name the person (by key), with what an erasure
   * must do with each: whether it is theirs (IS / ABOUT) or made by them, and
   * whether a legal hold or the table's statutory rule covers it.
   */
  async function rowsAbout(type: SubjectType, id: string) {
    const out = new Map<string, Map<string, { row: Row; own: boolean; held: boolean; statutory: boolean }>>();
    for (const u of unitsFor(type)) {
      const [schema, table] = u.name.includes('.') ? u.name.split('.') as [string, string] : ['public', u.name];
      const match = u.refs.map((s) => {
        const hit = s.array ? `$2::uuid = any (t.${q(s.column)})` : `t.${q(s.column)} = $2::uuid`;
        return s.orgColumn ? `(${hit} and t.${q(s.orgColumn)} = $1::uuid)` : hit;
      });
      const scalar = u.map.subjects.filter((s) => !s.array).map((s) => `t.${q(s.column)}`);
      const category = u.map.retention?.category ?? null;
      const rule = u.map.erasure.statutory;
      if (rule && rule.clock !== 'child_25th_birthday') throw new Error(`this test does not know the statutory clock ${rule.clock}`);
      const r = await db.admin.query<{ row: Row; held: boolean; statutory: boolean }>(
        `select to_jsonb(t) as row,
                exists (select 1 from public.legal_holds h where h.org_id = t.org_id and h.released_at is null
                          and (h.site_id is null or h.site_id = t.site_id)
                          and (h.category is null or h.category = $3)
                          and (h.subject_id is null ${scalar.length > 0 ? `or h.subject_id in (${scalar.join(', ')})` : ''})) as held,
                ${rule ? `coalesce((select c.date_of_birth + interval '25 years' from public.children c
                                     where c.org_id = t.org_id and c.id = t.child_id) > now(), true)` : 'false'} as statutory
         from ${q(schema)}.${q(table)} t where t.org_id = $1 and (${match.join(' or ')})`,
        [OAK, id, category],
      );
      const own = u.refs.filter((s) => s.relation !== 'by');
      out.set(u.name, new Map(r.rows.map((x) => [String(x.row[u.map.idColumn]), {
        row: x.row, own: own.some((s) => names(x.row, s, id)), held: x.held, statutory: x.statutory,
      }])));
    }
    return out;
  }

  const ownTable = (type: SubjectType) => (type === 'child' ? 'children' : 'users');

  /** Puts a value only this test knows in every personal column of the person's record; returns the text ones. */
  async function plantTraces(type: SubjectType, id: string): Promise<string> {
    const table = ownTable(type);
    const token = `trace${randomBytes(6).toString('hex')}`;
    for (const { column, type: dataType } of catalog.get(table)!) {
      if (column in UNCHANGED_WHEN_ANONYMISED[table]!) continue;
      if (dataType === 'text' || dataType === 'character varying') {
        await db.admin.query(`update ${q(table)} set ${q(column)} = $3 where org_id = $1 and id = $2`, [OAK, id, `${token}-${column}`]);
      } else if (dataType === 'date') {
        // A date that is not the anonymised form (31 December); an existing one stays, as a statutory clock may read it.
        await db.admin.query(`update ${q(table)} set ${q(column)} = coalesce(${q(column)}, '1984-03-07') where org_id = $1 and id = $2`, [OAK, id]);
      } else {
        throw new Error(`${table}.${column}: this test cannot plant a ${dataType}; teach plantTraces`);
      }
    }
    return token;
  }

  /** Every table (public and archive) and row key whose text holds the token. */
  async function rowsHolding(token: string): Promise<string[]> {
    const out: string[] = [];
    for (const t of catalog.keys()) {
      const [schema, table] = t.includes('.') ? t.split('.') as [string, string] : ['public', t];
      const r = await db.admin.query<{ j: Row }>(`select to_jsonb(t) as j from ${q(schema)}.${q(table)} t where strpos(to_jsonb(t)::text, $1) > 0`, [token]);
      for (const x of r.rows) out.push(`${t} ${String(x.j.id ?? JSON.stringify(x.j))}`);
    }
    return out;
  }

  /** What the map's strategy writes over a value. */
  async function anonymisedValue(how: string, value: unknown, id: string): Promise<unknown> {
    if (value === null) return null;
    if (how === 'null') return null;
    if (how === 'redact') return REDACTED;
    if (how === 'generalise_date') return `${String(value).slice(0, 4)}-12-31`;
    if (how === 'pseudonym') {
      // The keyed pseudonym of docs/erasure.md, computed here from the organisation's key.
      const r = await db.admin.query<{ p: string }>(
        `select 'erased-' || left(encode(sha256(sha256(k.key || uuid_send($2::uuid)) || k.key), 'hex'), 24) as p
         from trustctl_private.pseudonym_keys k where k.org_id = $1`, [OAK, id]);
      return r.rows[0]!.p;
    }
    throw new Error(`unknown strategy ${how}`);
  }

  async function openErasureRequest(subject: string, ref: string): Promise<void> {
    const r = await runCli(['--database-url', opUrl, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', subject,
      '--request', ref, '--received', daysAgo(1), '--kind', 'erasure']);
    expect(r.code, r.stderr).toBe(0);
  }

  /** Erases the person through the CLI and checks every table and column of the map against the certificate. */
  async function eraseAndCheck(type: SubjectType, id: string, ref: string): Promise<{ cert: { tables: TableAccount[] }; problems: string[] }> {
    await openErasureRequest(id, ref);
    const token = await plantTraces(type, id);
    const before = await rowsAbout(type, id);
    const r = await runCli(['--database-url', opUrl, '--json', 'dsar', 'erase', '--org', 'oak-trust', '--subject', id, '--request', ref,
      '--out', join(work, 'certificates'), '--media-dir', mediaDir, '--yes']);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(r.code).toBe(0);
    const cert = JSON.parse(await readFile(JSON.parse(r.stdout).certificate.json, 'utf8')) as { tables: TableAccount[] };
    const after = await rowsAbout(type, id);
    const problems: string[] = [];
    const accounts = new Map(cert.tables.map((t) => [t.table, t]));
    const named = [...before].filter(([, rows]) => rows.size > 0).map(([t]) => t).sort();
    if ([...accounts.keys()].sort().join() !== named.join()) {
      problems.push(`the certificate accounts for ${[...accounts.keys()].sort().join(', ')}; rows named the person in ${named.join(', ')}`);
    }

    // Kept anywhere for a hold or by statute: the person's own record then keeps what identifies them.
    const keptElsewhere = unitsFor(type).some((u) => u.map.erasure.row === 'delete' &&
      [...before.get(u.name)!.values()].some((x) => x.own && (x.held || x.statutory)));
    for (const u of unitsFor(type)) {
      const b = before.get(u.name)!;
      const a = after.get(u.name)!;
      if (b.size === 0) continue;
      // A table missing from the certificate is checked as if it said nothing was done there.
      const account = accounts.get(u.name) ?? { table: u.name, deleted: 0, anonymised: 0, already_anonymised: 0, kept: [] };
      const kept = (reason: string) => account.kept.filter((k) => k.reason === reason).reduce((n, k) => n + k.rows, 0);
      const reasons = account.kept.map((k) => k.reason).sort();
      const gone = [...b.keys()].filter((k) => !a.has(k));
      // Deleted rows are gone from the table and its archive, whoever they would name now.
      if (gone.length > 0) {
        const [schema, table] = u.name.includes('.') ? ['archive', u.name.slice(8)] : ['public', u.name];
        const left = await db.admin.query(`select to_jsonb(t) ->> $3 as k from ${q(schema)}.${q(table)} t where t.org_id = $1 and (to_jsonb(t) ->> $3) = any ($2)`,
          [OAK, gone, u.map.idColumn]);
        if (left.rows.length > 0) problems.push(`${u.name}: rows counted gone are still there: ${left.rows.map((x) => x.k).join(', ')}`);
      }
      if (u.map.erasure.row === 'keep') {
        if (gone.length > 0) problems.push(`${u.name}: kept for record-keeping, but ${gone.length} rows went`);
        if (account.deleted + account.anonymised !== 0 || kept('record_keeping') !== b.size || reasons.some((x) => x !== 'record_keeping')) {
          problems.push(`${u.name}: certificate ${JSON.stringify(account)} for ${b.size} record-keeping rows`);
        }
        continue;
      }
      if (u.map.erasure.row === 'delete') {
        const expected = new Map<string, string>();
        for (const [k, x] of b) {
          const reason = !x.own ? 'made_by_subject' : x.held ? 'legal_hold' : x.statutory ? 'statutory' : null;
          if (reason) expected.set(k, reason);
        }
        if ([...a.keys()].sort().join() !== [...expected.keys()].sort().join()) {
          problems.push(`${u.name}: left ${[...a.keys()].sort().join(', ')}, expected the kept ${[...expected.keys()].sort().join(', ')}`);
        }
        for (const [k, x] of a) if (JSON.stringify(x.row) !== JSON.stringify(b.get(k)?.row)) problems.push(`${u.name} ${k}: a kept row changed`);
        if (account.deleted !== b.size - expected.size) problems.push(`${u.name}: certificate says ${account.deleted} deleted, ${b.size - expected.size} went`);
        for (const reason of ['legal_hold', 'statutory', 'made_by_subject']) {
          const n = [...expected.values()].filter((x) => x === reason).length;
          if (kept(reason) !== n) problems.push(`${u.name}: certificate keeps ${kept(reason)} for ${reason}, ${n} were`);
        }
        if (reasons.some((x) => !['legal_hold', 'statutory', 'made_by_subject'].includes(x))) problems.push(`${u.name}: kept for ${reasons.join(', ')}`);
        continue;
      }
      // The person's own record: anonymised, column by column.
      if (b.size !== 1 || a.size !== 1) {
        problems.push(`${u.name}: ${b.size} records before, ${a.size} after; expected one, anonymised`);
        continue;
      }
      const was = [...b.values()][0]!.row;
      const now = [...a.values()][0]!.row;
      const identifies = keptElsewhere ? new Set(IDENTIFY[u.map.table]) : new Set<string>();
      if (account.anonymised + account.already_anonymised !== 1 || kept('identifies_kept_records') !== (keptElsewhere ? 1 : 0) || account.deleted !== 0) {
        problems.push(`${u.name}: certificate ${JSON.stringify(account)}; kept for kept records: ${keptElsewhere}`);
      }
      for (const { column } of catalog.get(u.name)!) {
        const how = u.map.erasure.columns[column];
        if (column in UNCHANGED_WHEN_ANONYMISED[u.map.table]! || identifies.has(column)) {
          if (JSON.stringify(now[column]) !== JSON.stringify(was[column])) problems.push(`${u.name}.${column}: changed, but it is kept`);
          continue;
        }
        if (how === undefined || how === 'keep') {
          problems.push(`${u.name}.${column}: personal, but the data map gives it no anonymising strategy (${how ?? 'none'})`);
          if (now[column] !== null && JSON.stringify(now[column]) === JSON.stringify(was[column])) {
            problems.push(`${u.name}.${column}: still ${JSON.stringify(now[column])} after erasure`);
          }
          continue;
        }
        const expected = await anonymisedValue(how, was[column], id);
        if (was[column] === null || JSON.stringify(was[column]) === JSON.stringify(expected)) {
          problems.push(`${u.name}.${column}: held nothing to erase before (${JSON.stringify(was[column])}): the check would prove nothing`);
        }
        if (JSON.stringify(now[column]) !== JSON.stringify(expected)) {
          problems.push(`${u.name}.${column}: ${JSON.stringify(now[column])} after erasure, not ${JSON.stringify(expected)} (${how})`);
        }
      }
    }
    // No trace planted in their record is left anywhere, but in the identifying columns a kept record keeps.
    const traces = await rowsHolding(token);
    const allowed = keptElsewhere && IDENTIFY[ownTable(type)]!.some((c) => String(before.get(ownTable(type))?.get(id)?.row[c] ?? '').startsWith(token));
    const expectedTraces = allowed ? [`${ownTable(type)} ${id}`] : [];
    if (traces.join() !== expectedTraces.join()) {
      problems.push(`values planted in the person’s record are in ${traces.join(', ') || 'no row'}; expected ${expectedTraces.join(', ') || 'none'}`);
    }
    return { cert, problems };
  }

  it('erases a child: every personal column of their record anonymised as the map says, the rest of their rows gone', async () => {
    const child = (await db.admin.query(
      `select c.id from children c where c.org_id = $1 and c.site_id = $2 and c.id <> $3
         and not exists (select 1 from safeguarding_concerns s where s.org_id = c.org_id and s.child_id = c.id)
         and exists (select 1 from notes n where n.org_id = c.org_id and n.child_id = c.id)
         and exists (select 1 from media_files m where m.org_id = c.org_id and m.child_id = c.id)
       order by c.id limit 1`, [OAK, OAK_PRIMARY, HELD_CHILD])).rows[0].id as string;
    // Some of their notes were archived by a sweep: the archive is a table of the map too.
    await db.admin.query(
      `with moved as (delete from notes t where t.org_id = $1 and t.id in
         (select x.id from notes x where x.org_id = $1 and x.child_id = $2 order by x.id limit 2) returning t.*)
       insert into archive.notes select moved.*, now(), gen_random_uuid() from moved`, [OAK, child]);
    const { cert, problems } = await eraseAndCheck('child', child, 'EC-CHILD');
    expect(problems).toEqual([]);
    const tables = cert.tables.map((t) => t.table);
    expect(tables).toEqual(expect.arrayContaining(['children', 'notes', 'archive.notes', 'media_files', 'guardianships', 'attendance_records']));
    expect(cert.tables.find((t) => t.table === 'children')).toMatchObject({ anonymised: 1, kept: [] });
  });

  it('erases a child whose safeguarding records the law keeps: exactly those rows stay, and what identifies the child', async () => {
    const child = (await db.admin.query(
      `select c.id from children c where c.org_id = $1 and c.id <> $2 and c.date_of_birth + interval '25 years' > now()
         and exists (select 1 from safeguarding_concerns s where s.org_id = c.org_id and s.child_id = c.id)
       order by c.id limit 1`, [OAK, HELD_CHILD])).rows[0].id as string;
    const { cert, problems } = await eraseAndCheck('child', child, 'EC-STATUTORY');
    expect(problems).toEqual([]);
    const kept = Object.fromEntries(cert.tables.flatMap((t) => t.kept.map((k) => [`${t.table}/${k.reason}`, k.rows])));
    expect(kept['safeguarding_concerns/statutory']).toBeGreaterThan(0);
    expect(kept['children/identifies_kept_records']).toBe(1);
  });

  it('erases a guardian: every personal column of their account anonymised, date of birth and phone included', async () => {
    const guardian = (await db.admin.query(
      `select g.guardian_id from guardianships g where g.org_id = $1 and g.site_id = $2 order by g.guardian_id desc limit 1`,
      [OAK, OAK_PRIMARY])).rows[0].guardian_id as string;
    const { cert, problems } = await eraseAndCheck('guardian', guardian, 'EC-GUARDIAN');
    expect(problems).toEqual([]);
    expect(cert.tables.find((t) => t.table === 'users')).toMatchObject({ anonymised: 1, kept: [] });
    expect(cert.tables.find((t) => t.table === 'guardianships')!.deleted).toBeGreaterThan(0);
  });

  it('erases a member of staff under a legal hold on their rota: the held rows and what they made about others stay, the rest goes', async () => {
    const staff = (await db.admin.query(
      `select u.id from users u where u.org_id = $1 and u.site_id = $2 and u.kind = 'staff'
         and exists (select 1 from rota_shifts r where r.org_id = u.org_id and r.staff_id = u.id)
         and exists (select 1 from staff_activity a where a.org_id = u.org_id and a.staff_id = u.id)
         and exists (select 1 from group_memberships m where m.org_id = u.org_id and m.staff_id = u.id)
         and exists (select 1 from attendance_records a where a.org_id = u.org_id and a.recorded_by = u.id)
       order by u.id limit 1`, [OAK, OAK_PRIMARY])).rows[0].id as string;
    await db.admin.query(`insert into legal_holds (org_id, site_id, subject_id, category, reason)
      values ($1, $2, $3, 'staff_rota', 'Employment tribunal: keep the rotas')`, [OAK, OAK_PRIMARY, staff]);
    const { cert, problems } = await eraseAndCheck('staff', staff, 'EC-STAFF');
    expect(problems).toEqual([]);
    const kept = Object.fromEntries(cert.tables.flatMap((t) => t.kept.map((k) => [`${t.table}/${k.reason}`, k.rows])));
    expect(kept['rota_shifts/legal_hold']).toBeGreaterThan(0);
    expect(kept['attendance_records/made_by_subject']).toBeGreaterThan(0);
    expect(kept['users/identifies_kept_records']).toBe(1);
    expect(cert.tables.find((t) => t.table === 'staff_activity')!.deleted).toBeGreaterThan(0);
  });
});
