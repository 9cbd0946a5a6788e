// Tampering with any single field of the sealed trail is reported (issue 25).
// For every column of audit_events and audit_chain, read from the catalog so
// that a new column is covered the day it is added, and every field of an
// exported checkpoint file, one sealed value is changed the way a superuser
// would (UPDATE with triggers off), to something that differs but is still
// valid for its type; then the real `trustctl audit verify` and `audit
// export` must report it, and the row is put back exactly. A column or field
// deliberately left out of the hash or the signature is listed below with the
// reason, and the test fails if tampering with it starts to matter.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { OAK, OAK_PRIMARY } from '../support/demo-ids.js';
import { waitFor } from '../support/wait.js';

/** Events kept per organisation: enough for a chain, few enough for some hundred CLI runs. */
const KEEP_EVENTS = 200;
/** Each test runs verify and export dozens of times: the audit_events one takes some 3 minutes with other files beside it. */
const SLOW = 600_000;

interface CatalogColumn {
  readonly name: string;
  readonly udt: string;
  readonly nullable: boolean;
  readonly identityAlways: boolean;
  /** In the primary key or a unique constraint: what ties an event to its chain entry. */
  readonly key: boolean;
  readonly definition: string;
}

/**
 * One single-field change: `expr` is SQL over the column (written `$col`);
 * `on` names the row it is applied to.
 */
interface FieldTamper {
  readonly variant: string;
  readonly on: Target;
  readonly expr: string;
}

/**
 * The sealed rows tampered with: `full` (every column set) and `sparse`
 * (every optional one empty) in the middle of oak-trust's chain, and `head`,
 * its newest entry, which has no entry after it to expose a gap.
 */
type Target = 'full' | 'sparse' | 'head';

/** Values that differ from the stored one but are valid for the column's type (and its CHECK, where it has one). */
function tampersFor(table: string, c: CatalogColumn): FieldTamper[] {
  const change = (variant: string, expr: string): FieldTamper => ({ variant, on: 'full', expr });
  const fill = (expr: string): FieldTamper => ({ variant: 'absent -> value', on: 'sparse', expr });
  const nullable = (value: string): FieldTamper[] => (c.nullable ? [change('value -> null', 'null'), fill(value)] : []);
  // CHECK (actor_type in ('user', 'operator', 'system')): another allowed value.
  if (table === 'audit_events' && c.name === 'actor_type') {
    return [change('another allowed value', `case $col when 'user' then 'operator' else 'user' end`)];
  }
  switch (c.udt) {
    case 'uuid':
      return [
        change('one character', `overlay($col::text placing (case when right($col::text, 1) = '0' then '1' else '0' end) from 36)::uuid`),
        ...nullable(`'00000000-0000-4000-8000-0000000000f1'::uuid`),
      ];
    case 'text':
      return [
        change('one character', `left($col, -1) || case when right($col, 1) = 'x' then 'y' else 'x' end`),
        // The empty string is not NULL: the canonical form must keep them apart.
        ...nullable(`''`),
      ];
    case 'int8':
      // An identity column can only be updated to DEFAULT: the next value of its sequence.
      return [change('another number', c.identityAlways ? 'default' : '$col + 1000000'), ...nullable('1')];
    case 'xid8':
      return [change('next transaction', `(($col::text)::numeric + 1)::text::xid8`)];
    case 'timestamptz':
      return [change('one microsecond later', `$col + interval '1 microsecond'`), ...nullable('now()')];
    case 'inet':
      return [change('next address', '$col + 1'), ...nullable(`'192.0.2.99'::inet`)];
    case 'bytea':
      return [change('first byte', 'set_byte($col, 0, (get_byte($col, 0) + 1) % 256)')];
    case '_uuid':
      return [
        change('element added', `$col || '00000000-0000-4000-8000-0000000000a1'::uuid`),
        change('element removed', 'trim_array($col, 1)'),
        change('element replaced', `'00000000-0000-4000-8000-0000000000a2'::uuid || $col[2:]`),
        { variant: 'element added to an empty array', on: 'sparse', expr: `$col || '00000000-0000-4000-8000-0000000000a3'::uuid` },
      ];
    case 'jsonb':
      return [
        // The first string ending in a letter (a key, here) with that letter changed: still valid JSON.
        change('one character', `regexp_replace($col::text, '[a-wyz]"', 'x"')::jsonb`),
        // 16 and 16.0 are equal as numbers but different jsonb values: the canonical form keeps the text.
        change('same number, other scale', `regexp_replace($col::text, '(\\d+)([,}\\]])', '\\1.0\\2')::jsonb`),
        change('key added', `$col || '{"tampered": true}'`),
        { variant: 'key added to an empty object', on: 'sparse', expr: `$col || '{"tampered": true}'` },
      ];
    default:
      throw new Error(`no tamper for ${table}.${c.name} of type ${c.udt}: add one to tampersFor`);
  }
}

