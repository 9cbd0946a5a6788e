// Files written once, in order, with their size and SHA-256 computed as the
// bytes go out, so a manifest never needs a second read of what was written.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

export interface WrittenFile {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * A file being written with backpressure, hashed on the way.
 *
 * @example
 * const out = new HashedFileWriter('/tmp/x.json'); await out.write('[]\n'); const { sha256 } = await out.close()
 */
export class HashedFileWriter {
  readonly #stream: WriteStream;
  readonly #hash: Hash = createHash('sha256');
  #bytes = 0;

  constructor(readonly path: string) {
    this.#stream = createWriteStream(path, { mode: 0o600 });
  }

  async write(chunk: string | Buffer): Promise<void> {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.#hash.update(buffer);
    this.#bytes += buffer.length;
    if (!this.#stream.write(buffer)) await once(this.#stream, 'drain');
  }

  /** Copies a stream into the file. */
  async pipeFrom(source: Readable): Promise<void> {
    for await (const chunk of source) await this.write(chunk as Buffer);
  }

  async close(): Promise<WrittenFile> {
    this.#stream.end();
    await once(this.#stream, 'close');
    return { bytes: this.#bytes, sha256: this.#hash.digest('hex') };
  }

  /** Closes and discards errors; for cleanup paths. */
  destroy(): void {
    this.#stream.destroy();
  }
}
