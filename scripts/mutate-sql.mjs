#!/usr/bin/env node
// SQL mutation testing: plants one mutant of a policy, guard or definer
// function (scripts/sql-mutants.mjs generates them from the migrated
// catalog) in the test template, runs the test files that reach it against
// it, and reports each mutant killed, survived or not reached by any test.
// Not part of CI: each mutant is one run of the test files that reach it.
//
//   node scripts/mutate-sql.mjs                        # 20 mutants, spread over the kinds
//   node scripts/mutate-sql.mjs --max 5 --only live_roles
//   node scripts/mutate-sql.mjs --rerun                # the survivors again, after a test was written
//   node scripts/mutate-sql.mjs --list                 # every mutant (and its latest result), nothing run
//   node scripts/mutate-sql.mjs --emit 'policy public.notes.notes_app_select using #3' > m.json
//       # one mutant's statements: TRUSTCTL_TEST_TEMPLATE_MUTATION=m.json npx vitest run … plants it by hand
//   node scripts/mutate-sql.mjs --minutes 90           # start no mutant after 90 minutes
//
// Needs dist/ (npm run build): it migrates with the built migrator. An
// embedded PostgreSQL holds the catalog the mutants come from; each test run
// starts its own (tests/support/global-setup.ts), builds the template and
// applies the mutant's statements named by TRUSTCTL_TEST_TEMPLATE_MUTATION.
// With TRUSTCTL_TEST_DATABASE_URL, that server serves everything (then
// roles a cut-short run leaves behind are the next run's problem).
// A run with no mutant comes first, with SQL coverage on: if it fails, no
// mutant is run; it records which test files reach which function and table.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { catalogMutants, spread } from './sql-mutants.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

// The test files a mutant may run with: every attack and integration test,
// except those about installing and upgrading (they build their own databases
// and never reach a mutant planted in the template). A mutant runs only with
// those that reached its function or its policy's table in the baseline run
// (tests/support/sql-coverage.ts), fastest first, until one fails.
export const DEFAULT_TESTS = ['tests/attacks', 'tests/integration'];
/** Every SQL mutant's latest result, kept in the repository (docs/testing.md is written from it). */
export const SQL_LEDGER = join(root, 'docs', 'mutation', 'sql-results.json');
const NOT_REACHING = ['tests/integration/compat-pg15.test.ts', 'tests/integration/newcomer.test.ts', 'tests/integration/upgrade.test.ts'];

/**
 * Runs SQL mutants; returns the results (also written to out as JSON). The
 * ledger (a JSON file, kept in the repository) holds every mutant's latest
 * result, keyed by id with a digest of its statements, and is written after
 * each mutant: a run interrupted loses nothing, and the next run takes the
 * mutants with no current result (or, with rerun, the survivors again).
 */
