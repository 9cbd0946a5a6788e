// Reads a zip into memory for assertions (test bundles are small), with
// zip.js, and runs real archive tools on it.
import { spawnSync } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { BlobReader, configure, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js';

export async function readZip(path: string, password?: string): Promise<Map<string, Buffer>> {
  configure({ useWebWorkers: false });
  const reader = new ZipReader(new BlobReader(await openAsBlob(path)), password ? { password } : {});
  const files = new Map<string, Buffer>();
  try {
    for (const entry of await reader.getEntries()) {
      if (entry.directory) continue;
      files.set(entry.filename, Buffer.from(await entry.getData(new Uint8ArrayWriter())));
    }
  } finally {
    await reader.close();
  }
  return files;
}

/** Runs a command, returning its exit status and output (null status if it is not installed). */
export function tool(cmd: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return { status: null, output: String(r.error) };
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
