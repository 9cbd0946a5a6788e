// The order test files run in. vitest's own order (failed first, then the
// longest) is kept, except when TRUSTCTL_TEST_FILE_ORDER lists files
// (comma-separated, relative to the project root): SQL mutation testing
// (scripts/mutate-sql.mjs) runs first the files likeliest to kill a mutant
// soon, with --bail, so a killed mutant costs a short run.
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export default class FileOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const order = (process.env.TRUSTCTL_TEST_FILE_ORDER ?? '').split(',').filter(Boolean);
    if (order.length === 0) return super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = order.indexOf(relative(this.ctx.config.root, f.moduleId));
      return i < 0 ? order.length : i;
    };
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}
