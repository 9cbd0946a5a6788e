// Every option that takes a value, and every positional argument, of the
// built program: a bad value (wrong type, out of range, a malformed date,
// time, duration, id or slug, a missing or wrong file, an empty string) is
// refused with exit 2 and one line on stderr that names the option or quotes
// the value, before anything is written: no operator session, no audit
// event, no row of any table, no role, no file.
//
// The options are read from the program itself (dist/cli.js, the code the
// binary runs), so a new option fails this file until it is added to SPECS:
// with the bad values it must refuse, or on purpose as accepting any text
// (of which only a blank value is refused).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { demoId } from '../support/demo-ids.js';
import { inParallel } from '../support/parallel.js';

/** What an option or argument accepts: the bad values it must refuse, or, on purpose, any text. */
type Spec =
  | { readonly bad: readonly string[]; /** the valid values this option goes with, instead of the command's base */ readonly base?: readonly string[] }
  | { readonly anyText: string };

interface CommandSpec {
  /** Valid values for everything the command needs, positional arguments first. */
  readonly base: readonly string[];
  /** An administrative connection (db and operator commands); else an operator's. */
  readonly admin?: true;
  readonly input?: string;
  readonly options?: Readonly<Record<string, Spec>>;
  readonly args?: Readonly<Record<string, Spec>>;
}

// Fixed paths, so that SPECS exists when vitest collects the tests; beforeAll makes them.
const work = join(tmpdir(), `trustctl-flag-values-${randomBytes(5).toString('hex')}`);
/** The commands' working directory and every output path they are given: it must stay empty. */
const scratch = join(work, 'scratch');
const fixtureDir = join(work, 'fixtures');
const fixtures = {
  /** A regular file: not a key, not a checkpoints file, not a directory. */
  file: join(fixtureDir, 'plain.txt'),
  /** A path through a regular file: nothing can be created there. */
  underFile: join(fixtureDir, 'plain.txt', 'below'),
  dir: join(fixtureDir, 'a-directory'),
  /** A real bundle, exported by beforeAll. */
  bundle: join(fixtureDir, 'SAR-FLAGS-1.zip'),
  noCertificates: join(fixtureDir, 'no-certificates'),
};
const mediaDir = inject('mediaDir');
const CHILD = demoId('child:oak-primary:3');
const ERASE_CHILD = demoId('child:oak-primary:6');
const STAFF = 'helen.marsh@oak-trust.example.org';
const SUPPORT = 'pat.support@platform.example.com';
/** A well-formed id that names nothing: a bad value is refused before anything could be looked up. */
const SOME_ID = '0c9e6b2e-7a51-4f43-9a0e-3f1d2b6c8a10';

const missing = '/nonexistent-trustctl-test/x';
// The machine is shared and slow: a few values per kind, each a different way to be wrong.
const blank = [''];
const slug = (): Spec => ({ bad: ['Not A Slug', 'a'.repeat(64), ...blank] });
const uuid = (): Spec => ({ bad: ['1234', ...blank] });
const person = (): Spec => ({ bad: ['not a person', ...blank] });
const reference = (): Spec => ({ bad: ['DSAR 2026 14', ...blank] });
const duration = (): Spec => ({ bad: ['2x', '400d', ...blank] });
const time = (): Spec => ({ bad: ['yesterday', '2026-02-30', '2026-02-30T10:00:00Z', ...blank] });
const count = (min: number, max: number): Spec => ({ bad: ['ten', String(min - 1), String(max + 1), '1e1', ...blank] });
const oneOf = (...wrong: string[]): Spec => ({ bad: [...wrong, ...blank] });
const category = (): Spec => oneOf('nothing');
const keyFile = (): Spec => ({ bad: [missing, fixtures.file, ...blank] });
const existingDir = (): Spec => ({ bad: [missing, fixtures.file, ...blank] });
const newDir = (): Spec => ({ bad: [fixtures.underFile, ...blank] });
const newFile = (): Spec => ({ bad: [`${fixtures.underFile}/file`, fixtures.dir, ...blank] });