/**
 * Columns deliberately outside the hash. Each is pinned to its definition
 * (type, nullability, default): if that changes, or if tampering with it
 * starts to change what verify or export say, its exclusion needs another look.
 */
const NOT_HASHED: Readonly<Record<string, Readonly<Record<string, { readonly definition: string; readonly reason: string }>>>> = {
  audit_events: {},
  audit_chain: {
    sealed_at: {
      definition: 'timestamptz not null default statement_timestamp()',
      reason: 'when the seal ran, not what happened: the chain is ordered by chain_seq and every entry proves its event whenever it was sealed',
    },
    operator_session_id: {
      definition: 'uuid null',
      reason:
        'which session sealed the entry, for attributing a seal that wrote wrong hashes (app.audit_seal_append sets it from the operator’s bound session); ' +
        'an entry that verifies is right whoever sealed it, and a superuser who writes an entry can name any session anyway',
    },
  },
};

/**
 * Fields of an exported checkpoint that its signature (src/audit/keys.ts
 * checkpointMessage: org_id, chain_seq, head_hash, horizon) does not cover.
 * Verify must not rely on them.
 */
const UNSIGNED_CHECKPOINT_FIELDS: Readonly<Record<string, string>> = {
  org: 'the slug, for people: verify finds the organisation by the signed org_id',
  id: 'the database row id, for people: verify matches checkpoints by the signed chain_seq and head_hash',
  rows: 'how many events that seal run added, for people: verify counts nothing from it',
  created_at: 'when the checkpoint was written, for people: the signed horizon says what it covers',
};

let db: TestDatabase;
let opUrl: string;
let work: string;
let pub: string;
let key: string;
/** Checkpoints exported after the fixture was sealed, kept "outside the database". */
let checkpointsFile: string;
/** The sealed events of oak-trust tampered with (see Target) and where they are in its chain. */
const rows: Record<Target, { id: string; seq: string }> = { full: { id: '', seq: '' }, sparse: { id: '', seq: '' }, head: { id: '', seq: '' } };

const cli = (args: string[]) => runCli(['--database-url', opUrl, ...args]);

async function verify(args: string[]) {
  const r = await cli(['audit', 'verify', ...args]);
  return { code: r.code, stderr: r.stderr, invalid: r.stdout.split('\n').filter((l) => l.startsWith('INVALID: ')) };
}

async function exportTrail(name: string) {
  const out = join(work, name);
  const r = await cli(['audit', 'export', '--org', 'oak-trust', '--out', out]);
  const manifest = JSON.parse(await readFile(`${out}.manifest.json`, 'utf8'));
  return { code: r.code, problems: manifest.verification.problems as string[] };
}

/** Runs fn as the superuser with triggers and foreign keys off, committing: what an attacker with database access does. */
async function asSuperuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return db.withClient('admin', async (c) => {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    const out = await fn(c);
    await c.query('commit');
    return out;
  });
}

async function catalogColumns(table: string): Promise<CatalogColumn[]> {
  const res = await db.admin.query<CatalogColumn>(
    `select c.column_name as name, c.udt_name as udt, c.is_nullable = 'YES' as nullable,
            coalesce(c.identity_generation = 'ALWAYS', false) as "identityAlways",
            exists (select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
                     where i.indrelid = format('public.%I', c.table_name)::regclass and (i.indisprimary or i.indisunique)
                       and a.attname = c.column_name) as key,
            concat_ws(' ', case c.udt_name when 'int8' then 'bigint' else c.udt_name end,
                      case when c.is_nullable = 'YES' then 'null' else 'not null' end,
                      'default ' || c.column_default) as definition
     from information_schema.columns c
     where c.table_schema = 'public' and c.table_name = $1 order by c.ordinal_position`,
    [table],
  );
  return res.rows;
}

