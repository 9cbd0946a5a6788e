// Mutation testing (npm run mutate, StrykerJS): the CLI tests run the built
// binary in a child process, which Stryker's test runner does not see. This
// carries the active mutant (and the hit limit that stops a mutant looping
// for ever) into such a child, and brings the child's mutant coverage back
// to the test that started it, so Stryker's per-test coverage knows which
// tests reach a mutant through the CLI. Outside a Stryker run it does nothing.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Hits = Record<string, number>;

interface StrykerNamespace {
  activeMutant?: string;
  currentTestId?: string;
  hitLimit?: number;
  mutantCoverage?: { static: Hits; perTest: Record<string, Hits> };
}

/** What a test adds to a CLI child's node arguments and environment, and what it calls once the child has exited. */
export interface StrykerChild {
  readonly nodeArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  collect(): void;
}

const CHILD_HOOK = fileURLToPath(new URL('./stryker-child.mjs', import.meta.url));

/**
 * @example
 * const bridge = strykerChild();
 * const child = spawn(process.execPath, [...bridge.nodeArgs, BIN, ...args], { env: { ...process.env, ...bridge.env } });
 * child.on('close', () => bridge.collect());
 */
export function strykerChild(): StrykerChild {
  const ns = (globalThis as { __stryker__?: StrykerNamespace }).__stryker__;
  if (!ns) return { nodeArgs: [], env: {}, collect: () => undefined };
  const env: Record<string, string> = {};
  let coverageFile: string | undefined;
  if (ns.activeMutant !== undefined) {
    env.__STRYKER_ACTIVE_MUTANT__ = String(ns.activeMutant);
    if (ns.hitLimit !== undefined) env.TRUSTCTL_STRYKER_HIT_LIMIT = String(ns.hitLimit);
  } else {
    coverageFile = join(tmpdir(), `trustctl-stryker-${process.pid}-${randomBytes(6).toString('hex')}.json`);
    env.TRUSTCTL_STRYKER_COVERAGE_FILE = coverageFile;
  }
  const testId = ns.currentTestId;
  return {
    nodeArgs: ['--import', CHILD_HOOK],
    env,
    collect() {
      if (!coverageFile) return;
      let child: StrykerNamespace['mutantCoverage'];
      try {
        child = JSON.parse(readFileSync(coverageFile, 'utf8')) as StrykerNamespace['mutantCoverage'];
      } catch {
        return; // killed before it could write: it covered nothing we can know of
      } finally {
        rmSync(coverageFile, { force: true });
      }
      if (!child) return;
      const coverage = (ns.mutantCoverage ??= { static: {}, perTest: {} });
      // Everything the child ran, at load or later, ran for this test.
      const into = testId === undefined ? coverage.static : (coverage.perTest[testId] ??= {});
      for (const hits of [child.static, ...Object.values(child.perTest)]) {
        for (const [mutant, n] of Object.entries(hits)) into[mutant] = (into[mutant] ?? 0) + n;
      }
    },
  };
}
