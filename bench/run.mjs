#!/usr/bin/env node
// trustctl benchmarks: each job measured against its baseline from
// DESIGN.md's table, in one run, reported as ratios. Not part of the tests.
//
//   npm run bench                         # every benchmark at 1m and 10m rows (fresh databases), about 20 minutes
//   npm run bench -- --scale 1m           # one size (a few minutes)
//   npm run bench -- --scale 1m --only dsar --subjects 40
//   TRUSTCTL_BENCH_HOME=/var/tmp/tb npm run bench -- --scale 1m   # reuse a database (it grows: not comparable)
//
// Each size runs in its own process on its own embedded database: demo seed
// plus `db seed --scale SIZE`. Writes bench/RESULTS.md (and prints the
// tables): the largest size against DESIGN.md's targets, and how each job's
// cost grew between the sizes.
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { sql } from 'kysely';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'dsar,audit,sweep,cli' },
    scale: { type: 'string', default: '1m,10m' },
    seed: { type: 'string', default: '1' },
    // Defaults scale with the size: a tenth of it swept, as many audit events as rows.
    'sweep-rows': { type: 'string' },
    subjects: { type: 'string', default: '200' },
    'audit-events': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    // Internal: a child run writes its rows here as JSON for the parent.
    'rows-out': { type: 'string' },
  },
});
const only = new Set(args.only.split(',').map((s) => s.trim()));
const dist = (p) => import(join(root, 'dist', p));
const { parseScale } = await dist('seed/scale.js');
const sizes = args.scale.split(',').map((x) => ({ label: x.trim(), rows: parseScale(x.trim()) })).sort((a, b) => a.rows - b.rows);
const size = sizes[sizes.length - 1];
const sweepRows = Number(args['sweep-rows'] ?? Math.round(size.rows / 10));
const auditEvents = Number(args['audit-events'] ?? size.rows);

const logger = pino({ level: 'silent' });
// A fresh database per run unless TRUSTCTL_BENCH_HOME names one to reuse:
// the audit bench adds its events to an append-only trail, so a reused
// database grows with every run and later figures are not comparable.
const reuse = Boolean(process.env.TRUSTCTL_BENCH_HOME);
// Only a run of one size has a database; a run of several sizes starts one child per size.
const single = args.scale.split(',').length === 1;
const home = process.env.TRUSTCTL_BENCH_HOME ?? (single ? await mkdtemp(join(tmpdir(), 'trustctl-bench-')) : '');
// Traversable by the postgres user (when root), so the cluster lives in home and is removed with it.
if (!reuse && single) await chmod(home, 0o711);
const settings = { home, skipTlsVerify: false, logger, notice: (line) => process.stderr.write(`${line}\n`) };

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
const ms = (x) => `${x.toFixed(1)} ms`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

const rows = []; // { job, measure, target, result, baseline, ratio, verdict }
let dataset = '';