/** The row a tamper applies to, as `where` SQL with its parameters. */
function rowOf(table: string, on: Target): { where: string; params: unknown[] } {
  return table === 'audit_events'
    ? { where: 'org_id = $1 and id = $2', params: [OAK, rows[on].id] }
    : { where: 'org_id = $1 and chain_seq = $2', params: [OAK, rows[on].seq] };
}

/**
 * Changes one field of one row, runs fn, and puts the row back exactly
 * (from its own text form, so microseconds and jsonb text survive).
 */
async function tampered<T>(table: string, column: string, t: FieldTamper, fn: () => Promise<T>): Promise<T> {
  const { where, params } = rowOf(table, t.on);
  const before = await asSuperuser(async (c) => {
    const t0 = c.escapeIdentifier(table);
    const original = (await c.query(`select t::text as text from ${t0} t where ${where}`, params)).rows;
    expect(original.length).toBe(1);
    const expr = t.expr.replaceAll('$col', c.escapeIdentifier(column));
    const changed = await c.query(`update ${t0} t set ${c.escapeIdentifier(column)} = ${expr} where ${where} returning ctid::text as ctid, t::text as text`, params);
    expect(changed.rows.length).toBe(1);
    return { text: original[0].text as string, ctid: changed.rows[0].ctid as string, now: changed.rows[0].text as string };
  });
  // A tamper that changed nothing would prove nothing (a new column: give the fixture's rows a value for it).
  expect(before.now, `${table}.${column} (${t.variant}, ${t.on} row) changed nothing`).not.toBe(before.text);
  try {
    return await fn();
  } finally {
    await asSuperuser(async (c) => {
      const t0 = c.escapeIdentifier(table);
      await c.query(`delete from ${t0} where ctid = $1::tid`, [before.ctid]);
      await c.query(`insert into ${t0} overriding system value select ($1::text::${t0}).*`, [before.text]);
      const back = (await c.query(`select count(*)::int as n from ${t0} t where ${where} and t::text = $3`, [...params, before.text])).rows[0].n;
      expect(back, `${table}.${column} put back`).toBe(1);
    });
  }
}

/** Seals (signed) until event `id` of oak-trust is in the chain: other test files' open transactions can hold the horizon back. */
async function sealUntilSealed(id: string): Promise<string> {
  return waitFor(`event ${id} to be sealed`, async () => {
    const r = await cli(['audit', 'seal', '--sign-key', key]);
    expect(r.stderr).not.toMatch(/trustctl:/);
    expect(r.code).toBe(0);
    const res = await db.admin.query(`select chain_seq::text as seq from audit_chain where org_id = $1 and event_id = $2`, [OAK, id]);
    return res.rows[0]?.seq as string | undefined;
  }, { intervalMs: 500 });
}

