#!/usr/bin/env node
// npm run mutate: mutation testing over the core (StrykerJS, stryker.config.mjs)
// and over the SQL definitions (scripts/mutate-sql.mjs), then the score and
// the surviving mutants written to docs/testing.md between the markers of
// each part. Not part of CI: on 2 cores a full run takes hours.
//
//   npm run mutate                                   # both, the whole default scope
//   npm run mutate -- --files src/audit/canonical.ts # TypeScript, one file (comma-separate more, globs allowed)
//   npm run mutate -- --ts-only --files 'src/audit/**/*.ts,src/datamap/**/*.ts'
//   npm run mutate -- --sql-only --max-sql 20 --only-sql 'live_roles|policy-org'
//   npm run mutate -- --sql-only --sql-minutes 90     # start no SQL mutant after 90 minutes
//   npm run mutate -- --test-files 'tests/unit/**,tests/integration/audit-*.test.ts'   # fewer tests: a weaker, faster run
//
// A part that is not run leaves its block of docs/testing.md as it was.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_TESTS, SQL_LEDGER, mutateSql } from './mutate-sql.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(root, 'docs', 'testing.md');
const TS_LEDGER = join(root, 'docs', 'mutation', 'ts-results.json');
// Mutants shown equivalent, each with why: { sql: { id: why }, ts: { 'file:line mutator change': why } }.
const EQUIVALENT = join(root, 'docs', 'mutation', 'equivalent.json');

