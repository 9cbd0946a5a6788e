// Every file trustctl writes goes through here. A file is created new, as a
// randomly named temp file beside its final name, opened with O_EXCL and
// O_NOFOLLOW and mode 0600, and renamed into place only when complete. So a
// symlink or a pre-created file planted at the output path or at a
// predictable temp name is never followed and never reused: rename replaces
// a symlink at the destination rather than writing through it, and a file
// that was there keeps neither its owner nor its mode. Folders trustctl
// creates are 0700.
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { link, mkdir, mkdtemp, open, rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { RefusedError } from '../errors.js';

/** Flags for a file that must be new and must not be reached through a symlink. */
export const NEW_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

export interface PublishOptions {
  /** Replace whatever is at the path (default), or refuse if anything is there (exit 2). */
  readonly replace?: boolean;
}

/** A private file being written: bytes go to `stream` (at `tempPath`) until `commit()` renames it to `path`. */
export interface PrivateFile {
  readonly path: string;
  readonly tempPath: string;
  readonly stream: WriteStream;
  /** Ends the stream if still open, waits for it to close, then moves the file into place. */
  commit(options?: PublishOptions): Promise<void>;
  /** Destroys the stream and removes the temp file; safe to call more than once, or after commit. */
  abort(): Promise<void>;
}

/** A fresh, unpredictable name beside `path`: `.NAME.RANDOM.tmp`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
}

/**
 * Moves a finished temp file to `path`. With `replace: false` it refuses if
 * anything (a file, a symlink) is at `path`: link(2) neither follows nor replaces.
 *
 * @example
 * await publishFile('/out/.x.json.1a2b.tmp', '/out/x.json', { replace: false })
 */
export async function publishFile(tempPath: string, path: string, { replace = true }: PublishOptions = {}): Promise<void> {
  if (replace) return rename(tempPath, path);
  try {
    await link(tempPath, path);
  } catch (error) {
    await unlink(tempPath).catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RefusedError(`${path} already exists`, 'Move it away, or choose another path; nothing was overwritten');
    }
    throw error;
  }
  await unlink(tempPath);
}

/**
 * Starts a new private file at a random temp name beside `path`.
 *
 * @example
 * const f = createPrivateFile('/out/trail.csv'); f.stream.write('a,b\n'); await f.commit()
 */
export function createPrivateFile(path: string): PrivateFile {
  const tempPath = tempPathFor(path);
  // Opened at once, so a failure (a missing folder, no permission) is thrown here.
  const fd = openSync(tempPath, NEW_FILE_FLAGS, PRIVATE_FILE_MODE);
  const stream = createWriteStream(tempPath, { fd });
  let state: 'open' | 'committed' | 'aborted' = 'open';
  const closed = async (): Promise<void> => {
    if (stream.closed) {
      if (stream.errored) throw stream.errored;
      return;
    }
    const done = once(stream, 'close');
    if (!stream.writableEnded) stream.end();
    await done;
    if (stream.errored) throw stream.errored;
  };
  return {
    path,
    tempPath,
    stream,
    async commit(options) {
      if (state !== 'open') throw new Error(`${path}: already ${state}`);
      await closed();
      state = 'committed';
      await publishFile(tempPath, path, options);
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      stream.destroy();
      if (!stream.closed) await once(stream, 'close').catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
    },
  };
}

/**
 * Writes `data` to a new private file and moves it to `path`.
 *
 * @example
 * await writePrivateFile('/secure/audit.key', pem, { replace: false })
 */
export async function writePrivateFile(path: string, data: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
  const tempPath = tempPathFor(path);
  const handle = await open(tempPath, NEW_FILE_FLAGS, PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(tempPath).catch(() => undefined);
    throw error;
  }
  await publishFile(tempPath, path, options);
}

/**
 * Creates a folder (and any missing parents) mode 0700; an existing one is left as it is.
 *
 * @example
 * await makePrivateDirectory('/srv/certificates')
 */
export async function makePrivateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * A new folder, mode 0700, at a random name beside `path` (mkdtemp), for work to be renamed to `path`.
 *
 * @example
 * const work = await createPrivateDirectory('/out/archive-oak'); ...; await rename(work, '/out/archive-oak')
 */
export function createPrivateDirectory(path: string): Promise<string> {
  return mkdtemp(join(dirname(path), `.${basename(path)}.`));
}