async function benchDsar() {
  const { withAdminDb, withOperatorDb } = await dist('db/with-db.js');
  const { withOperatorSession } = await dist('db/operator-session.js');
  const { exportSubjectBundle } = await dist('dsar/export.js');
  const { planSubjectRead } = await dist('dsar/plan.js');
  const mediaDir = join(home, 'media');
  await ensureSeeded();
  const limit = Number(args.subjects);
  // One request per child, so every export is a real one.
  const subjects = await withAdminDb(settings, async ({ pool }) => {
    await pool.query(`
      insert into dsar_requests (org_id, site_id, reference, subject_type, subject_id, received_on, due_on)
      select org_id, site_id, 'BENCH-' || id, 'child', id, current_date, (current_date + interval '1 month')::date
      from children on conflict (org_id, reference) do nothing`);
    await pool.query('vacuum analyze dsar_requests');
    const res = await pool.query(
      `select c.id, o.slug from children c join organisations o using (org_id) order by md5(c.id::text) limit $1`,
      [limit],
    );
    return res.rows;
  });
  const out = await mkdtemp(join(tmpdir(), 'trustctl-bench-out-'));
  const exportTimes = [];
  const rawTimes = [];
  const plan = planSubjectRead('child');
  try {
    await withOperatorDb(settings, (db) =>
      withOperatorSession(
        db.kysely,
        { reason: 'trustctl bench: DSAR export timing', allOrgs: true, command: 'bench/run.mjs' },
        async (session) => {
          const rawLookups = (id, orgSlug) =>
            session.transaction(
              async (trx) => {
                const org = await sql`select org_id from organisations where slug = ${orgSlug}`.execute(trx);
                const orgId = org.rows[0].org_id;
                for (const t of plan.tables) {
                  const where = sql.join(
                    [...t.own, ...t.by].map((r) =>
                      r.orgColumn
                        ? sql`(${sql.ref(r.column)} = ${id}::uuid and ${sql.ref(r.orgColumn)} = ${orgId}::uuid)`
                        : sql`${sql.ref(r.column)} = ${id}::uuid`,
                    ),
                    sql` or `,
                  );
                  await sql`select * from ${sql.table(t.map.table)} where org_id = ${orgId}::uuid and (${where})`.execute(trx);
                }
              },
              { isolation: 'repeatable read' },
            );
          const exportOne = (id, orgSlug) =>
            exportSubjectBundle(
              session,
              {
                orgSlug,
                subject: { id },
                reference: `BENCH-${id}`,
                outDir: out,
                include: [],
                reviewer: null,
                mediaDir,
                encrypt: false,
                force: true,
                toolVersion: 'bench',
              },
              { logger },
            );
          // Warm up caches and JIT on a few subjects first.
          for (const s of subjects.slice(0, 5)) {
            await rawLookups(s.id, s.slug);
            await exportOne(s.id, s.slug);
          }
          let done = 0;
          for (const s of subjects) {
            let t = performance.now();
            await rawLookups(s.id, s.slug);
            rawTimes.push(performance.now() - t);
            t = performance.now();
            await exportOne(s.id, s.slug);
            exportTimes.push(performance.now() - t);
            done += 1;
            if (process.stderr.isTTY) process.stderr.write(`\rdsar: ${done}/${subjects.length}`);
          }
          if (process.stderr.isTTY) process.stderr.write('\n');
        },
        { logger },
      ),
    );
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  exportTimes.sort((a, b) => a - b);
  rawTimes.sort((a, b) => a - b);
  for (const [q, target] of [
    [0.5, null],
    [0.95, 50],
  ]) {
    const t = quantile(exportTimes, q);
    const raw = quantile(rawTimes, q);
    rows.push({
      key: `dsar.p${q * 100}`, value: t, unit: 'ms', n: seededRows,
      job: 'DSAR export',
      measure: `p${q * 100} per subject, in-process (${exportTimes.length} children)`,
      target: target ? `≤ ${target} ms (at 10M rows)` : '—',
      result: ms(t),
      baseline: `${ms(raw)} raw SQL lookups`,
      ratio: ratio(t, raw),
      verdict: target === null ? '' : t <= target ? 'met (on this dataset)' : `missed by ${ms(t - target)}`,
    });
  }
}

let seededRows = 0;
let databaseSize = '';
async function ensureSeeded() {
  if (seededRows > 0) return;
  const { seedScaleDatabase } = await dist('seed/index.js');
  const { withAdminDb } = await dist('db/with-db.js');
  const t0 = performance.now();
  const r = await seedScaleDatabase(settings, {
    rows: size.rows,
    seed: Number(args.seed),
    anchorDate: new Date().toISOString().slice(0, 10),
    mediaDir: join(home, 'media'),
    logger,
  });
  const seedSeconds = (performance.now() - t0) / 1000;
  // As autovacuum would have done on a live database: visibility, statistics,
  // GIN pending lists merged into the index.
  const counts = await withAdminDb(settings, async ({ pool }) => {
    await pool.query('vacuum analyze');
    const r = await pool.query(`select (select sum(n_live_tup)::bigint from pg_stat_user_tables where schemaname = 'public') as n,
      pg_size_pretty(pg_database_size(current_database())) as size`);
    return r.rows[0];
  });
  seededRows = Number(counts.n);
  databaseSize = counts.size;
  dataset ||= `demo seed + \`db seed --scale ${size.label} --seed ${args.seed}\`: ${seededRows.toLocaleString('en-GB')} rows, ${databaseSize} on disk (${r.organisations} scale organisations, ${r.sites} sites, ${r.children.toLocaleString('en-GB')} children; seeded in ${seedSeconds.toFixed(0)} s)`;
}

async function benchAudit() {
  const { withAdminDb, withOperatorDb } = await dist('db/with-db.js');
  const { withOperatorSession } = await dist('db/operator-session.js');
  const { sealAuditChain } = await dist('audit/seal.js');
  const { exportAuditTrail, EXPORT_COLUMNS } = await dist('audit/export.js');
  await ensureSeeded();
  const n = auditEvents;
  // N new events for oak-trust each run, shaped like the application's
  // (an attendance correction naming a child and a member of staff).
  const { orgId, total } = await withAdminDb(settings, async ({ pool }) => {
    const org = (await pool.query(`select org_id from organisations where slug = 'oak-trust'`)).rows[0].org_id;
    await pool.query(
      `insert into audit_events (org_id, site_id, occurred_at, actor_type, actor_id, action, target_type, target_id, subject_ids, context)
       select $1, (select site_id from sites where org_id = $1 order by slug limit 1), now() - (i || ' seconds')::interval, 'user',
              'bench-user-' || (i % 500), 'attendance_records.update', 'attendance_records', md5(i::text)::uuid::text,
              array[md5('child' || (i % 5000))::uuid, md5('staff' || (i % 300))::uuid], '{"changed": ["status"]}'
       from generate_series(1, $2::int) i`,
      [org, n],
    );
    await pool.query('vacuum analyze audit_events');
    const count = (await pool.query(`select count(*)::int as n from audit_events where org_id = $1`, [org])).rows[0].n;
    return { orgId: org, total: count };
  });
  dataset += `; audit bench: ${n.toLocaleString('en-GB')} new events added to oak-trust's trail (${total.toLocaleString('en-GB')} events before sealing)`;

  let sealed = 0;
  const sealStart = performance.now();
  await withOperatorDb(settings, (db) =>
    withOperatorSession(
      db.kysely,
      { reason: 'trustctl bench: audit seal', orgSlugs: ['oak-trust'], command: 'bench/run.mjs' },
      async (session) => {
        const r = await sealAuditChain(session, { batchSize: 10_000 }, { logger });
        sealed = r[0].sealed;
      },
      { logger },
    ),
  );
  const sealSeconds = (performance.now() - sealStart) / 1000;
  const sealRate = sealed / sealSeconds;
  rows.push({
    key: 'seal.rate', value: sealRate, unit: '/s', n: sealed,
    job: 'audit seal',
    measure: `events/s (${sealed.toLocaleString('en-GB')} events, batches of 10,000)`,
    target: '≥ 100k/s',
    result: `${Math.round(sealRate).toLocaleString('en-GB')}/s`,
    baseline: '—',
    ratio: '—',
    verdict: sealRate >= 100_000 ? 'met' : `missed: ${(sealRate / 100_000).toFixed(2)}× the target`,
  });

  // Export with verification, in-process, sampling RSS; then COPY of the same rows.
  const out = await mkdtemp(join(tmpdir(), 'trustctl-bench-audit-'));
  try {
    let peak = process.memoryUsage().rss;
    const base = peak;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    let exported = 0;
    const exportStart = performance.now();
    await withOperatorDb(settings, (db) =>
      withOperatorSession(
        db.kysely,
        { reason: 'trustctl bench: audit export', orgSlugs: ['oak-trust'], command: 'bench/run.mjs' },
        async (session) => {
          const r = await exportAuditTrail(
            session,
            { org: 'oak-trust', filters: {}, format: 'csv', gzip: false, out: join(out, 'trail.csv') },
            { logger },
          );
          exported = r.manifest.rows;
          if (!r.manifest.verification.ok) throw new Error('bench export found problems');
        },
        { logger },
      ),
    );
    const exportSeconds = (performance.now() - exportStart) / 1000;
    clearInterval(sampler);
    const state = JSON.parse(await readFile(join(home, 'embedded.json'), 'utf8'));
    const url = `postgres://${state.superuser}:${encodeURIComponent(state.superPassword)}@127.0.0.1:${state.port}/trustctl`;
    const cols = EXPORT_COLUMNS.map((c) => (['chain_seq', 'prev_hash', 'hash'].includes(c) ? `c.${c}::text` : `e.${c}::text`)).join(', ');
    const copySql = `COPY (select ${cols} from audit_events e left join audit_chain c on c.org_id = e.org_id and c.event_id = e.id
      where e.org_id = '${orgId}' order by c.chain_seq nulls last, e.txid, e.id) TO STDOUT (FORMAT csv, HEADER)`;
    const copyStart = performance.now();
    const copy = spawnSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-c', 'set timezone = UTC', '-c', copySql], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const copySeconds = (performance.now() - copyStart) / 1000;
    if (copy.status !== 0) throw new Error(`COPY baseline failed: ${copy.stderr}`);
    const exportRate = exported / exportSeconds;
    const copyRate = exported / copySeconds;
    rows.push({
      key: 'export.rate', value: exportRate, unit: '/s', n: exported,
      job: 'audit export',
      measure: `rows/s with chain verification, CSV (${exported.toLocaleString('en-GB')} rows)`,
      target: '≥ 0.5 × COPY',
      result: `${Math.round(exportRate).toLocaleString('en-GB')}/s`,
      baseline: `${Math.round(copyRate).toLocaleString('en-GB')}/s \`COPY … TO STDOUT (FORMAT csv)\` via psql`,
      ratio: ratio(exportRate, copyRate),
      verdict: exportRate >= 0.5 * copyRate ? 'met' : `missed: ${(exportRate / copyRate).toFixed(2)}× COPY`,
    });
    const peakMb = (peak - base) / 2 ** 20;
    rows.push({
      key: 'export.rss', value: peakMb, unit: 'MB', n: exported,
      job: 'audit export',
      measure: `peak RSS growth during the export (${exported.toLocaleString('en-GB')} rows)`,
      target: '≤ 200 MB (at 10M rows)',
      result: `${peakMb.toFixed(0)} MB`,
      baseline: `${(base / 2 ** 20).toFixed(0)} MB RSS before`,
      ratio: '—',
      verdict: peakMb <= 200 ? 'met (on this size)' : `missed by ${(peakMb - 200).toFixed(0)} MB`,
    });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

async function benchSweep() {
  const { withAdminDb, withOperatorDb } = await dist('db/with-db.js');
  const { withOperatorSession } = await dist('db/operator-session.js');
  const { sweepOrganisation } = await dist('retention/sweep.js');
  await ensureSeeded();
  const n = sweepRows;
  // N attendance rows five years old at Ash Primary (swept, archive) and N at
  // Oak Primary (the baseline: one DELETE). A 4-year policy makes only these due.
  const ids = await withAdminDb(settings, async ({ pool }) => {
    const org = (await pool.query(`select org_id from organisations where slug = 'oak-trust'`)).rows[0].org_id;
    const site = async (slug) => (await pool.query(`select site_id from sites where org_id = $1 and slug = $2`, [org, slug])).rows[0].site_id;
    const ash = await site('ash-primary');
    const oak = await site('oak-primary');
    await pool.query(`delete from archive.attendance_records where org_id = $1`, [org]);
    await pool.query(`delete from retention_policies where org_id = $1 and category = 'attendance'`, [org]);
    await pool.query(`insert into retention_policies (org_id, site_id, category, keep_for, clock, action) values ($1, $2, 'attendance', '4 years', 'session_date', 'archive')`, [org, ash]);
    for (const s of [ash, oak]) {
      await pool.query(`
        insert into attendance_records (org_id, site_id, child_id, session_date, session, status)
        select $1, $2, c.id, current_date - interval '5 years' - ((i / 120) || ' days')::interval, case when i % 2 = 0 then 'am' else 'pm' end, 'present'
        from generate_series(1, $3::int) i
        cross join lateral (select id from children where org_id = $1 and site_id = $2 order by id offset (i % 20) limit 1) c`, [org, s, n]);
    }
    await pool.query('vacuum analyze attendance_records');
    return { org, ash, oak };
  });

  // Application writes: single-row inserts at Elm Academy at a steady 200 a
  // second, each timed, from a separate process (its own event loop and
  // connection), as the platform's request path would be.
  const WRITER = `
    import pg from 'pg';
    const [url, org, site, child, rate] = process.argv.slice(1);
    const c = new pg.Client(url);
    await c.connect();
    let stop = false;
    process.stdin.on('end', () => { stop = true; });
    process.stdin.resume();
    const lat = [];
    let next = performance.now();
    while (!stop) {
      const t = performance.now();
      await c.query("insert into attendance_records (org_id, site_id, child_id, session_date, session, status) values ($1, $2, $3, current_date, 'am', 'present')", [org, site, child]);
      lat.push(performance.now() - t);
      next += 1000 / Number(rate);
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await c.end();
    process.stdout.write(JSON.stringify(lat));`;
  const writerTarget = await withAdminDb(settings, async ({ pool }) =>
    (await pool.query(`select id, site_id from children where org_id = $1 and site_id not in ($2, $3) limit 1`, [ids.org, ids.ash, ids.oak])).rows[0]);
  const state = JSON.parse(await readFile(join(home, 'embedded.json'), 'utf8'));
  const adminUrl = `postgres://${state.superuser}:${encodeURIComponent(state.superPassword)}@127.0.0.1:${state.port}/trustctl`;
  function startWriter() {
    const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, adminUrl, ids.org, writerTarget.site_id, writerTarget.id, '200'], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).sort((a, b) => a - b)) : reject(new Error(`writer exited ${code}`))));
    });
    return { stop: () => child.stdin.end(), done };
  }
  const idleWriter = startWriter();
  await new Promise((r) => setTimeout(r, 10_000));
  idleWriter.stop();
  const idle = await idleWriter.done;

  await withAdminDb(settings, ({ pool }) => pool.query('checkpoint'));
  const busyWriter = startWriter();
  const t0 = performance.now();
  const report = await withOperatorDb(settings, (db) =>
    withOperatorSession(
      db.kysely,
      { reason: 'trustctl bench: retention sweep', orgSlugs: ['oak-trust'], command: 'bench/run.mjs' },
      (session) =>
        db.kysely.connection().execute((conn) =>
          sweepOrganisation(conn, session, { id: ids.org, slug: 'oak-trust' }, { categories: ['attendance'], batchSize: 200 })),
      { logger },
    ),
  );
  const sweepSeconds = (performance.now() - t0) / 1000;
  busyWriter.stop();
  const busy = await busyWriter.done;
  await withAdminDb(settings, ({ pool }) => pool.query('checkpoint'));
  const unit = report.find((u) => u.site === 'ash-primary');
  const swept = unit?.swept ?? 0;

  const d0 = performance.now();
  const deleted = await withAdminDb(settings, async ({ pool }) => {
    const r = await pool.query(`delete from attendance_records where org_id = $1 and site_id = $2 and session_date <= current_date - interval '4 years'`, [ids.org, ids.oak]);
    await pool.query(`delete from archive.attendance_records where org_id = $1`, [ids.org]);
    await pool.query(`delete from retention_policies where org_id = $1 and site_id = $2 and category = 'attendance'`, [ids.org, ids.ash]);
    return r.rowCount;
  });
  const deleteSeconds = (performance.now() - d0) / 1000;

  const sweepRate = swept / sweepSeconds;
  const deleteRate = deleted / deleteSeconds;
  dataset += `; sweep bench: ${n.toLocaleString('en-GB')} due attendance rows at each of two sites`;
  rows.push({
    key: 'sweep.rate', value: sweepRate, unit: '/s', n: swept,
    job: 'retention sweep',
    measure: `rows/s with archive (${swept.toLocaleString('en-GB')} rows, batches of 200, audit capture on)`,
    target: '≥ 0.5 × one DELETE',
    result: `${Math.round(sweepRate).toLocaleString('en-GB')}/s`,
    baseline: `${Math.round(deleteRate).toLocaleString('en-GB')}/s one \`DELETE … WHERE\` (${deleted.toLocaleString('en-GB')} rows)`,
    ratio: ratio(sweepRate, deleteRate),
    verdict: sweepRate >= 0.5 * deleteRate ? 'met' : `missed: ${(sweepRate / deleteRate).toFixed(3)}× (target 0.5×)`,
  });
  rows.push({
    key: 'sweep.longest', value: unit?.longestBatchMs ?? NaN, unit: 'ms', n: swept,
    job: 'retention sweep',
    measure: `longest transaction (the slowest of ${unit?.batches ?? '?'} batches)`,
    target: '≤ 250 ms',
    result: ms(unit?.longestBatchMs ?? NaN),
    baseline: `${ms(deleteSeconds * 1000)} the one DELETE`,
    ratio: '—',
    verdict: (unit?.longestBatchMs ?? Infinity) <= 250 ? 'met' : `missed by ${ms((unit?.longestBatchMs ?? 0) - 250)}`,
  });
  const p99busy = quantile(busy, 0.99);
  const p99idle = quantile(idle, 0.99);
  rows.push({
    key: 'writes.p99', value: p99busy, unit: 'ms', n: swept,
    job: 'app writes during a sweep',
    measure: `p99 latency of single-row inserts, 200/s from another process (${busy.length.toLocaleString('en-GB')} during, ${idle.length.toLocaleString('en-GB')} idle)`,
    target: '≤ 2 × idle',
    result: ms(p99busy),
    baseline: `${ms(p99idle)} with no sweep`,
    ratio: ratio(p99busy, p99idle),
    verdict: p99busy <= 2 * p99idle ? 'met' : `missed: ${(p99busy / p99idle).toFixed(2)}× (target 2×)`,
  });
}