const org = ['--org', 'oak-trust'];
const reason = ['--reason', 'checking refusals'];

/** Keyed by command path ('' is the program: its global options, tried on `org list`). */
const SPECS: Readonly<Record<string, CommandSpec>> = {
  '': {
    base: ['org', 'list'],
    options: {
      '--database-url': { bad: ['not a url', 'http://example.com/x', 'postgres://u@127.0.0.1:99999/x', ...blank] },
      '--reason': { anyText: 'why the operator is there, recorded as written' },
      '--ticket': { anyText: 'a ticket reference; each organisation’s policy decides its form, and the database checks it' },
      '--log-file': { bad: [`${fixtures.underFile}/log`, fixtures.dir, ...blank] },
      '--log-level': oneOf('loud'),
    },
  },
  'db seed': {
    admin: true,
    base: ['--demo'],
    options: {
      '--scale': { bad: ['lots', '5k', ...blank] },
      '--seed': { ...count(0, 999_999_999), base: ['--scale', '10k'] },
      '--anchor': { bad: ['20/11/2026', '2026-02-30', ...blank], base: ['--scale', '10k'] },
      '--media-dir': newDir(),
    },
  },
  'operator add': {
    admin: true,
    base: ['flag_values_op', '--password-stdin'],
    input: 'a-long-enough-password\n',
    args: { name: oneOf('Bad Name', 'postgres') },
  },
  'org show': { base: ['oak-trust', ...reason], args: { slug: slug() } },
  'dsar request open': {
    base: [...org, '--subject', CHILD, '--request', 'SAR-FLAGS-2'],
    options: {
      '--org': slug(),
      '--subject': person(),
      '--request': reference(),
      '--kind': oneOf('copy'),
      '--received': { bad: ['20/11/2026', '2026-02-30', '2999-01-01', ...blank] },
    },
  },
  'dsar request extend': {
    base: [...org, '--request', 'SAR-FLAGS-1', '--months', '1', '--extension-reason', 'records at three sites'],
    options: {
      '--org': slug(),
      '--request': reference(),
      '--months': count(1, 2),
      '--extension-reason': { anyText: 'why more time is needed, recorded as written' },
    },
  },
  'dsar request close': {
    base: [...org, '--request', 'SAR-FLAGS-1'],
    options: { '--org': slug(), '--request': reference(), '--note': { anyText: 'how the request was answered, recorded as written' } },
  },
  'dsar request list': { base: [], options: { '--org': slug() } },
  'dsar list': { base: [], options: { '--org': slug() } },
  'dsar export': {
    base: [...org, '--subject', CHILD, '--request', 'SAR-FLAGS-1', '--out', scratch, '--media-dir', mediaDir],
    options: {
      '--org': slug(),
      '--subject': person(),
      '--request': reference(),
      '--out': newDir(),
      '--include': oneOf('everything'),
      '--reviewer': { anyText: 'the name of whoever reviewed the released records' },
      '--media-dir': existingDir(),
      '--sign-key': keyFile(),
    },
  },
  'dsar verify': { base: [fixtures.bundle], options: { '--pubkey': keyFile() }, args: { 'bundle.zip': { bad: [missing, fixtures.dir, ...blank] } } },
  'dsar erase': {
    base: [...org, '--subject', ERASE_CHILD, '--request', 'ER-FLAGS-1', '--out', scratch, '--media-dir', mediaDir, '--yes'],
    options: {
      '--org': slug(),
      '--subject': person(),
      '--request': reference(),
      '--out': newDir(),
      '--media-dir': existingDir(),
      // --since and --from go with --replay, whose base is its own.
      '--since': { ...time(), base: ['--replay', '--yes', '--from', fixtures.noCertificates] },
      '--from': { ...existingDir(), base: ['--replay', '--yes', '--since', '2026-01-01T00:00:00Z'] },
    },
  },
  'audit seal': { base: org, options: { '--org': slug(), '--sign-key': keyFile(), '--batch-size': count(1, 100_000) } },
  'audit verify': { base: org, options: { '--org': slug(), '--checkpoints': keyFile(), '--pubkey': keyFile() } },
  'audit export': {
    base: [...org, '--out', join(scratch, 'trail.csv')],
    options: {
      '--org': slug(),
      '--out': newFile(),
      '--site': slug(),
      '--from': time(),
      '--to': time(),
      '--actor': { anyText: 'matched exactly against actor_id: a user’s id, or any PostgreSQL role name an operator logs in as' },
      '--action': oneOf('dsar export', 'DSAR.*'),
      '--subject': uuid(),
      '--format': oneOf('xml'),
    },
  },
  'audit checkpoint export': { base: ['--out', join(scratch, 'checkpoints.jsonl')], options: { '--org': slug(), '--out': newFile() } },
  // --out is a prefix: PREFIX.key and PREFIX.pub.
  'audit keygen': { base: ['--out', join(scratch, 'audit')], options: { '--out': { bad: [`${fixtures.underFile}/file`, ...blank] } } },
  'roles grant': {
    base: [...org, '--site', 'oak-primary', '--user', STAFF, '--role', 'teacher', ...reason],
    options: { '--org': slug(), '--site': slug(), '--user': person(), '--role': oneOf('wizard', 'guardian') },
  },
  'roles revoke': { base: [SOME_ID, ...org, ...reason], options: { '--org': slug() }, args: { id: uuid() } },
  'roles list': { base: org, options: { '--org': slug(), '--site': slug(), '--user': person(), '--role': oneOf('wizard') } },
  'access grant': {
    base: [...org, '--site', 'oak-primary', '--user', SUPPORT, '--role', 'office', '--for', '1h', '--ticket', 'SUP-1', ...reason],
    options: {
      '--org': slug(),
      '--site': slug(),
      '--user': person(),
      '--role': oneOf('wizard', 'org_admin'),
      '--for': duration(),
      '--starts': time(),
    },
  },
  ...Object.fromEntries(
    ['approve', 'deny', 'revoke'].map((verb): [string, CommandSpec] => [
      `access ${verb}`,
      { base: [SOME_ID, ...org, ...reason], options: { '--org': slug() }, args: { id: uuid() } },
    ]),
  ),
  'access extend': { base: [SOME_ID, ...org, '--for', '1h', ...reason], options: { '--org': slug(), '--for': duration() }, args: { id: uuid() } },
  'access list': { base: [], options: { '--org': slug(), '--days': count(0, 3650), '--user': { ...person(), base: org } } },
  'access who': { base: [...org, '--site', 'oak-primary'], options: { '--org': slug(), '--site': slug(), '--child': uuid(), '--at': time() } },
  'access policy set': {
    base: [...org, '--role', 'office', ...reason],
    options: { '--org': slug(), '--role': oneOf('wizard'), '--max-duration': duration(), '--ticket-pattern': oneOf('(', '*SUP') },
  },
  'access policy show': { base: [], options: { '--org': slug() } },
  'retention policy set': {
    base: [...org, '--category', 'notes', '--keep', '7y', '--action', 'archive', ...reason],
    options: {
      '--org': slug(),
      '--site': slug(),
      '--category': category(),
      '--keep': oneOf('7 years', '99999y'),
      '--action': oneOf('burn'),
      '--clock': oneOf('Not A Column'),
    },
  },
  'retention policy unset': { base: [...org, '--category', 'notes', ...reason], options: { '--org': slug(), '--site': slug(), '--category': category() } },
  'retention policy list': { base: [], options: { '--org': slug() } },
  'retention sweep': {
    base: [...org, '--yes', ...reason],
    options: { '--org': slug(), '--category': category(), '--batch-size': count(1, 100_000), '--max-duration': duration() },
  },
  'retention archive export': { base: [...org, '--out', scratch], options: { '--org': slug(), '--out': existingDir(), '--category': category() } },
  'retention plan': { base: [], options: { '--org': slug(), '--as-of': time() } },
  'hold add': { base: [...org, '--subject', CHILD, ...reason], options: { '--org': slug(), '--site': slug(), '--subject': uuid(), '--category': category() } },
  'hold release': { base: [SOME_ID, ...org, ...reason], options: { '--org': slug() }, args: { id: uuid() } },
  'hold list': { base: [], options: { '--org': slug() } },
  'session list': { base: [], options: { '--limit': count(1, 1000) } },
  'session show': { base: [SOME_ID], args: { id: uuid() } },
  doctor: { base: ['--no-probe'], options: { '--schema': oneOf('public;') } },
  // With DATABASE_URL set the demo refuses to run at all: it must refuse the bad value first, by name.
  demo: { base: [], options: { '--media-dir': newDir() } },
};

