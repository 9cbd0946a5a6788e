// A setup file (vitest.config.ts): in Stryker's coverage run (npm run
// mutate), what a test file's beforeAll and afterAll hooks reach is counted
// for every test of that file, not as "static". Stryker runs a static mutant
// with every test of the suite, and nearly everything the integration tests
// do starts in a beforeAll (a database, a sealed trail, a key made with the
// CLI), so without this almost every mutant is static and a run takes days.
// It is sound here because each test file works on its own database and
// folders (tests/support/db.ts): a file's hooks feed only that file's tests,
// and Stryker runs a file's hooks whenever it runs any of its tests, with the
// mutant already active (its own setup file's beforeAll runs first). What
// runs while a file is imported stays static, as it must: a mutant there is
// only active if the module is loaded again. Outside a Stryker run, nothing.
import { afterAll, beforeAll } from 'vitest';

type Hits = Record<string, number>;
interface StrykerNamespace {
  activeMutant?: string;
  mutantCoverage?: { static: Hits; perTest: Record<string, Hits> };
}
interface TaskLike {
  readonly type: string;
  readonly name: string;
  readonly suite?: TaskLike;
  readonly file?: { readonly filepath: string };
  readonly tasks?: readonly TaskLike[];
}

const ns = (globalThis as { __stryker__?: StrykerNamespace }).__stryker__;
if (ns) {
  let before: Hits | undefined;
  beforeAll(() => {
    if (ns.activeMutant !== undefined) return; // a mutant run: coverage is not read
    before = { ...(ns.mutantCoverage?.static ?? {}) };
  });
  // vitest reads hook arguments as fixtures: the first must be a destructuring pattern.
  // eslint-disable-next-line no-empty-pattern
  afterAll(({}, file) => {
    const coverage = ns.mutantCoverage;
    if (!before || !coverage) return;
    const hooks: Hits = {};
    for (const [mutant, n] of Object.entries(coverage.static)) {
      const added = n - (before[mutant] ?? 0);
      if (added <= 0) continue;
      hooks[mutant] = added;
      if (before[mutant]) coverage.static[mutant] = before[mutant]!;
      else delete coverage.static[mutant];
    }
    if (Object.keys(hooks).length === 0) return;
    for (const id of testIds(file as TaskLike)) {
      const into = (coverage.perTest[id] ??= {});
      for (const [mutant, n] of Object.entries(hooks)) into[mutant] = (into[mutant] ?? 0) + n;
    }
  });
}

/** Stryker's raw test ids (@stryker-mutator/vitest-runner's toRawTestId) of every test under a suite. */
function testIds(suite: TaskLike): string[] {
  return (suite.tasks ?? []).flatMap((task) => {
    if (task.type === 'suite') return testIds(task);
    if (task.type !== 'test') return [];
    const names = [task.name];
    for (let s = task.suite; s; s = s.suite) names.unshift(s.name);
    return [`${task.file?.filepath ?? 'unknown.js'}#${names.join(' ').trim()}`];
  });
}
