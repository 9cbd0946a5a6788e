import { defineConfig } from 'vitest/config';
import FileOrder from './tests/support/file-order.js';

export default defineConfig({
  test: {
    // Each integration file gets its own database; two cores, so two at a time.
    maxWorkers: 2,
    // vitest's order, unless TRUSTCTL_TEST_FILE_ORDER names one (mutation testing).
    sequence: { sequencer: FileOrder },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          // Mutation testing only (npm run mutate); a no-op otherwise.
          setupFiles: ['tests/support/stryker-hooks.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts', 'tests/attacks/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup.ts'],
          setupFiles: ['tests/support/stryker-hooks.ts'],
          // Three times what the slowest test takes on this 2-core machine under load (docs/testing.md).
          testTimeout: 180_000,
          hookTimeout: 360_000,
        },
      },
    ],
  },
});