const { values: args } = parseArgs({
  options: {
    files: { type: 'string' },
    'test-files': { type: 'string' },
    'ts-only': { type: 'boolean', default: false },
    'sql-only': { type: 'boolean', default: false },
    'max-sql': { type: 'string', default: '20' },
    'only-sql': { type: 'string' },
    'sql-rerun': { type: 'boolean', default: false },
    'sql-fresh-baseline': { type: 'boolean', default: false },
    'sql-minutes': { type: 'string' },
    'ignore-static': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
  },
});
const list = (s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
const command = `npm run mutate${process.argv.length > 2 ? ` -- ${process.argv.slice(2).map(quote).join(' ')}` : ''}`;

// The SQL part runs the tests here, so the built CLI must be current; the
// TypeScript part builds its own in Stryker's sandbox.
if (!args['ts-only']) {
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

if (!args['sql-only']) {
  const started = Date.now();
  // Local time away from UTC (this machine runs in UTC), so a time read in the wrong
  // zone is seen: Stryker's vitest workers are threads, which cannot change it themselves
  // (tests/unit/duration.test.ts does in an ordinary run).
  const tz = process.env.TZ;
  process.env.TZ = 'America/St_Johns';
  const { Stryker } = args['report-only'] ? {} : await import('@stryker-mutator/core');
  const options = { configFile: join(root, 'stryker.config.mjs') };
  if (list(args.files)) options.mutate = list(args.files);
  if (list(args['test-files'])) options.testFiles = list(args['test-files']);
  if (args['ignore-static']) options.ignoreStatic = true;
  const results = args['report-only'] ? [] : await new Stryker(options).runMutationTest();
  if (tz === undefined) delete process.env.TZ;
  else process.env.TZ = tz;
  const block = await tsBlock(results, { testFiles: list(args['test-files']), seconds: Math.round((Date.now() - started) / 1000) });
  if (!args['no-docs']) await writeBlock('ts', block);
  process.stderr.write(`${block.split('\n').slice(0, 6).join('\n')}\n`);
}

if (!args['ts-only']) {
  const summary = await mutateSql({ max: args['report-only'] ? 0 : Number(args['max-sql']), minutes: args['sql-minutes'] ? Number(args['sql-minutes']) : undefined, only: args['only-sql'], rerun: args['sql-rerun'], freshBaseline: args['sql-fresh-baseline'], tests: DEFAULT_TESTS, out: join(root, 'reports', 'mutation', 'sql.json'), ledger: SQL_LEDGER });
  // The latest run that ran mutants is kept in the ledger, for the report.
  const book = await readJson(SQL_LEDGER, { mutants: {} });
  if (summary.results.length) {
    book.lastRun = { date: summary.date, command, mutants: summary.results.length, seconds: summary.seconds, unfinished: summary.chosen - summary.results.length, minutes: summary.minutes };
    await writeJson(SQL_LEDGER, book);
  }
  const block = sqlBlock(summary, book.lastRun, await readJson(EQUIVALENT, { sql: {}, ts: {} }));
  if (!args['no-docs']) await writeBlock('sql', block);
  process.stderr.write(`${block.split('\n').slice(0, 6).join('\n')}\n`);
}

function quote(a) {
  return /^[\w./=,:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function minutes(seconds) {
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

/**
 * Records this run's results per file in the ledger (docs/mutation/ts-results.json,
 * with a digest of each file: a file changed since its run no longer counts) and
 * writes the block for docs/testing.md from every current result in the scope.
 */
async function tsBlock(results, { testFiles, seconds }) {
  const book = await readJson(TS_LEDGER, { files: {} });
  const date = new Date().toISOString().slice(0, 10);
  const byFile = new Map();
  for (const r of results) byFile.set(relative(root, r.fileName), [...(byFile.get(relative(root, r.fileName)) ?? []), r]);
  for (const [file, list] of byFile) {
    const lines = (await readFile(join(root, file), 'utf8')).split('\n');
    book.files[file] = {
      digest: await fileDigest(file),
      date,
      command,
      tests: testFiles ?? 'the whole suite',
      mutants: list
        .sort((x, y) => x.location.start.line - y.location.start.line || x.location.start.column - y.location.start.column)
        .map((m) => ({
          line: m.location.start.line,
          mutator: m.mutatorName,
          change: `${clip(excerpt(lines, m.location))} → ${clip(m.replacement ?? '')}`,
          status: m.status,
          ...(m.status === 'Killed' && m.killedBy?.length ? { killedBy: m.killedBy.length } : {}),
        })),
    };
  }
  if (results.length) book.lastRun = { date, command, seconds, tests: testFiles ?? null };
  await writeJson(TS_LEDGER, { ...book, files: Object.fromEntries(Object.entries(book.files).sort(([x], [y]) => x.localeCompare(y))) });
  const last = book.lastRun;

  const config = (await import(join(root, 'stryker.config.mjs'))).default;
  const inScope = [];
  // The scope's patterns are folder/**/*.ts.
  for (const pattern of config.mutate) {
    const dir = pattern.replace(/\/\*\*\/\*\.ts$/, '');
    for (const f of await readdir(join(root, dir), { recursive: true })) if (f.endsWith('.ts')) inScope.push(join(dir, f));
  }
  inScope.sort();
  const equivalent = await readJson(EQUIVALENT, { sql: {}, ts: {} });
  const equivalents = [];
  const rows = [];
  let without = 0;
  const total = { detected: 0, survived: 0, noCoverage: 0 };
  const survivors = [];
  for (const file of inScope) {
    const entry = book.files[file];
    if (!entry) {
      without++;
      rows.push(`| ${file} | not run yet | | | | |`);
      continue;
    }
    if (entry.digest !== (await fileDigest(file))) {
      without++;
      rows.push(`| ${file} | changed since its run of ${entry.date} | | | | |`);
      continue;
    }
    const equivalentHere = entry.mutants.filter((m) => m.status !== 'Killed' && m.status !== 'Timeout' && equivalent.ts[`${file}:${m.line} ${m.mutator} ${m.change}`]);
    for (const m of equivalentHere) equivalents.push(`- ${file}:${m.line} ${m.mutator}: \`${m.change.replace(/`/g, "'")}\` — ${equivalent.ts[`${file}:${m.line} ${m.mutator} ${m.change}`]}`);
    const n = (st) => entry.mutants.filter((m) => st.includes(m.status) && !equivalentHere.includes(m)).length;
    const detected = n(['Killed', 'Timeout']);
    const survived = n(['Survived']);
    const noCoverage = n(['NoCoverage']);
    total.detected += detected;
    total.survived += survived;
    total.noCoverage += noCoverage;
    const valid = detected + survived + noCoverage;
    rows.push(`| ${file} | ${entry.date} | ${valid} | ${detected} | ${survived} | ${noCoverage} | ${valid ? ((100 * detected) / valid).toFixed(1) : 'n/a'}% |`);
    // Survivors one by one; mutants no test reaches are counted per file (the table), and
    // listed one by one in the ledger: with unit tests only they run to hundreds.
    for (const m of entry.mutants) if (m.status === 'Survived' && !equivalentHere.includes(m)) survivors.push(`- ${file}:${m.line} ${m.mutator}: \`${m.change.replace(/`/g, "'")}\``);
  }
  const valid = total.detected + total.survived + total.noCoverage;
  const lines = [
    `${last ? `Latest run: ${last.date}, \`${last.command}\`, ${minutes(last.seconds)} on this machine (2 cores, shared); tests: ${last.tests ? last.tests.map((s) => `\`${s}\``).join(', ') : 'the whole suite (unit and integration)'}.` : 'No run yet.'} Each file's latest result, and the tests it ran with, is kept in \`docs/mutation/ts-results.json\`.`,
    '',
    `**Mutation score ${valid ? ((100 * total.detected) / valid).toFixed(1) : 'n/a'}%** over the files with a current result (${total.detected} of ${valid} mutants detected: killed or timed out; ${total.survived} survived, ${total.noCoverage} reached by no test); ${without} of ${inScope.length} files in the scope have none.`,
    '',
    '| file | run | mutants | detected | survived | no test | score |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ];
  if (survivors.length) lines.push('', `Survived (${survivors.length}; each a test to write or a mutant to show equivalent):`, '', ...survivors);
  if (total.noCoverage) lines.push('', `Reached by no test that ran: ${total.noCoverage}, counted per file in the table and listed with status NoCoverage in \`docs/mutation/ts-results.json\`.`);
  if (equivalents.length) lines.push('', `Equivalent (${equivalents.length}, not counted), with why:`, '', ...equivalents);
  return lines.join('\n');
}