export async function mutateSql({ max = 20, only, tests = DEFAULT_TESTS, list = false, emit, out, ledger, rerun = false, freshBaseline = false, workers, minutes, log = (l) => process.stderr.write(`${l}\n`) }) {
  const dist = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
  const { migrate } = await dist('db/migrate.js');
  const work = await mkdtemp(join(tmpdir(), 'trustctl-mutate-sql-'));
  await chmod(work, 0o711); // the postgres system user reaches the cluster, when root
  let server;
  let url = process.env.TRUSTCTL_TEST_DATABASE_URL;
  const namedServer = Boolean(url);
  let admin;
  const started = Date.now();
  // Interrupted: stop the server this run started, and remove its files.
  const interrupted = async () => {
    if (server) await server.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true, maxRetries: 5 });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    if (url) {
      const { parse } = await import('pg-connection-string');
      const p = parse(url);
      admin = { host: p.host ?? undefined, port: p.port ? Number(p.port) : undefined, user: p.user, password: p.password, database: p.database ?? 'postgres' };
    } else {
      const { postgresServer } = await dist('db/postgres-server.js');
      const { freePort } = await dist('db/embedded.js');
      const port = await freePort();
      server = await postgresServer({ dataDir: join(work, 'pg'), port, superuser: 'postgres', password: 'mutate-admin-password', settings: { fsync: 'off' } });
      await server.initialise();
      await server.start();
      admin = { host: '127.0.0.1', port, user: 'postgres', password: 'mutate-admin-password', database: 'postgres' };
      url = `postgres://postgres:mutate-admin-password@127.0.0.1:${port}/postgres`;
    }

    // The catalog the mutants are generated from, and checked against (each
    // mutant's statements must apply: one that does not is invalid, not run).
    const catalogDb = 'trustctl_mutate_catalog';
    const boot = new pg.Client(admin);
    await boot.connect();
    await boot.query(`drop database if exists ${catalogDb}`);
    await boot.query(`create database ${catalogDb}`);
    await boot.end();
    const catalog = new pg.Client({ ...admin, database: catalogDb });
    await catalog.connect();
    let all;
    const invalid = [];
    try {
      await migrate(catalog, { logger: pino({ level: 'silent' }) });
      all = [];
      for (const m of await catalogMutants(catalog)) {
        await catalog.query('begin');
        try {
          for (const s of m.statements) await catalog.query(s);
          all.push(m);
        } catch (error) {
          invalid.push({ ...m, error: error.message });
        } finally {
          await catalog.query('rollback');
        }
      }
    } finally {
      await catalog.end();
    }
    for (const m of all) m.digest = digest(m);
    const book = ledger ? await readLedger(ledger) : { mutants: {} };
    // Mutants shown equivalent are not run again (docs/mutation/equivalent.json).
    const equivalent = (await readJsonFile(join(root, 'docs', 'mutation', 'equivalent.json')))?.sql ?? {};
    const current = (m) => book.mutants[m.id]?.digest === m.digest ? book.mutants[m.id] : undefined;
    const pattern = only ? new RegExp(only, 'i') : undefined;
    const matching = pattern ? all.filter((m) => pattern.test(m.id) || pattern.test(m.kind)) : all;
    const candidates = matching.filter((m) =>
      rerun ? ['survived', 'no-coverage'].includes(current(m)?.status) && !equivalent[m.id] : !current(m),
    );
    const chosen = spread(candidates, max);
    const counts = countBy(all, (m) => m.kind);
    log(`${all.length} mutants in the catalog (${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')}; ${invalid.length} invalid: statements refused), ${chosen.length} chosen`);
    if (list) {
      for (const m of matching) log(`${m.id} | ${m.change}${current(m) ? ` | ${current(m).status}` : ''}`);
      return { total: all.length, counts, invalid, results: [] };
    }
    if (emit) {
      const m = all.find((x) => x.id === emit);
      if (!m) throw new Error(`no mutant ${emit} in the catalog (--list shows them)`);
      process.stdout.write(`${JSON.stringify({ id: m.id, statements: m.statements })}\n`);
      return { total: all.length, counts, invalid, results: [] };
    }
    let results = [];
    if (chosen.length === 0) {
      // Nothing to run (or a report only): the catalog with the ledger's results.
      return summarise();
    }

    const runTests = async (label, mutant, files = tests, coverage) => {
      const reportFile = join(work, `report-${label}.json`);
      // Each run gets a fresh cluster (global-setup starts one) unless a server was named:
      // roles are cluster-wide, and a run that --bail cuts short leaves the roles its
      // tests made, which the next run's doctor would report.
      const env = { ...process.env, TRUSTCTL_TEST_TEMPLATE_MUTATION: '', TRUSTCTL_TEST_SQL_COVERAGE: coverage ?? '' };
      if (!namedServer) delete env.TRUSTCTL_TEST_DATABASE_URL;
      if (mutant) {
        const file = join(work, `mutant-${label}.json`);
        await writeFile(file, JSON.stringify({ id: mutant.id, statements: mutant.statements }));
        env.TRUSTCTL_TEST_TEMPLATE_MUTATION = file;
        env.TRUSTCTL_TEST_FILE_ORDER = files.join(','); // tests/support/file-order.ts
      }
      const args = [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'integration', ...(mutant ? ['--bail', '1'] : []), '--reporter', 'dot', '--reporter', 'json', '--outputFile.json', reportFile, ...(workers ? ['--maxWorkers', String(workers)] : []), ...files, ...NOT_REACHING.map((f) => `--exclude=${f}`)];
      const t0 = Date.now();
      const { code, output } = await runChild(process.execPath, args, { cwd: root, env });
      const seconds = Math.round((Date.now() - t0) / 1000);
      let failures = [];
      let durations = {};
      try {
        const report = JSON.parse(await readFile(reportFile, 'utf8'));
        durations = Object.fromEntries(report.testResults.map((f) => [relativeTo(f.name), (f.endTime - f.startTime) / 1000]));
        failures = report.testResults.flatMap((f) =>
          f.assertionResults
            .filter((a) => a.status === 'failed')
            .map((a) => `${f.name.replace(`${root}/`, '').replace(root, '')}: ${a.fullName} (${firstLine(a.failureMessages?.[0])})`),
        );
        if (failures.length === 0 && report.testResults.some((f) => f.status === 'failed')) {
          failures = report.testResults.filter((f) => f.status === 'failed').map((f) => `${f.name.replace(root, '').replace(/^\//, '')}: ${(f.message ?? '').split('\n')[0]}`);
        }
      } catch {
        return { code, seconds, failures: [], error: `no test report (exit ${code}): ${lastLine(output)}` };
      }
      return { code, seconds, failures, durations };
    };

    // The baseline: every test file on the unmutated template, recording what each
    // reaches. Kept in reports/mutation/sql-baseline.json with a digest of the code
    // and tests it ran: the next run over the same tree reuses it (freshBaseline: not).
    const treeDigest = await sourceDigest();
    const cacheFile = join(root, 'reports', 'mutation', 'sql-baseline.json');
    let base = freshBaseline ? undefined : await readJsonFile(cacheFile);
    if (base?.digest === treeDigest && base.tests.join(',') === tests.join(',')) {
      log(`baseline: reusing the run of ${base.date} over this same tree (${cacheFile})`);
    } else {
      log('baseline: the tests on the unmutated template, with SQL coverage…');
      const coverageDir = join(work, 'coverage');
      await mkdir(coverageDir);
      const b = await runTests('baseline', undefined, tests, coverageDir);
      log(`baseline: exit ${b.code} in ${b.seconds}s`);
      if (b.code !== 0) throw new Error(`the tests fail without a mutant (${b.error ?? b.failures.slice(0, 3).join('; ')}): fix that before mutating`);
      const reach = {}; // test file → function signatures and schema.table names
      for (const f of await readdir(coverageDir)) {
        const r = JSON.parse(await readFile(join(coverageDir, f), 'utf8'));
        reach[r.file] = [...new Set([...(reach[r.file] ?? []), ...r.functions, ...r.tables])].sort();
      }
      const missing = Object.keys(b.durations).filter((f) => !reach[f]);
      if (reach.unknown) throw new Error('SQL coverage could not name the test file of some databases (tests/support/sql-coverage.ts)');
      if (missing.length) log(`baseline: no SQL coverage from ${missing.join(', ')} (they make no test database): never run with a mutant`);
      base = { digest: treeDigest, date: new Date().toISOString(), tests, durations: b.durations, reach };
      await mkdir(join(cacheFile, '..'), { recursive: true });
      await writeFile(cacheFile, `${JSON.stringify(base)}\n`);
    }
    // Files that have killed mutants (in the ledger) first, the most kills first; then the quickest.
    const kills = {};
    for (const r of Object.values(book.mutants)) if (r.status === 'killed' && r.killedBy) kills[r.killedBy.split(':')[0]] = (kills[r.killedBy.split(':')[0]] ?? 0) + 1;
    const reaching = (m) => {
      const key = m.object.startsWith('public.') || m.object.startsWith('archive.') ? m.object.split('.').slice(0, 2).join('.') : m.object;
      return Object.entries(base.reach)
        .filter(([, list]) => list.includes(key))
        .map(([file]) => file)
        .sort((x, y) => (kills[y] ?? 0) - (kills[x] ?? 0) || (base.durations[x] ?? 1e9) - (base.durations[y] ?? 1e9));
    };

    const record = async (result, m) => {
      results.push(result);
      if (!ledger || result.status === 'error') return;
      book.mutants[m.id] = { digest: m.digest, date: new Date().toISOString().slice(0, 10), ...result, id: undefined };
      await writeLedger(ledger, book);
    };
    const deadline = minutes ? started + minutes * 60_000 : Infinity;
    for (const [i, m] of chosen.entries()) {
      if (Date.now() > deadline) {
        log(`time budget of ${minutes} min spent: ${chosen.length - i} chosen mutants not run`);
        break;
      }
      const files = reaching(m);
      if (files.length === 0) {
        await record({ id: m.id, kind: m.kind, object: m.object, change: m.change, status: 'no-coverage', seconds: 0, files: [] }, m);
        log(`[${i + 1}/${chosen.length}] NO COVERAGE ${m.id}: no test reaches ${m.object}`);
        continue;
      }
      const r = await runTests(String(i + 1), m, files);
      // A run that ended without a report (interrupted, setup failed) neither kills nor spares.
      const status = r.error ? 'error' : r.code === 0 ? 'survived' : 'killed';
      const killedBy = status === 'killed' ? r.failures[0] ?? `exit ${r.code}` : undefined;
      if (killedBy) kills[killedBy.split(':')[0]] = (kills[killedBy.split(':')[0]] ?? 0) + 1;
      await record({ id: m.id, kind: m.kind, object: m.object, change: m.change, status, seconds: r.seconds, files, killedBy, error: r.error }, m);
      log(`[${i + 1}/${chosen.length}] ${status.toUpperCase()} ${m.id} (${r.seconds}s) ${m.change}${status === 'killed' ? `\n      by ${r.failures[0] ?? `exit ${r.code}`}` : ''}${r.error ? `\n      ${r.error}` : ''}`);
    }
    const summary = summarise();
    if (out) {
      await mkdir(join(out, '..'), { recursive: true });
      await writeFile(out, `${JSON.stringify(summary, null, 2)}\n`);
    }
    return summary;

    function summarise() {
      return {
      date: new Date().toISOString(),
      tests,
      total: all.length,
      counts,
      invalid: invalid.map((m) => ({ id: m.id, change: m.change, error: m.error })),
      only: only ?? null,
      max,
      chosen: chosen.length,
      minutes: minutes ?? null,
      seconds: Math.round((Date.now() - started) / 1000),
      results,
      // Every mutant of the catalog with its latest current result, if any.
      catalog: all.map((m) => ({ id: m.id, kind: m.kind, object: m.object, change: m.change, result: current(m) })),
      };
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    if (server) await server.stop();
    await rm(work, { recursive: true, force: true, maxRetries: 5 });
  }
}

