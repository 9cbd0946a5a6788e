// Preloaded (node --import) into CLI children during a Stryker run, by
// tests/support/stryker-bridge.ts: sets the hit limit of the active mutant
// (the instrumented code reads the mutant itself from __STRYKER_ACTIVE_MUTANT__),
// and in the coverage run writes the child's mutant coverage where the test
// that started it will read it.
import { writeFileSync } from 'node:fs';

const ns = (globalThis.__stryker__ ??= {});
if (process.env.TRUSTCTL_STRYKER_HIT_LIMIT) {
  ns.hitLimit = Number(process.env.TRUSTCTL_STRYKER_HIT_LIMIT);
  ns.hitCount = 0;
}
const file = process.env.TRUSTCTL_STRYKER_COVERAGE_FILE;
if (file) {
  process.on('exit', () => {
    try {
      writeFileSync(file, JSON.stringify(ns.mutantCoverage ?? { static: {}, perTest: {} }));
    } catch {
      // a child under a file-size limit (one-line-errors.test.ts) may not write it
    }
  });
}
