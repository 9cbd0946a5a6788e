#!/usr/bin/env node
// SQL mutation testing: plants one mutant of a policy, guard or definer
// function (scripts/sql-mutants.mjs generates them from the migrated
// catalog) in the test template, runs the attack, isolation, doctor and
// access tests against it, and reports each mutant killed or survived.
// Not part of CI: each mutant is one run of those test files.
//
//   node scripts/mutate-sql.mjs                        # 20 mutants, spread over the kinds
//   node scripts/mutate-sql.mjs --max 5 --only live_roles
//   node scripts/mutate-sql.mjs --list                 # every mutant, nothing run
//   node scripts/mutate-sql.mjs --minutes 90           # start no mutant after 90 minutes
//
// Needs dist/ (npm run build): it migrates with the built migrator. An
// embedded PostgreSQL holds the catalog the mutants come from; each test run
// starts its own (tests/support/global-setup.ts), builds the template and
// applies the mutant's statements named by TRUSTCTL_TEST_TEMPLATE_MUTATION.
// With TRUSTCTL_TEST_DATABASE_URL, that server serves everything (then
// roles a cut-short run leaves behind are the next run's problem).
// A run with no mutant comes first: if it fails, no mutant is run.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { catalogMutants, spread } from './sql-mutants.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

export const DEFAULT_TESTS = [
  'tests/attacks',
  'tests/integration/isolation.test.ts',
  'tests/integration/escalation.test.ts',
  'tests/integration/doctor.test.ts',
  'tests/integration/operator-session.test.ts',
  'tests/integration/access.test.ts',
];

/** Runs the SQL mutants; returns the results (also written to out as JSON). */
export async function mutateSql({ max = 20, only, tests = DEFAULT_TESTS, list = false, out, workers, baseline = true, minutes, log = (l) => process.stderr.write(`${l}\n`) }) {
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
    const pattern = only ? new RegExp(only, 'i') : undefined;
    const candidates = pattern ? all.filter((m) => pattern.test(m.id) || pattern.test(m.kind)) : all;
    const chosen = spread(candidates, max);
    const counts = countBy(all, (m) => m.kind);
    log(`${all.length} mutants in the catalog (${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')}; ${invalid.length} invalid: statements refused), ${chosen.length} chosen`);
    if (list) {
      for (const m of pattern ? candidates : all) log(`${m.id} | ${m.change}`);
      return { total: all.length, counts, invalid, results: [] };
    }

    const runTests = async (label, mutant) => {
      const reportFile = join(work, `report-${label}.json`);
      // Each run gets a fresh cluster (global-setup starts one) unless a server was named:
      // roles are cluster-wide, and a run that --bail cuts short leaves the roles its
      // tests made, which the next run's doctor would report.
      const env = { ...process.env, TRUSTCTL_TEST_TEMPLATE_MUTATION: '' };
      if (!namedServer) delete env.TRUSTCTL_TEST_DATABASE_URL;
      if (mutant) {
        const file = join(work, `mutant-${label}.json`);
        await writeFile(file, JSON.stringify({ id: mutant.id, statements: mutant.statements }));
        env.TRUSTCTL_TEST_TEMPLATE_MUTATION = file;
      }
      const args = [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'integration', '--bail', '1', '--reporter', 'dot', '--reporter', 'json', '--outputFile.json', reportFile, ...(workers ? ['--maxWorkers', String(workers)] : []), ...tests];
      const t0 = Date.now();
      const { code, output } = await runChild(process.execPath, args, { cwd: root, env });
      const seconds = Math.round((Date.now() - t0) / 1000);
      let failures = [];
      try {
        const report = JSON.parse(await readFile(reportFile, 'utf8'));
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
      return { code, seconds, failures };
    };

    if (baseline) {
      log('baseline: the tests on the unmutated template…');
      const b = await runTests('baseline');
      log(`baseline: exit ${b.code} in ${b.seconds}s`);
      if (b.code !== 0) throw new Error(`the tests fail without a mutant (${b.error ?? b.failures.slice(0, 3).join('; ')}): fix that before mutating`);
    }

    const results = [];
    const deadline = minutes ? started + minutes * 60_000 : Infinity;
    for (const [i, m] of chosen.entries()) {
      if (Date.now() > deadline) {
        log(`time budget of ${minutes} min spent: ${chosen.length - i} chosen mutants not run`);
        break;
      }
      const r = await runTests(String(i + 1), m);
      // A run that ended without a report (interrupted, setup failed) neither kills nor spares.
      const status = r.error ? 'error' : r.code === 0 ? 'survived' : 'killed';
      results.push({ id: m.id, kind: m.kind, object: m.object, change: m.change, status, seconds: r.seconds, killedBy: status === 'killed' ? r.failures[0] ?? `exit ${r.code}` : undefined, error: r.error });
      log(`[${i + 1}/${chosen.length}] ${status.toUpperCase()} ${m.id} (${r.seconds}s) ${m.change}${status === 'killed' ? `\n      by ${r.failures[0] ?? `exit ${r.code}`}` : ''}${r.error ? `\n      ${r.error}` : ''}`);
    }
    const summary = {
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
    };
    if (out) {
      await mkdir(join(out, '..'), { recursive: true });
      await writeFile(out, `${JSON.stringify(summary, null, 2)}\n`);
    }
    return summary;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    if (server) await server.stop();
    await rm(work, { recursive: true, force: true, maxRetries: 5 });
  }
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
      'no-baseline': { type: 'boolean', default: false },
      out: { type: 'string', default: join(root, 'reports', 'mutation', 'sql.json') },
    },
  });
  const summary = await mutateSql({
    max: Number(values.max),
    minutes: values.minutes ? Number(values.minutes) : undefined,
    only: values.only,
    tests: values.tests ? values.tests.split(',') : DEFAULT_TESTS,
    workers: values.workers ? Number(values.workers) : undefined,
    list: values.list,
    baseline: !values['no-baseline'],
    out: values.list ? undefined : values.out,
  });
  if (!values.list) {
    const killed = summary.results.filter((r) => r.status === 'killed').length;
    process.stderr.write(`${killed} of ${summary.results.length} killed in ${summary.seconds}s\n`);
  }
}