function benchColdStart() {
  const runs = 21;
  const time = (argv) => {
    const times = [];
    for (let i = 0; i < runs; i += 1) {
      const t = performance.now();
      const r = spawnSync(process.execPath, argv, { cwd: root, stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b);
  };
  const cli = time([join(root, 'bin', 'trustctl.js'), '--help']);
  const node = time(['-e', '0']);
  const median = quantile(cli, 0.5);
  rows.push({
    key: 'cli.cold', value: median, unit: 'ms', n: 0,
    job: 'CLI cold start',
    measure: `\`trustctl --help\` wall time, median of ${runs}`,
    target: '≤ 200 ms',
    result: ms(median),
    baseline: `${ms(quantile(node, 0.5))} \`node -e 0\``,
    ratio: ratio(median, quantile(node, 0.5)),
    verdict: median <= 200 ? 'met' : `missed by ${ms(median - 200)}`,
  });
}

async function postgresVersion() {
  const { withAdminDb } = await dist('db/with-db.js');
  return withAdminDb(settings, async ({ pool }) => (await pool.query('show server_version')).rows[0].server_version);
}

const started = new Date();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const header = ['job', 'measure', 'target', 'result', 'baseline (same run)', 'ratio', 'verdict'];
const tableOf = (list) =>
  [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...list.map((r) => `| ${[r.job, r.measure, r.target, r.result, r.baseline, r.ratio, r.verdict].join(' | ')} |`),
  ].join('\n');

if (sizes.length === 1) {
  // One size: run the benchmarks here; stop and remove the database whatever happens.
  const { runShutdownCleanups } = await dist('lifecycle.js');
  let pg = 'n/a';
  try {
    if (only.has('cli')) benchColdStart();
    if (only.has('dsar')) await benchDsar();
    if (only.has('audit')) await benchAudit();
    if (only.has('sweep')) await benchSweep();
    if (only.has('dsar') || only.has('audit') || only.has('sweep')) pg = await postgresVersion();
  } finally {
    await runShutdownCleanups();
    if (!reuse) await rm(home, { recursive: true, force: true });
  }
  if (args['rows-out']) {
    await writeFile(args['rows-out'], JSON.stringify({ size, rows, dataset, pg, seededRows }));
  } else {
    process.stdout.write(`${tableOf(rows)}\n`);
    if (!args['no-write']) await writeResults([{ size, rows, dataset, pg, seededRows }]);
  }
} else {
  // Several sizes: each in its own process and database, then the growth between them.
  if (reuse) throw new Error('TRUSTCTL_BENCH_HOME reuses one database: pass one --scale size with it');
  const runs = [];
  const passThrough = ['subjects', 'seed', 'sweep-rows', 'audit-events'].flatMap((k) => (args[k] ? [`--${k}`, args[k]] : []));
  const benches = [...only].filter((b) => b !== 'cli');
  for (const sz of sizes) {
    if (benches.length === 0) break;
    process.stderr.write(`bench: ${sz.label} rows (${benches.join(', ')})\n`);
    const file = join(tmpdir(), `trustctl-bench-${process.pid}-${sz.label}.json`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--scale', sz.label, '--only', benches.join(','), '--rows-out', file, ...passThrough], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`bench at ${sz.label} exited ${r.status}`);
    runs.push(JSON.parse(await readFile(file, 'utf8')));
    await rm(file, { force: true });
  }
  if (only.has('cli')) {
    benchColdStart();
    const cold = rows.splice(0);
    if (runs.length > 0) runs[runs.length - 1].rows.unshift(...cold);
    else runs.push({ size, rows: cold, dataset: 'n/a', pg: 'n/a', seededRows: 0 });
  }
  process.stdout.write(`${tableOf(runs[runs.length - 1].rows)}\n\n${growthTable(runs)}\n`);
  if (!args['no-write']) await writeResults(runs);
}

/**
 * How each measure grew between the sizes: the value at each, the exponent
 * b of value ∝ size^b between the smallest and the largest, and for
 * throughput jobs the input size at which one run would take an hour,
 * extrapolated with that exponent.
 */
function growthTable(runs) {
  if (runs.length < 2) return '';
  const first = runs[0];
  const last = runs[runs.length - 1];
  const lines = [
    `| measure | ${runs.map((r) => `at ${r.size.label} (${r.seededRows.toLocaleString('en-GB')} rows)`).join(' | ')} | growth | one hour at |`,
    `| --- | ${runs.map(() => '---').join(' | ')} | --- | --- |`,
  ];
  for (const row of last.rows) {
    if (!row.key || row.key === 'cli.cold') continue;
    const a = first.rows.find((x) => x.key === row.key);
    if (!a) continue;
    const fmt = (x) => (x.unit === '/s' ? `${Math.round(x.value).toLocaleString('en-GB')}/s (n = ${x.n.toLocaleString('en-GB')})` : `${x.value.toFixed(1)} ${x.unit}${x.unit === 'MB' ? ` (n = ${x.n.toLocaleString('en-GB')})` : ''}`);
    const cells = runs.map((r) => {
      const x = r.rows.find((y) => y.key === row.key);
      return x ? fmt(x) : '—';
    });
    // For throughput: rate ∝ n^b over the job's own input size; else value ∝ dataset size^b.
    const xa = a.unit === '/s' ? a.n : first.seededRows;
    const xb = row.unit === '/s' ? row.n : last.seededRows;
    // Two inputs of nearly the same size say nothing about growth.
    const comparable = xb / xa >= 2;
    const b = Math.log(row.value / a.value) / Math.log(xb / xa);
    let hour = '—';
    if (row.unit === '/s' && comparable) {
      // A rate that rose with size (fixed costs spread over more rows) is not
      // extrapolated upwards: from the largest size on it is taken as flat.
      const bx = Math.min(b, 0);
      const [r0, n0] = bx === 0 ? [row.value, row.n] : [a.value, a.n];
      // time(n) = n / (r0 · (n / n0)^bx) = 3600  =>  n = (3600 · r0 · n0^-bx)^(1 / (1 - bx))
      const n = (3600 * r0 * n0 ** -bx) ** (1 / (1 - bx));
      hour = `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M rows`;
    }
    const growth = comparable ? `${(row.value / a.value).toFixed(2)}× (b = ${b.toFixed(2)})` : `${(row.value / a.value).toFixed(2)}× (inputs too close for an exponent)`;
    lines.push(`| ${row.job}: ${row.key} | ${cells.join(' | ')} | ${growth} | ${hour} |`);
  }
  return lines.join('\n');
}

async function writeResults(runs) {
  const last = runs[runs.length - 1];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, PostgreSQL ${last.pg} (embedded)`;
  const growth = growthTable(runs);
  await writeFile(
    join(root, 'bench', 'RESULTS.md'),
    `# Benchmark results

Written by \`bench/run.mjs\`; do not edit by hand.

- Command: \`${command}\`
- When: ${started.toISOString()}
- Machine: ${machine}
${runs.map((r) => `- Dataset at ${r.size.label}: ${r.dataset || 'n/a'}`).join('\n')}

## Against DESIGN.md's targets, at ${last.size.label}

${tableOf(last.rows)}
${growth ? `
## Growth between ${runs.map((r) => r.size.label).join(' and ')}

Each measure at each size, its growth from the smallest to the largest size, and b in
value ∝ size^b (for rates, size is the job's own input: events sealed, rows exported or
swept; otherwise the database's rows). "One hour at" extrapolates, with that exponent (or
flat, where a rate rose with size), the input size at which one run of the job takes an
hour on this machine.

${growth}
` : ''}
Notes:
- The dataset is the demo seed plus \`trustctl db seed --scale\`: many organisations and sites
  of uneven size, with up to two years of registers per child. The audit benchmark adds
  its events to oak-trust's trail (a single organisation's chain is the unit of sealing and
  export); the sweep benchmark adds due attendance rows at two oak-trust schools.
- The raw-lookup baseline runs the same per-table SELECTs in one REPEATABLE READ transaction
  and discards the rows; the export also writes JSON, CSV and HTML (and copies and hashes
  media: scale children have none, demo children do), zips, and records the audit event and
  the DPO record. p95 is over the subjects measured (--subjects, default 200).
- The sweep's due rows are inserted for the benchmark (1/10 of the size, 5+ years old, on 20
  children at one school); the baseline DELETE runs alone. The writer runs as the superuser
  (RLS and the platform's own policies are not in its path) at a steady 200 inserts a second
  from a separate process; a CHECKPOINT precedes the sweep and the DELETE.
- "Longest transaction" is a maximum, so it grows with the number of batches as well as with
  the data; each figure is one run.
- The database is vacuumed and analysed after seeding, as autovacuum would have done.
`,
  );
  process.stderr.write('Wrote bench/RESULTS.md\n');
}
