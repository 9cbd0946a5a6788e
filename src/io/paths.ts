// Checks on output paths given by a person, made before any work is done so
// a typo is a one-line refusal (exit 2), not a failure halfway through.
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { RefusedError } from '../errors.js';

/**
 * Refuses unless the directory that will hold `path` exists.
 *
 * @example
 * await assertParentDirectory('/tmp/out/trail.csv', '--out')
 */
export async function assertParentDirectory(path: string, what: string): Promise<void> {
  const dir = dirname(resolve(path));
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new RefusedError(`${what}: directory ${dir} does not exist`, 'Create it first, or choose another path');
}
