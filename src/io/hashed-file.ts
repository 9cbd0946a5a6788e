// Files written once, in order, with their size and SHA-256 computed as the
// bytes go out, so a manifest never needs a second read of what was written.
// A writer may keep its bytes in memory while a shared budget allows (a
// bundle of a few hundred kilobytes then never touches the disk twice) and
// spills to its file as soon as it would exceed the budget, so memory stays
// bounded whatever the size of the export.
// The file is a private file (src/io/private-file.ts): written at a random
// temp name, mode 0600, never through a symlink, and renamed to its path on
// close (or on commit(), for a writer made with { commit: 'manual' }).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { createPrivateFile, type PrivateFile, type PublishOptions } from './private-file.js';

export interface WrittenFile {
  readonly bytes: number;
  readonly sha256: string;
}

export interface StoredFile extends WrittenFile {
  /** The bytes written: from memory if they stayed there, else a stream of the file. */
  contents(): Buffer | Readable;
}

/** Bytes that writers sharing it may keep in memory, all together. */
export class MemoryBudget {
  constructor(public remaining: number) {}
}

const FLUSH_AT = 65_536;

/**
 * A file being written with backpressure, hashed on the way.
 *
 * @example
 * const out = new HashedFileWriter('/tmp/x.json'); await out.write('[]\n'); const { sha256 } = await out.close()
 */
export class HashedFileWriter {
  readonly #hash: Hash = createHash('sha256');
  readonly #budget: MemoryBudget | null;
  readonly #manual: boolean;
  #file: PrivateFile | null = null;
  #stream: WriteStream | null = null;
  #committed = false;
  #bytes = 0;
  // Small writes (a row batch at a time) are gathered into chunks of at
  // least 64 KiB before they go to the file.
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #held = 0; // bytes of #pending charged to the budget

  #error: Error | null = null;

  constructor(
    readonly path: string,
    { budget, commit = 'close' }: { budget?: MemoryBudget; commit?: 'close' | 'manual' } = {},
  ) {
    this.#budget = budget ?? null;
    this.#manual = commit === 'manual';
  }

  /** Where the bytes are until the file is committed (null before anything is written). */
  get tempPath(): string | null {
    return this.#file?.tempPath ?? null;
  }

  #open(): WriteStream {
    this.#file = createPrivateFile(this.path);
    const stream = this.#file.stream;
    // Remembered and rethrown by the next write or close: an unwritable path
    // is an error of the job, never an unhandled event that kills the process.
    stream.on('error', (error) => {
      this.#error ??= error;
    });
    return stream;
  }

  #check(): void {
    if (this.#error) throw this.#error;
  }

  async write(chunk: string | Buffer): Promise<void> {
    this.#check();
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.#hash.update(buffer);
    this.#bytes += buffer.length;
    this.#pending.push(buffer);
    this.#pendingBytes += buffer.length;
    if (!this.#stream && this.#budget && this.#budget.remaining >= buffer.length) {
      this.#budget.remaining -= buffer.length;
      this.#held += buffer.length;
      return;
    }
    if (this.#pendingBytes >= FLUSH_AT || !this.#stream) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    this.#stream ??= this.#open();
    const chunk = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#budget) this.#budget.remaining += this.#held;
    this.#held = 0;
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain');
  }

  /** Copies a stream into the file. */
  async pipeFrom(source: Readable | Buffer): Promise<void> {
    if (Buffer.isBuffer(source)) return this.write(source);
    for await (const chunk of source) await this.write(chunk as Buffer);
  }

  async close(): Promise<StoredFile> {
    const written = { bytes: this.#bytes, sha256: this.#hash.digest('hex') };
    if (!this.#stream && this.#budget) {
      // Everything stayed in memory; it stays charged to the budget.
      const data = Buffer.concat(this.#pending, this.#pendingBytes);
      return { ...written, contents: () => data };
    }
    await this.#flush();
    this.#stream ??= this.#open(); // an empty file
    this.#stream.end();
    if (!this.#stream.closed) await once(this.#stream, 'close').catch(() => undefined);
    this.#check();
    if (!this.#manual) await this.commit();
    return { ...written, contents: () => createReadStream(this.#committed ? this.path : this.#file!.tempPath) };
  }

  /** Moves the closed file to its path; for a writer made with { commit: 'manual' }. */
  async commit(options?: PublishOptions): Promise<void> {
    if (!this.#file) throw new Error(`${this.path}: nothing to commit (the bytes stayed in memory)`);
    await this.#file.commit(options);
    this.#committed = true;
  }

  /** Stops writing and removes the temp file; for cleanup paths. */
  destroy(): Promise<void> {
    return this.#file?.abort() ?? Promise.resolve();
  }
}
