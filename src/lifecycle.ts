// What must happen when a command ends, or is interrupted, without src/cli.ts
// importing (and so loading at start-up) the modules that need it:
// - onInterrupt: close an operator session as "interrupted" (Ctrl-C, SIGTERM);
// - onShutdown: stop an embedded server this process started (always).
type Cleanup = () => Promise<void>;

const interruptCleanups = new Set<Cleanup>();
const shutdownCleanups = new Set<Cleanup>();

/** Registers work to do on interrupt; returns a function that unregisters it. */
export function onInterrupt(cleanup: Cleanup): () => void {
  interruptCleanups.add(cleanup);
  return () => interruptCleanups.delete(cleanup);
}

/** Registers work to do when the command ends, however it ends. */
export function onShutdown(cleanup: Cleanup): void {
  shutdownCleanups.add(cleanup);
}

async function drain(cleanups: Set<Cleanup>, timeoutMs: number): Promise<void> {
  const list = [...cleanups].reverse();
  cleanups.clear();
  for (const cleanup of list) {
    await Promise.race([cleanup().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}

/** Runs the interrupt cleanups, then the shutdown ones; each bounded in time. */
export async function runInterruptCleanups(timeoutMs = 5000): Promise<void> {
  await drain(interruptCleanups, timeoutMs);
  await drain(shutdownCleanups, timeoutMs);
}

/** Runs the shutdown cleanups (newest first). Called once by src/cli.ts. */
export function runShutdownCleanups(timeoutMs = 15_000): Promise<void> {
  return drain(shutdownCleanups, timeoutMs);
}
