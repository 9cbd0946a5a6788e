// Runs many child processes (CLI runs, verifies) a few at a time: the suite
// runs on two cores beside other suites, so more at once only queues.

/**
 * Maps items through fn, at most `width` at a time, keeping their order.
 *
 * @example
 * const results = await inParallel(cases, 2, (c) => runCli(c.argv))
 */
export async function inParallel<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}
