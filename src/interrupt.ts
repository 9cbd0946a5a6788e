// Work to do if the user interrupts (Ctrl-C): close an operator session as
// "interrupted", stop an embedded server. src/cli.ts runs these on SIGINT.
type Cleanup = () => Promise<void>;

const cleanups = new Set<Cleanup>();

/** Registers a cleanup; returns a function that unregisters it. */
export function onInterrupt(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Runs every registered cleanup once, newest first, each bounded in time. */
export async function runInterruptCleanups(timeoutMs = 5000): Promise<void> {
  const list = [...cleanups].reverse();
  cleanups.clear();
  for (const cleanup of list) {
    await Promise.race([cleanup().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}
