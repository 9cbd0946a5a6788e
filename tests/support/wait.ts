// Tests wait for conditions, never for fixed times: a busy machine (other
// suites beside this one, a CI runner three times slower) only makes them
// wait longer. The deadline is generous; the interval short.

/**
 * Calls probe until it returns a value that is not undefined, null or
 * false, and returns that value; throws after timeoutMs.
 *
 * @example
 * const seq = await waitFor('event 12 to be sealed', async () => { await seal(); return seqOf(12) })
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  { timeoutMs = 120_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
