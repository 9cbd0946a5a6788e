// StrykerJS over the core (npm run mutate; scripts/mutate.mjs passes --files
// and writes the score to docs/testing.md). Not part of CI: on 2 cores a run
// over all of it takes hours.
//
// Many tests run the built CLI (bin/trustctl.js → dist/) in a child process,
// so the sandbox builds dist/ from the instrumented src/ (buildCommand; dist/
// itself is not copied), and tests/support/stryker-bridge.ts hands the
// active mutant to those children and brings their coverage back to the test
// that started them: per-test coverage then counts the CLI tests too.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: ['src/dsar/**/*.ts', 'src/audit/**/*.ts', 'src/retention/**/*.ts', 'src/access/**/*.ts', 'src/datamap/**/*.ts'],
  testRunner: 'vitest',
  // related: false — the CLI tests do not import what they exercise.
  vitest: { configFile: 'vitest.config.ts', related: false },
  coverageAnalysis: 'perTest',
  buildCommand: 'npm run build',
  ignorePatterns: ['/dist', '/coverage', '/reports', '/test-results.json', '/test-output', '/.trustctl', '/out'],
  // One test runner, and vitest inside it one worker (the runner forces that):
  // other suites share these 2 cores.
  concurrency: 1,
  // The integration suite takes tens of minutes on this machine when busy.
  dryRunTimeoutMinutes: 180,
  timeoutMS: 120_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress-append-only', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/stryker.json' },
  htmlReporter: { fileName: 'reports/mutation/stryker.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 80, low: 60, break: null },
};