/** A digest of what a baseline run depends on: the code, the migrations, the tests and the scripts. */
async function sourceDigest() {
  const hash = createHash('sha256');
  for (const dir of ['src', 'tests', 'scripts']) {
    for (const f of (await readdir(join(root, dir), { recursive: true })).sort()) {
      const path = join(root, dir, f);
      let data;
      try {
        data = await readFile(path);
      } catch (error) {
        if (error.code === 'EISDIR') continue;
        throw error;
      }
      hash.update(`${dir}/${f}\0`).update(data).update('\0');
    }
  }
  for (const f of ['vitest.config.ts', 'package-lock.json']) hash.update(f).update(await readFile(join(root, f)));
  return hash.digest('hex');
}

async function readJsonFile(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function digest(m) {
  return createHash('sha256').update(m.statements.join('\n;\n')).digest('hex').slice(0, 16);
}

async function readLedger(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return { mutants: {} };
    throw error;
  }
}

/** Sorted by id, written to a temporary file and renamed: a kill mid-write loses nothing. */
async function writeLedger(file, book) {
  const sorted = Object.fromEntries(Object.entries(book.mutants).sort(([a], [b]) => a.localeCompare(b)));
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify({ ...book, mutants: sorted }, null, 1)}\n`);
  await rename(`${file}.tmp`, file);
}

function countBy(items, key) {
  const out = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

/** The first line of a failure message, without colour codes, short. */
function firstLine(message = '') {
  const line = message.replace(/\x1b\[[0-9;]*m/g, '').split('\n').find((l) => l.trim()) ?? '';
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}

function relativeTo(file) {
  return file.startsWith(`${root}`) ? file.slice(root.length).replace(/^\//, '') : file;
}

function lastLine(text) {
  return text.trim().split('\n').slice(-1)[0] ?? '';
}

/** Runs a child in its own process group, keeping the tail of its output. */
function runChild(file, args, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const keep = (d) => {
      output = (output + d).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      max: { type: 'string', default: '20' },
      minutes: { type: 'string' },
      only: { type: 'string' },
      tests: { type: 'string' },
      workers: { type: 'string' },
      list: { type: 'boolean', default: false },
      emit: { type: 'string' },
      out: { type: 'string', default: join(root, 'reports', 'mutation', 'sql.json') },
      ledger: { type: 'string', default: SQL_LEDGER },
      rerun: { type: 'boolean', default: false },
      'fresh-baseline': { type: 'boolean', default: false },
    },
  });
  const summary = await mutateSql({
    max: Number(values.max),
    minutes: values.minutes ? Number(values.minutes) : undefined,
    only: values.only,
    tests: values.tests ? values.tests.split(',') : DEFAULT_TESTS,
    workers: values.workers ? Number(values.workers) : undefined,
    list: values.list,
    emit: values.emit,
    out: values.list || values.emit ? undefined : values.out,
    ledger: values.ledger,
    rerun: values.rerun,
    freshBaseline: values['fresh-baseline'],
  });
  if (!values.list && !values.emit) {
    const killed = summary.results.filter((r) => r.status === 'killed').length;
    process.stderr.write(`${killed} of ${summary.results.length} killed in ${summary.seconds}s\n`);
  }
}