interface Walked {
  readonly path: string;
  /** Options that take a value. */
  readonly options: readonly string[];
  readonly args: readonly string[];
}

/** Every command of the built program, with its options that take a value and its positional arguments. */
async function walkProgram(): Promise<Walked[]> {
  const { buildProgram } = (await import(new URL('../../dist/cli.js', import.meta.url).href)) as { buildProgram(): Command };
  const out: Walked[] = [];
  const walk = (cmd: Command, path: string[]): void => {
    out.push({
      path: path.join(' '),
      options: cmd.options.filter((o) => o.required || o.optional).map((o) => o.long!),
      args: cmd.registeredArguments.map((a) => a.name()),
    });
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(buildProgram(), []);
  return out.filter((w) => w.options.length + w.args.length > 0);
}

interface Case {
  readonly name: string;
  readonly argv: readonly string[];
  /** The option under test, or <argument>. */
  readonly target: string;
  readonly value: string;
}

/** Free text is refused only when blank. */
const badValues = (spec: Spec | undefined): readonly string[] => (!spec ? [] : 'bad' in spec ? spec.bad : ['', '  ']);

/** One case per bad value: the base with the value under test put in place of (or added to) the valid one. */
function casesFor(path: string, spec: CommandSpec): Case[] {
  const words = path === '' ? [] : path.split(' ');
  const cases: Case[] = [];
  for (const [option, s] of Object.entries(spec.options ?? {})) {
    const base = [...('base' in s && s.base ? s.base : spec.base)];
    const i = base.indexOf(option);
    if (i >= 0) base.splice(i, 2);
    for (const value of badValues(s)) {
      cases.push({ name: `${option}=${JSON.stringify(value)}`, argv: [...words, ...base, `${option}=${value}`], target: option, value });
    }
  }
  Object.entries(spec.args ?? {}).forEach(([arg, s], index) => {
    for (const value of badValues(s)) {
      const argv = [...spec.base];
      argv[index] = value;
      cases.push({ name: `<${arg}>=${JSON.stringify(value)}`, argv: [...words, ...argv], target: `<${arg}>`, value });
    }
  });
  return cases;
}

/** Every table's rows (count, and the transactions that wrote them) and every role: any write shows. */
async function snapshot(): Promise<Record<string, string>> {
  const tables = await db.admin.query<{ t: string }>(
    `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') order by 1`,
  );
  const parts = tables.rows.map((r) => `select '${r.t}' as t, count(*) || '/' || coalesce(sum(xmin::text::bigint), 0) as v from ${r.t}`);
  // Roles are cluster-wide and other test files make and drop their own meanwhile: compared are
  // the roles a command here could create or change (the group roles, and the logins the cases name).
  parts.push(`select 'pg_roles', string_agg(format('%s:%s%s%s:%s', r.rolname, r.rolsuper, r.rolcanlogin, r.rolbypassrls,
      (select string_agg(g.rolname, '+' order by g.rolname) from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid)), ',' order by r.rolname)
    from pg_roles r where r.rolname in ('app_user', 'trustctl_operator', 'trustctl_owner', 'trustctl_definer', 'flag_values_op', 'Bad Name', 'postgres')
       or r.rolname like 'flag%'`);
  const rows = await db.admin.query<{ t: string; v: string }>(parts.join(' union all '));
  return Object.fromEntries(rows.rows.map((r) => [r.t, r.v]));
}

let db: TestDatabase;
let walked: Walked[];

beforeAll(async () => {
  db = await createTestDatabase();
  await mkdir(scratch, { recursive: true });
  await mkdir(fixtures.dir, { recursive: true });
  await mkdir(fixtures.noCertificates);
  await writeFile(fixtures.file, 'not a key, not a checkpoint, not a directory\n');
  // The requests the dsar commands' valid values name, and the bundle dsar verify's do.
  const op = db.url('trustctl_test_op');
  for (const args of [
    ['dsar', 'request', 'open', ...org, '--subject', CHILD, '--request', 'SAR-FLAGS-1'],
    ['dsar', 'request', 'open', ...org, '--subject', ERASE_CHILD, '--request', 'ER-FLAGS-1', '--kind', 'erasure'],
    ['dsar', 'export', ...org, '--subject', CHILD, '--request', 'SAR-FLAGS-1', '--out', fixtureDir, '--media-dir', mediaDir],
  ]) {
    const r = await runCli(['--database-url', op, ...args]);
    expect(r.code, r.stderr).toBe(0);
  }
  walked = await walkProgram();
});
afterAll(async () => {
  await db?.drop();
  await rm(work, { recursive: true, force: true });
});

describe('the specs cover the program', () => {
  it('list every option with a value and every argument of every command of the built program, and nothing else', () => {
    const have = walked.flatMap((w) => [...w.options.map((o) => `${w.path} ${o}`), ...w.args.map((a) => `${w.path} <${a}>`)]);
    const listed = Object.entries(SPECS).flatMap(([path, s]) => [
      ...Object.keys(s.options ?? {}).map((o) => `${path} ${o}`),
      ...Object.keys(s.args ?? {}).map((a) => `${path} <${a}>`),
    ]);
    expect(listed.sort()).toEqual(have.sort());
  });
});

describe('a bad value: exit 2, one line on stderr naming the option or quoting the value, nothing changed', () => {
  // One test per command: its cases two at a time, then the database and the output folder are compared.
  it.each(Object.keys(SPECS))('%j', async (path) => {
    const spec = SPECS[path]!;
    const cases = casesFor(path, spec);
    expect(cases.length).toBeGreaterThan(0);
    const url = spec.admin ? db.url('admin') : db.url('trustctl_test_op');
    const before = await snapshot();
    const results = await inParallel(cases, 2, async (c) => {
      const r = await runCli([...c.argv], { env: { DATABASE_URL: url, TRUSTCTL_HOME: join(work, 'home') }, cwd: scratch, ...(spec.input ? { input: spec.input } : {}) });
      const line = r.stderr.trim();
      const names = line.includes(c.target) || (c.value.trim() !== '' && line.includes(c.value)) || (c.target.startsWith('<') && line.includes(`"${c.value}"`));
      return { case: c.name, code: r.code, oneLine: line !== '' && !line.includes('\n'), names, stdout: r.stdout, stderr: line };
    });
    // Soft: every kind of failure of a command is shown at once.
    expect.soft(results).toEqual(results.map((r) => ({ ...r, code: 2, oneLine: true, names: true, stdout: '' })));
    expect.soft(await snapshot(), 'rows or roles changed').toEqual(before);
    expect.soft(await readdir(scratch), 'files written').toEqual([]);
  });
});
