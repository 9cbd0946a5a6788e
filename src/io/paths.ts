// Checks on output paths given by a person, made before any work is done so
// a typo is a one-line refusal (exit 2), not a failure halfway through.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { RefusedError } from '../errors.js';

/**
 * Refuses unless `dir` is an existing directory (`noun` says what it holds);
 * returns its absolute path.
 *
 * @example
 * await assertDirectory('/srv/media', '--media-dir', 'media store')
 */
export async function assertDirectory(dir: string, what: string, noun = 'directory'): Promise<string> {
  const full = resolve(dir);
  const info = await stat(full).catch(() => null);
  if (!info) throw new RefusedError(`${what}: ${noun} ${full} not found`, 'Create it first, or choose another path');
  if (!info.isDirectory()) throw new RefusedError(`${what}: ${full} is not a directory`, 'Choose a directory');
  return full;
}

/**
 * Refuses unless `dir` is an existing directory this user may create files
 * in (a read-only or immutable folder, or one without write permission, is
 * refused here rather than halfway through the work).
 *
 * @example
 * await assertWritableDirectory('./archive-exports', '--out')
 */
export async function assertWritableDirectory(dir: string, what: string): Promise<void> {
  await assertWritable(await assertDirectory(dir, what), what);
}

/**
 * Refuses unless the directory that will hold `path` exists and this user
 * may create files in it, and `path` itself is not a directory.
 *
 * @example
 * await assertParentDirectory('/tmp/out/trail.csv', '--out')
 */
export async function assertParentDirectory(path: string, what: string): Promise<void> {
  await assertWritableDirectory(dirname(resolve(path)), what);
  if ((await stat(path).catch(() => null))?.isDirectory()) throw new RefusedError(`${what}: ${resolve(path)} is a directory`, 'Name a file');
}

/**
 * For a directory trustctl will create if missing (dsar export --out): the
 * nearest folder that exists must be a directory this user may write in.
 *
 * @example
 * await assertCanCreateDirectory('./bundles/2026', '--out')
 */
export async function assertCanCreateDirectory(path: string, what: string): Promise<void> {
  let dir = resolve(path);
  for (;;) {
    const info = await stat(dir).catch(() => null);
    if (info) {
      if (!info.isDirectory()) throw new RefusedError(`${what}: ${dir} is not a directory`, 'Choose a directory');
      return assertWritable(dir, what);
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

const WHY: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted (an immutable folder?)',
  EROFS: 'read-only file system',
};

async function assertWritable(dir: string, what: string): Promise<void> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw new RefusedError(`${what}: cannot write in ${dir}: ${WHY[code] ?? code}`, 'Choose a directory you can write to; nothing was changed');
  }
}
