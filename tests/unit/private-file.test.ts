// src/io/private-file.ts: a new file, mode 0600, never through a symlink,
// renamed into place; refusal instead of replacement when asked.
import { lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefusedError } from '../../src/errors.js';
import { createPrivateFile, makePrivateDirectory, writePrivateFile } from '../../src/io/private-file.js';

let dir: string;
let victim: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trustctl-private-file-'));
  victim = join(dir, 'victim');
  await writeFile(victim, 'victim\n', { mode: 0o644 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const mode = async (p: string) => ((await lstat(p)).mode & 0o777).toString(8);

describe('private files', () => {
  it('writePrivateFile replaces a symlink at the path, and leaves its target alone', async () => {
    const path = join(dir, 'out.txt');
    await symlink(victim, path);
    await writePrivateFile(path, 'new\n');
    expect((await lstat(path)).isFile()).toBe(true);
    expect(await mode(path)).toBe('600');
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect(await readFile(victim, 'utf8')).toBe('victim\n');
  });

  it('with replace: false refuses anything at the path, a dangling symlink too, and leaves no temp file', async () => {
    const path = join(dir, 'key');
    await symlink(join(dir, 'nowhere'), path);
    await expect(writePrivateFile(path, 'secret', { replace: false })).rejects.toBeInstanceOf(RefusedError);
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('createPrivateFile writes at a random temp name until commit; abort removes it', async () => {
    const path = join(dir, 'stream.txt');
    const a = createPrivateFile(path);
    const b = createPrivateFile(path);
    expect(a.tempPath).not.toBe(b.tempPath);
    a.stream.write('a\n');
    await a.commit();
    await b.abort();
    expect(await readFile(path, 'utf8')).toBe('a\n');
    expect(await mode(path)).toBe('600');
    await expect(lstat(b.tempPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('makePrivateDirectory creates folders 0700', async () => {
    const path = join(dir, 'x', 'y');
    await makePrivateDirectory(path);
    expect(await mode(path)).toBe('700');
    expect(await mode(join(dir, 'x'))).toBe('700');
  });
});
