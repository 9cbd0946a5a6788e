// Zips built byte by byte, for tests of what `dsar verify` meets in a
// hostile bundle: entries stored or deflated exactly as given (sizes and CRCs
// may lie), and zeros deflated to a bomb without ever holding them.
import { constants, crc32, createDeflateRaw } from 'node:zlib';

export interface CraftedEntry {
  readonly name: string;
  readonly method: 0 | 8;
  readonly data: Buffer;
  readonly crc: number;
  readonly size: number;
}

export const stored = (name: string, data: Buffer | string): CraftedEntry => {
  const b = Buffer.from(data);
  return { name, method: 0, data: b, crc: crc32(b), size: b.length };
};

/**
 * `mib` MiB of zeros, deflated without ever holding them: after a full flush
 * the compressor starts afresh, so 1 MiB compresses to the same bytes each
 * time and the stream is those bytes repeated (about 1 KiB per MiB).
 */
export async function deflatedZeros(name: string, mib: number): Promise<CraftedEntry> {
  const d = createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  d.on('data', (c: Buffer) => chunks.push(c));
  const take = () => Buffer.concat(chunks.splice(0));
  const zero = Buffer.alloc(1 << 20);
  d.write(zero);
  await new Promise<void>((resolve) => d.flush(constants.Z_FULL_FLUSH, () => resolve()));
  const segment = take();
  d.end();
  await new Promise((resolve) => d.on('end', resolve));
  const tail = take();
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = crc32(zero, crc);
  return { name, method: 8, data: Buffer.concat([...Array<Buffer>(mib).fill(segment), tail]), crc, size: mib * 2 ** 20 };
}

/**
 * A zip of the entries, in order, each local header followed by its data;
 * `central` (default: one record per entry) lists the central directory's
 * records by entry index, so two records may point at the same data.
 *
 * @example
 * zipOf([stored('a.txt', 'hi'), await deflatedZeros('z.bin', 8)], { names: ['a.txt', 'z.bin', 'y.bin'], central: [0, 1, 1] })
 */
export function zipOf(entries: readonly CraftedEntry[], { central: order, names }: { central?: readonly number[]; names?: readonly string[] } = {}): Buffer {
  const parts: Buffer[] = [];
  const records: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt16LE(0x5a21, 12); // 2025-01-01
    local.writeUInt32LE(e.crc >>> 0, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.size, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, e.data);
    offsets.push(offset);
    offset += 30 + name.length + e.data.length;
  }
  const listed = order ?? entries.map((_, i) => i);
  listed.forEach((i, n) => {
    const e = entries[i]!;
    const name = Buffer.from(names?.[n] ?? e.name);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(e.method, 10);
    cd.writeUInt16LE(0x5a21, 14);
    cd.writeUInt32LE(e.crc >>> 0, 16);
    cd.writeUInt32LE(e.data.length, 20);
    cd.writeUInt32LE(e.size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offsets[i]!, 42);
    records.push(cd, name);
  });
  const cdBytes = Buffer.concat(records);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(listed.length, 8);
  end.writeUInt16LE(listed.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, end]);
}