beforeAll(async () => {
  db = await createTestDatabase();
  opUrl = db.url('trustctl_test_op');
  work = await mkdtemp(join(tmpdir(), 'trustctl-tamper-'));
  expect((await cli(['audit', 'keygen', '--out', join(work, 'audit')])).code).toBe(0);
  key = join(work, 'audit.key');
  pub = join(work, 'audit.pub');
  // Nothing is sealed yet, so a shorter trail is only a smaller fixture.
  await asSuperuser((c) => c.query(
    `delete from audit_events where (org_id, id) in (
       select org_id, id from (select org_id, id, row_number() over (partition by org_id order by id desc) as n from audit_events) r
       where n > $1)`,
    [KEEP_EVENTS],
  ));
  const session = await db.withClient('trustctl_test_op', async (c) =>
    (await c.query(`select session_id from app.begin_operator_session('tamper fixture', 'TCK-25', array['oak-trust'], false, 'vitest', 'ci', 'ci')`)).rows[0].session_id as string);
  const insert = (values: string, params: unknown[] = [OAK]) => db.admin.query(
    `insert into audit_events (org_id, site_id, actor_type, actor_id, operator_session_id, action, target_type, target_id,
       subject_ids, outcome, reason, ticket, source_ip, request_id, context) values ${values} returning id::text as id`,
    params,
  );
  rows.full.id = (await insert(`($1, $2, 'operator', 'op-ana', $3, 'dsar.export', 'children', 'child-17',
    array['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003']::uuid[],
    'success', 'parent asked', 'TCK-25', '192.0.2.10', 'req-42', '{"changed": ["first_name"], "minutes": 16}')`, [OAK, OAK_PRIMARY, session])).rows[0].id;
  rows.sparse.id = (await insert(`($1, null, 'system', null, null, 'test.sparse', null, null, '{}', 'success', null, null, null, null, '{}')`)).rows[0].id;
  // Every column set (one added to audit_events needs a value here, or its change could not be seen).
  const unset = (await db.admin.query(`select array_agg(j.key order by j.key) as keys from audit_events e, json_each(to_json(e)) j
    where e.org_id = $1 and e.id = $2 and json_typeof(j.value) = 'null'`, [OAK, rows.full.id])).rows[0].keys;
  expect(unset, 'columns the full row leaves empty').toBeNull();
  // After them, so that neither is the head of the chain.
  const last = (await insert(`($1, null, 'system', null, null, 'test.after', null, null, '{}', 'success', null, null, null, null, '{}')`)).rows[0].id;
  await sealUntilSealed(last);
  for (const r of [rows.full, rows.sparse]) {
    r.seq = (await db.admin.query(`select chain_seq::text as seq from audit_chain where org_id = $1 and event_id = $2`, [OAK, r.id])).rows[0].seq;
  }
  const head = (await db.admin.query(`select chain_seq::text as seq, event_id::text as id from audit_chain where org_id = $1 order by chain_seq desc limit 1`, [OAK])).rows[0];
  Object.assign(rows.head, head);
  expect(BigInt(rows.head.seq)).toBeGreaterThan(BigInt(rows.sparse.seq));
  checkpointsFile = join(work, 'checkpoints.jsonl');
  expect((await cli(['audit', 'checkpoint', 'export', '--out', checkpointsFile])).code).toBe(0);
  const clean = await verify(['--checkpoints', checkpointsFile, '--pubkey', pub]);
  expect(clean.invalid).toEqual([]);
  expect(clean.code).toBe(0);
  const e = await exportTrail('clean.csv');
  expect(e).toEqual({ code: 0, problems: [] });
}, SLOW);
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** What verify and export said about one tamper, in a form whose diff shows every column at once. */
interface Outcome {
  readonly field: string;
  readonly verify: number | null;
  readonly verifyNamesRow: boolean;
  readonly export: number | null;
  readonly exportNamesRow: boolean;
}

async function tamperEachColumn(table: 'audit_events' | 'audit_chain'): Promise<{ seen: Outcome[]; wanted: Outcome[] }> {
  const columns = await catalogColumns(table);
  const excluded = NOT_HASHED[table]!;
  // Every exclusion still names a column, defined as it was when it was excluded.
  for (const [name, x] of Object.entries(excluded)) {
    expect(columns.find((c) => c.name === name)?.definition, `${table}.${name}`).toBe(x.definition);
  }
  const seen: Outcome[] = [];
  const wanted: Outcome[] = [];
  for (const column of columns) {
    // Only audit_events has a row with every optional field empty. Where a
    // row is in the chain matters for the columns that tie an event to its
    // entry: those are changed at the head too.
    const tampers = tampersFor(table, column).filter((x) => x.on === 'full' || table === 'audit_events');
    for (const t of column.key ? [...tampers, { ...tampers[0]!, on: 'head' as const }] : tampers) {
      const { seq, id } = rows[t.on];
      // The line names the tampered entry (changed row, removed row, broken link at it) or its event.
      const namesRow = (l: string) => l.includes(`at oak-trust seq ${seq}:`) || l.includes(`event ${id} `);
      const field = `${table}.${column.name} (${t.variant}, ${t.on} row)`;
      const outcome = await tampered(table, column.name, t, async () => {
        const [v, e] = await Promise.all([
          verify(['--org', 'oak-trust']),
          exportTrail(`${table}-${column.name}-${seen.length}.csv`),
        ]);
        return { field, verify: v.code, verifyNamesRow: v.invalid.some(namesRow), export: e.code, exportNamesRow: e.problems.some(namesRow) };
      });
      seen.push(outcome);
      const reported = !(column.name in excluded);
      wanted.push({ field, verify: reported ? 3 : 0, verifyNamesRow: reported, export: reported ? 3 : 0, exportNamesRow: reported });
    }
  }
  return { seen, wanted };
}

