// Writes a bundle's files into a zip with archiver. Deterministic: entries in
// the order given, every entry with the same fixed time and mode, fixed
// compression level; so the same files give the same bytes. With a
// passphrase the zip is AES-256 encrypted (WinZip AE-1, opened by 7-Zip and
// other common tools) through archiver-zip-encrypted, whose random salts make
// each encrypted zip differ.
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import archiver from 'archiver';
import { HashedFileWriter, type WrittenFile } from '../io/hashed-file.js';

export interface ZipEntry {
  /** Path inside the zip, with forward slashes. */
  readonly name: string;
  /** Its bytes. */
  readonly contents: Buffer | Readable;
}

let encryptedFormatRegistered = false;

function registerEncryptedFormat(): void {
  if (encryptedFormatRegistered) return;
  // archiver-zip-encrypted is CommonJS without types.
  const require = createRequire(import.meta.url);
  archiver.registerFormat('zip-encrypted', require('archiver-zip-encrypted') as Parameters<typeof archiver.registerFormat>[1]);
  encryptedFormatRegistered = true;
}


/**
 * Writes entries to `path`; returns its size and SHA-256.
 *
 * @example
 * await writeZip('/tmp/b.zip', [{ name: 'README.txt', contents: Buffer.from('hello\n') }], { time: asOf })
 */
export async function writeZip(
  path: string,
  entries: readonly ZipEntry[],
  options: { readonly time: Date; readonly passphrase?: string },
): Promise<WrittenFile> {
  let archive: archiver.Archiver;
  if (options.passphrase) {
    registerEncryptedFormat();
    archive = archiver.create('zip-encrypted' as archiver.Format, {
      zlib: { level: 6 },
      encryptionMethod: 'aes256',
      password: options.passphrase,
    } as archiver.ArchiverOptions);
  } else {
    archive = archiver('zip', { zlib: { level: 6 } });
  }
  const out = new HashedFileWriter(path);
  const failed = new Promise<never>((_, reject) => {
    archive.on('error', reject);
    archive.on('warning', reject);
    // archiver does not pass on an entry stream's error: without this, a file
    // that fails mid-read (a media file gone, an I/O error) hangs the export.
    for (const entry of entries) {
      if (!Buffer.isBuffer(entry.contents)) entry.contents.once('error', reject);
    }
  });
  // compress-commons stores the UTC fields of the date: the same bytes in any TZ.
  const date = options.time;
  for (const entry of entries) {
    archive.append(entry.contents, { name: entry.name, date, mode: 0o644 });
  }
  void archive.finalize().catch(() => undefined);
  try {
    await Promise.race([out.pipeFrom(archive), failed]);
  } catch (error) {
    archive.abort();
    out.destroy();
    throw error;
  }
  return out.close();
}