async function fileDigest(file) {
  return createHash('sha256').update(await readFile(join(root, file))).digest('hex').slice(0, 16);
}

async function readJson(file, fallback) {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return fallback;
    throw error;
  }
}

async function writeJson(file, value) {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify(value, null, 1)}\n`);
  await rename(`${file}.tmp`, file);
}

function excerpt(lines, { start, end }) {
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
  return [lines[start.line - 1].slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1].slice(0, end.column - 1)].join(' ');
}

function clip(text, max = 80) {
  const t = text.replace(/\s+/g, ' ').replace(/`/g, "'").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function sqlBlock(s, last, equivalent) {
  // A mutant shown equivalent (docs/mutation/equivalent.json, with why) is not counted.
  const ran = s.catalog.filter((m) => m.result && !(m.result.status !== 'killed' && equivalent.sql[m.id]));
  const shownEquivalent = s.catalog.filter((m) => m.result && m.result.status !== 'killed' && equivalent.sql[m.id]);
  const of = (list, status) => list.filter((m) => m.result?.status === status);
  const pct = (k, n) => (n ? `${((100 * k) / n).toFixed(1)}%` : 'n/a');
  const killed = of(ran, 'killed').length;
  const undetected = [...of(ran, 'survived'), ...of(ran, 'no-coverage')];
  const kinds = [...new Set(s.catalog.map((m) => m.kind))].sort();
  const lines = [
    `${last ? `Latest run: ${last.date.slice(0, 10)}, \`${last.command}\`, ${last.mutants} mutants in ${minutes(last.seconds)} on this machine (2 cores, shared)${last.unfinished ? `; ${last.unfinished} more were chosen but the ${last.minutes}-minute budget was spent` : ''}.` : 'No run yet.'} Every mutant's latest result is kept in \`docs/mutation/sql-results.json\`; a result whose mutant changed (its function or policy was redefined) no longer counts.`,
    `Catalog: ${s.total} mutants (${s.invalid.length} more refused by PostgreSQL and not counted); **${ran.length} have a current result**.`,
    '',
    `**${killed} of ${ran.length} killed (${pct(killed, ran.length)})**: ${of(ran, 'survived').length} survived, ${of(ran, 'no-coverage').length} reached by no test.`,
    '',
    '| kind | in catalog | run (equivalents aside) | killed | survived | no test reaches it | killed of run |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...kinds.map((k) => {
      const all = s.catalog.filter((m) => m.kind === k);
      const r = ran.filter((m) => m.kind === k);
      return `| ${k} | ${all.length} | ${r.length} | ${of(r, 'killed').length} | ${of(r, 'survived').length} | ${of(r, 'no-coverage').length} | ${pct(of(r, 'killed').length, r.length)} |`;
    }),
    '',
  ];
  if (undetected.length) {
    lines.push('Not detected (each a test to write, or a mutant to show equivalent below):', '', '| mutant | change | result |', '| --- | --- | --- |');
    for (const m of undetected) lines.push(`| ${cell(m.id)} | ${cell(m.change)} | ${m.result.status === 'survived' ? `survived ${m.result.files.length} test file${m.result.files.length === 1 ? '' : 's'}` : 'no test reaches it'} |`);
  }
  if (shownEquivalent.length) {
    lines.push('', `Equivalent (${shownEquivalent.length}, not counted: no test can tell them from the original, for the reason given):`, '', '| mutant | change | why it is equivalent |', '| --- | --- | --- |');
    for (const m of shownEquivalent) lines.push(`| ${cell(m.id)} | ${cell(m.change)} | ${cell(equivalent.sql[m.id])} |`);
  }
  return lines.join('\n');
}

function cell(text) {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

async function writeBlock(part, block) {
  const begin = `<!-- mutation:${part}:begin (written by npm run mutate) -->`;
  const end = `<!-- mutation:${part}:end -->`;
  const doc = await readFile(DOC, 'utf8');
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/testing.md has no ${begin} … ${end} block: add it back to the Mutation testing section`);
  await writeFile(DOC, `${doc.slice(0, from + begin.length)}\n${block}\n${doc.slice(to)}`);
}
