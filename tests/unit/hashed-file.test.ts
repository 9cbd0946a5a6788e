import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { HashedFileWriter, MemoryBudget } from '../../src/io/hashed-file.js';

const dir = await mkdtemp(join(tmpdir(), 'trustctl-hashed-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function bytesOf(contents: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(contents)) return contents;
  const chunks: Buffer[] = [];
  for await (const c of contents) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const chunks = Array.from({ length: 300 }, (_, i) => `row ${i}: ${'x'.repeat(i % 97)}\n`);
const expected = Buffer.from(chunks.join(''));
const sha = createHash('sha256').update(expected).digest('hex');

describe('HashedFileWriter', () => {
  it('keeps small files in memory within the budget, and charges the budget', async () => {
    const budget = new MemoryBudget(1_000_000);
    const w = new HashedFileWriter(join(dir, 'mem.txt'), { budget });
    for (const c of chunks) await w.write(c);
    const stored = await w.close();
    expect(stored).toMatchObject({ bytes: expected.length, sha256: sha });
    expect((await bytesOf(stored.contents())).equals(expected)).toBe(true);
    expect(budget.remaining).toBe(1_000_000 - expected.length);
    await expect(stat(join(dir, 'mem.txt'))).rejects.toThrow();
  });

  it('spills to its file when the budget runs out, with the same bytes and hash', async () => {
    const budget = new MemoryBudget(1_000);
    const w = new HashedFileWriter(join(dir, 'spill.txt'), { budget });
    for (const c of chunks) await w.write(c);
    const stored = await w.close();
    expect(stored).toMatchObject({ bytes: expected.length, sha256: sha });
    expect((await readFile(join(dir, 'spill.txt'))).equals(expected)).toBe(true);
    expect((await bytesOf(stored.contents())).equals(expected)).toBe(true);
    expect(budget.remaining).toBe(1_000); // given back once spilled
  });

  it('without a budget writes the file, even an empty one', async () => {
    const w = new HashedFileWriter(join(dir, 'empty.txt'));
    const stored = await w.close();
    expect(stored.bytes).toBe(0);
    expect(stored.sha256).toBe(createHash('sha256').digest('hex'));
    expect((await readFile(join(dir, 'empty.txt'))).length).toBe(0);
  });
});