describe('one field of a sealed row, changed by a superuser', () => {
  it('every column of audit_events (from the catalog): verify names the event (exit 3) and so does export', async () => {
    const { seen, wanted } = await tamperEachColumn('audit_events');
    expect(seen).toEqual(wanted);
  }, SLOW);

  it('every column of audit_chain (from the catalog): reported, except those listed as outside the hash', async () => {
    const { seen, wanted } = await tamperEachColumn('audit_chain');
    expect(seen).toEqual(wanted);
  }, SLOW);
});

/** The value with one character moved on within the alphabet it is written in (digits, hex, base64), so it stays well-formed. */
function oneCharacterChanged(value: string): string {
  const alphabet = /^\d+$/.test(value)
    ? '0123456789'
    : /^[0-9a-f-]+$/.test(value)
      ? '0123456789abcdef'
      : 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  // The first character: in base64 it carries six bits of the first byte, where a last one may be only padding.
  const i = [...value].findIndex((ch) => alphabet.includes(ch));
  const next = alphabet[(alphabet.indexOf(value[i]!) + 1) % alphabet.length]!;
  return value.slice(0, i) + next + value.slice(i + 1);
}

describe('one field of an exported checkpoint, changed in the file', () => {
  it('every field: verify --checkpoints --pubkey reports it (exit 3), or refuses the file (exit 2), except the unsigned ones for people', async () => {
    const lines = (await readFile(checkpointsFile, 'utf8')).trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // oak-trust's newest checkpoint: signed, at the head the chain has now.
    const at = parsed.reduce((best, c, i) => (c.org_id === OAK && (best < 0 || BigInt(String(c.chain_seq)) > BigInt(String(parsed[best]!.chain_seq))) ? i : best), -1);
    const target = parsed[at]!;
    expect(target.signature).toEqual(expect.any(String));
    for (const name of Object.keys(UNSIGNED_CHECKPOINT_FIELDS)) expect(Object.keys(target), name).toContain(name);
    const seen: Array<{ field: string; code: number | null; named: boolean }> = [];
    const wanted: typeof seen = [];
    for (const [field, value] of Object.entries(target)) {
      if (typeof value !== 'string') throw new Error(`no tamper for checkpoint field ${field} of type ${typeof value}: add one`);
      const forged = { ...target, [field]: oneCharacterChanged(value) };
      const file = join(work, `checkpoint-${field}.jsonl`);
      await writeFile(file, `${lines.map((l, i) => (i === at ? JSON.stringify(forged) : l)).join('\n')}\n`);
      const r = await verify(['--checkpoints', file, '--pubkey', pub]);
      if (field === 'format') {
        // Not a checkpoint this version of trustctl knows: refused, naming the line.
        seen.push({ field, code: r.code, named: r.stderr.includes(`${file}:${at + 1}: not a trustctl checkpoint`) });
        wanted.push({ field, code: 2, named: true });
        continue;
      }
      const named = r.invalid.some((l) => l.includes(`file checkpoint ${forged.id}:`) || l.startsWith('INVALID: removed organisation at oak-trust:'));
      seen.push({ field, code: r.code, named });
      wanted.push(field in UNSIGNED_CHECKPOINT_FIELDS ? { field, code: 0, named: false } : { field, code: 3, named: true });
    }
    expect(seen).toEqual(wanted);
  }, SLOW);
});

describe('put back', () => {
  it('the trail verifies clean again after every tamper was undone', async () => {
    const v = await verify(['--checkpoints', checkpointsFile, '--pubkey', pub]);
    expect(v.invalid).toEqual([]);
    expect(v.code).toBe(0);
    expect(await exportTrail('after.csv')).toEqual({ code: 0, problems: [] });
  }, SLOW);
});
