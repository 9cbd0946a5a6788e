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
//   npm run mutate -- --sql-only --sql-no-baseline    # skip the run without a mutant (one just passed)
//   npm run mutate -- --test-files 'tests/unit/**,tests/integration/audit-*.test.ts'   # fewer tests: a weaker, faster run
//
// A part that is not run leaves its block of docs/testing.md as it was.
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_TESTS, mutateSql } from './mutate-sql.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(root, 'docs', 'testing.md');

const { values: args } = parseArgs({
  options: {
    files: { type: 'string' },
    'test-files': { type: 'string' },
    'ts-only': { type: 'boolean', default: false },
    'sql-only': { type: 'boolean', default: false },
    'max-sql': { type: 'string', default: '20' },
    'only-sql': { type: 'string' },
    'sql-minutes': { type: 'string' },
    'sql-no-baseline': { type: 'boolean', default: false },
    'ignore-static': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
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
  const { Stryker } = await import('@stryker-mutator/core');
  const options = { configFile: join(root, 'stryker.config.mjs') };
  if (list(args.files)) options.mutate = list(args.files);
  if (list(args['test-files'])) options.testFiles = list(args['test-files']);
  if (args['ignore-static']) options.ignoreStatic = true;
  const results = await new Stryker(options).runMutationTest();
  const config = (await import(join(root, 'stryker.config.mjs'))).default;
  const scope = list(args.files) ?? config.mutate;
  const block = await tsBlock(results, { scope, testFiles: list(args['test-files']), seconds: Math.round((Date.now() - started) / 1000) });
  if (!args['no-docs']) await writeBlock('ts', block);
  process.stderr.write(`${block.split('\n').slice(0, 6).join('\n')}\n`);
}

if (!args['ts-only']) {
  const summary = await mutateSql({ max: Number(args['max-sql']), minutes: args['sql-minutes'] ? Number(args['sql-minutes']) : undefined, only: args['only-sql'], baseline: !args['sql-no-baseline'], tests: DEFAULT_TESTS, out: join(root, 'reports', 'mutation', 'sql.json') });
  const block = sqlBlock(summary);
  if (!args['no-docs']) await writeBlock('sql', block);
  process.stderr.write(`${block.split('\n').slice(0, 6).join('\n')}\n`);
}

function quote(a) {
  return /^[\w./=,:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function minutes(seconds) {
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

async function tsBlock(results, { scope, testFiles, seconds }) {
  const by = (status) => results.filter((r) => r.status === status);
  const killed = by('Killed').length;
  const timeout = by('Timeout').length;
  const survived = by('Survived');
  const noCoverage = by('NoCoverage');
  const detected = killed + timeout;
  const valid = detected + survived.length + noCoverage.length;
  const score = valid ? ((100 * detected) / valid).toFixed(1) : 'n/a';
  const covered = detected + survived.length;
  const coveredScore = covered ? ((100 * detected) / covered).toFixed(1) : 'n/a';
  const others = ['CompileError', 'RuntimeError', 'Ignored'].map((s) => `${by(s).length} ${s}`).join(', ');
  const lines = [
    `Last run: ${new Date().toISOString().slice(0, 10)}, \`${command}\`, ${minutes(seconds)} on this machine (2 cores, shared).`,
    `Scope: ${scope.map((s) => `\`${s}\``).join(', ')}; tests: ${testFiles ? testFiles.map((s) => `\`${s}\``).join(', ') : 'the whole suite (unit and integration)'}.`,
    '',
    `**Mutation score ${score}%** (${detected} detected: ${killed} killed, ${timeout} timed out; ${survived.length} survived; ${noCoverage.length} not covered by any test; ${others}). Of the covered mutants, ${coveredScore}% are detected.`,
    '',
  ];
  const survivors = [...survived, ...noCoverage].sort((a, b) => a.fileName.localeCompare(b.fileName) || a.location.start.line - b.location.start.line);
  if (survivors.length) {
    lines.push(`Survivors (${survivors.length}; the HTML report, reports/mutation/stryker.html, shows each in its file):`, '');
    const sources = new Map();
    const shown = survivors.slice(0, 300);
    for (const m of shown) {
      const file = relative(root, m.fileName);
      if (!sources.has(file)) sources.set(file, (await readFile(join(root, file), 'utf8')).split('\n'));
      const original = excerpt(sources.get(file), m.location);
      lines.push(`- ${file}:${m.location.start.line} ${m.mutatorName}${m.status === 'NoCoverage' ? ' (no test covers it)' : ''}: \`${clip(original)}\` → \`${clip(m.replacement ?? '')}\``);
    }
    if (survivors.length > shown.length) lines.push(`- … and ${survivors.length - shown.length} more in reports/mutation/stryker.json`);
  }
  return lines.join('\n');
}

function excerpt(lines, { start, end }) {
  if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
  return [lines[start.line - 1].slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1].slice(0, end.column - 1)].join(' ');
}

function clip(text, max = 80) {
  const t = text.replace(/\s+/g, ' ').replace(/`/g, "'").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function sqlBlock(s) {
  const killed = s.results.filter((r) => r.status === 'killed');
  const survived = s.results.filter((r) => r.status === 'survived');
  const errors = s.results.filter((r) => r.status === 'error');
  const decided = killed.length + survived.length;
  const score = decided ? ((100 * killed.length) / decided).toFixed(1) : 'n/a';
  const lines = [
    `Last run: ${s.date.slice(0, 10)}, \`${command}\`, ${minutes(s.seconds)} on this machine (2 cores, shared).`,
    `Catalog: ${s.total} mutants (${Object.entries(s.counts).map(([k, n]) => `${k} ${n}`).join(', ')}; ${s.invalid.length} more refused by PostgreSQL and not counted); ${s.results.length} run${s.only ? `, those matching \`${s.only}\`` : ''}, spread over the kinds. Tests: ${s.tests.map((t) => `\`${t}\``).join(', ')}.`,
    '',
    `**${killed.length} of ${decided} killed (${score}%)**, ${survived.length} survived${errors.length ? `; ${errors.length} ended without a test report (not counted)` : ''}.${s.results.length < s.chosen ? ` ${s.chosen - s.results.length} more were chosen but not run: the ${s.minutes}-minute budget was spent.` : ''}`,
    '',
    '| mutant | change | result |',
    '| --- | --- | --- |',
    ...s.results.map((r) => `| ${cell(r.id)} | ${cell(r.change)} | ${r.status === 'killed' ? `killed by ${cell(r.killedBy)}` : r.status === 'error' ? `error: ${cell(r.error)}` : '**survived**'} |`),
  ];
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
