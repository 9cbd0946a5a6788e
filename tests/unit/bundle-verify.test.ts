// `dsar verify` without a database: bundles written here with the bundle's
// own zip writer (src/dsar/zip.ts) or byte by byte (tests/support/zip-craft.ts),
// each wrong in one way, and the exact problem lines verifyBundle reports.
// The integration tests (altered-bundle, hostile-files) check the same
// through the CLI on exported bundles; these make each rule cheap to test,
// so mutation testing can run them.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobReader, ZipReader } from '@zip.js/zip.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId } from '../../src/audit/keys.js';
import { RefusedError } from '../../src/errors.js';
import { BUNDLE_FORMAT, signManifest } from '../../src/dsar/format.js';
import { verifyBundle } from '../../src/dsar/verify.js';
import { writeZip, type ZipEntry } from '../../src/dsar/zip.js';
import { deflatedZeros, stored, zipOf } from '../support/zip-craft.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const AS_OF = new Date('2026-11-30T09:15:00Z');
const SUBJECT = '0b6a4c1e-3f2d-4c55-9a1e-7d7f3e2b9c10';
const FILES: Record<string, string> = {
  'README.txt': 'What this bundle holds.\n',
  'index.html': '<!doctype html><title>Your records</title>\n',
  'data/children.json': '[{"full_name":"Ada"}]\n',
};
const dpo = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

let work: string;
let n = 0;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'trustctl-verify-unit-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

function manifestOf(files: Record<string, string>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: BUNDLE_FORMAT,
    request: { reference: 'DSAR-2026-007' },
    subject: { id: SUBJECT },
    as_of: AS_OF.toISOString(),
    files: Object.entries(files).map(([path, text]) => ({ path, bytes: Buffer.byteLength(text), sha256: sha256(text) })),
    ...extra,
  };
}

/** Writes a bundle: `files` in the zip, a manifest (default: true to `files`), an optional signature. */
async function bundle({
  files = FILES,
  manifest = manifestOf(files),
  manifestText,
  sig,
  extra = [],
  passphrase,
}: {
  files?: Record<string, string>;
  manifest?: unknown;
  manifestText?: string;
  sig?: string | ((manifest: Buffer) => string);
  extra?: ZipEntry[];
  passphrase?: string;
} = {}): Promise<{ path: string; manifest: Buffer }> {
  const path = join(work, `b${++n}.zip`);
  const m = Buffer.from(manifestText ?? `${JSON.stringify(manifest, null, 2)}\n`);
  const entries: ZipEntry[] = [
    { name: 'manifest.json', contents: m },
    ...(sig === undefined ? [] : [{ name: 'manifest.sig', contents: Buffer.from(typeof sig === 'string' ? sig : sig(m)) }]),
    ...Object.entries(files).map(([name, text]) => ({ name, contents: Buffer.from(text) })),
    ...extra,
  ];
  await writeZip(path, entries, { time: AS_OF, ...(passphrase ? { passphrase } : {}) });
  return { path, manifest: m };
}

const problemsOf = async (b: { path: string } | Promise<{ path: string }>, options = {}) => (await verifyBundle((await b).path, options)).problems;

describe('a bundle as trustctl writes it', () => {
  it('verifies, and reports what it is: reference, subject, date, hashes, files checked', async () => {
    const b = await bundle();
    const r = await verifyBundle(b.path, {});
    expect(r).toEqual({
      path: b.path,
      ok: true,
      encrypted: false,
      filesChecked: 3,
      reference: 'DSAR-2026-007',
      subjectId: SUBJECT,
      asOf: AS_OF.toISOString(),
      sha256: sha256(await readFile(b.path)),
      manifestSha256: sha256(b.manifest),
      signedBy: null,
      signatureChecked: false,
      problems: [],
    });
  });

  it('reads no reference, subject or date from a manifest whose fields are not strings', async () => {
    const r = await verifyBundle((await bundle({ manifest: manifestOf(FILES, { request: { reference: 7 }, subject: { id: ['x'] }, as_of: 20261130 }) })).path, {});
    expect(r).toMatchObject({ ok: true, reference: null, subjectId: null, asOf: null });
    const bare = await verifyBundle((await bundle({ manifest: { format: BUNDLE_FORMAT, files: manifestOf(FILES).files } })).path, {});
    expect(bare).toMatchObject({ ok: true, reference: null, subjectId: null, asOf: null });
  });

  it('writeZip: the same files give the same bytes; entries in order, at the bundle time, mode 0644', async () => {
    const a = await bundle();
    const b = await bundle();
    expect(sha256(await readFile(a.path))).toBe(sha256(await readFile(b.path)));
    const reader = new ZipReader(new BlobReader(new Blob([await readFile(a.path)])));
    const entries = await reader.getEntries();
    await reader.close();
    expect(entries.map((e) => e.filename)).toEqual(['manifest.json', ...Object.keys(FILES)]);
    for (const e of entries) {
      expect(e.compressionMethod, e.filename).toBe(8);
      expect((e.externalFileAttributes >>> 16) & 0o777, e.filename).toBe(0o644);
      // DOS time has a 2-second grain, in the zip's local fields: the UTC wall clock.
      expect(e.rawLastModDate, e.filename).toBe(zipDosTime(AS_OF));
    }
  });
});

/** The DOS date and time (date << 16 | time) of a UTC instant, as compress-commons writes it. */
function zipDosTime(d: Date): number {
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  return ((date << 16) | time) >>> 0;
}

describe('writeZip', () => {
  it('fails, and leaves no zip, when an entry cannot be read', async () => {
    const path = join(work, 'failed.zip');
    const failing = new Readable({ read() { this.destroy(new Error('disk gone')); } });
    await expect(writeZip(path, [{ name: 'manifest.json', contents: Buffer.from('{}') }, { name: 'a.bin', contents: failing }], { time: AS_OF })).rejects.toThrow('disk gone');
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('what is not a bundle', () => {
  it('a path that is not a file is refused (exit 2), not reported', async () => {
    await expect(verifyBundle(join(work, 'none.zip'), {})).rejects.toThrow(new RefusedError(`${join(work, 'none.zip')}: no such file`));
    const dir = join(work, 'a-folder.zip');
    await mkdir(dir);
    await expect(verifyBundle(dir, {})).rejects.toBeInstanceOf(RefusedError);
  });

  it('a file that is not a zip fails with one problem, its hash still given', async () => {
    const path = join(work, 'text.zip');
    await writeFile(path, 'not a zip at all\n');
    const r = await verifyBundle(path, {});
    expect(r).toMatchObject({ ok: false, encrypted: false, filesChecked: 0, reference: null, subjectId: null, asOf: null, manifestSha256: null, sha256: sha256('not a zip at all\n') });
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a readable zip \\(.+\\)$`));
  });

  it('a zip without manifest.json', async () => {
    const path = join(work, 'no-manifest.zip');
    await writeZip(path, Object.entries(FILES).map(([name, text]) => ({ name, contents: Buffer.from(text) })), { time: AS_OF });
    expect(await problemsOf({ path })).toEqual(['manifest.json: missing']);
  });
});

describe('a manifest that is not a manifest', () => {
  it.each([
    ['not JSON', '{"format": ', ['manifest.json: not valid JSON', 'README.txt: not listed in manifest.json', 'index.html: not listed in manifest.json', 'data/children.json: not listed in manifest.json']],
    ['an array', '[]', ['manifest.json: not a JSON object', 'README.txt: not listed in manifest.json', 'index.html: not listed in manifest.json', 'data/children.json: not listed in manifest.json']],
    ['a number', '42', ['manifest.json: not a JSON object', 'README.txt: not listed in manifest.json', 'index.html: not listed in manifest.json', 'data/children.json: not listed in manifest.json']],
    ['null', 'null', ['manifest.json: not a JSON object', 'README.txt: not listed in manifest.json', 'index.html: not listed in manifest.json', 'data/children.json: not listed in manifest.json']],
    ['without files', JSON.stringify({ format: BUNDLE_FORMAT }), ['manifest.json: has no "files" list', 'README.txt: not listed in manifest.json', 'index.html: not listed in manifest.json', 'data/children.json: not listed in manifest.json']],
    ['another format', JSON.stringify(manifestOf(FILES, { format: 'trustctl-dsar-bundle/2' })), ['manifest.json: format is "trustctl-dsar-bundle/2", expected "trustctl-dsar-bundle/1"']],
    ['no format', JSON.stringify({ ...manifestOf(FILES), format: undefined }), ['manifest.json: format is undefined, expected "trustctl-dsar-bundle/1"']],
  ])('%s', async (_label, manifestText, expected) => {
    const r = await verifyBundle((await bundle({ manifestText })).path, {});
    expect(r.problems).toEqual(expected);
    expect(r.ok).toBe(false);
  });

  it('file entries that are malformed, listed twice, the manifest itself, or required files left out', async () => {
    const good = manifestOf(FILES).files as { path: string; bytes: number; sha256: string }[];
    const [readme, index, data] = good as [typeof good[0], typeof good[0], typeof good[0]];
    const cases: [unknown[], string[]][] = [
      [[...good, { path: 'x.txt', bytes: '3', sha256: 'ab' }], ['manifest.json: malformed file entry {"path":"x.txt","bytes":"3","sha256":"ab"}']],
      [[...good, { path: 7, bytes: 3, sha256: 'ab' }], ['manifest.json: malformed file entry {"path":7,"bytes":3,"sha256":"ab"}']],
      [[...good, { path: 'x.txt', bytes: 3 }], ['manifest.json: malformed file entry {"path":"x.txt","bytes":3}']],
      [[...good, null], ['manifest.json: malformed file entry null']],
      [[...good, data], ['manifest.json: lists data/children.json more than once']],
      [[...good, { path: 'manifest.json', bytes: 1, sha256: 'ab' }], ['manifest.json: lists itself']],
      [[readme, index, { path: 'manifest.json', bytes: 1, sha256: 'ab' }], ['manifest.json: lists itself', 'data/children.json: not listed in manifest.json']],
      [[index, data], ['README.txt: every bundle has one, but manifest.json does not list it', 'README.txt: not listed in manifest.json']],
      [[readme, data], ['index.html: every bundle has one, but manifest.json does not list it', 'index.html: not listed in manifest.json']],
    ];
    for (const [files, expected] of cases) {
      expect(await problemsOf(bundle({ manifest: { ...manifestOf(FILES), files } }))).toEqual(expected);
    }
  });

  it('a long malformed entry is quoted to 200 characters', async () => {
    const long = { path: 'x'.repeat(300), bytes: 'many' };
    const [line] = await problemsOf(bundle({ manifest: { ...manifestOf(FILES), files: [...(manifestOf(FILES).files as unknown[]), long] } }));
    expect(line).toBe(`manifest.json: malformed file entry ${JSON.stringify(long).slice(0, 200)}`);
  });
});

describe('files that do not match the manifest', () => {
  it('a file added, a file taken out', async () => {
    expect(await problemsOf(bundle({ extra: [{ name: 'data/extra.json', contents: Buffer.from('[]') }] }))).toEqual(['data/extra.json: not listed in manifest.json']);
    const { 'data/children.json': _gone, ...rest } = FILES;
    expect(await problemsOf(bundle({ files: rest, manifest: manifestOf(FILES) }))).toEqual(['data/children.json: listed in manifest.json but missing from the zip']);
  });

  it('the same length, other bytes: the SHA-256 differs', async () => {
    const altered = { ...FILES, 'data/children.json': '[{"full_name":"Bob"}]\n' };
    expect(await problemsOf(bundle({ files: altered, manifest: manifestOf(FILES) }))).toEqual([
      `data/children.json: SHA-256 ${sha256(altered['data/children.json']!)} does not match the manifest`,
    ]);
  });

  it('shorter than listed: its size and hash differ; longer: reading stops one byte past', async () => {
    const shorter = { ...FILES, 'data/children.json': '[]\n' };
    const r = await verifyBundle((await bundle({ files: shorter, manifest: manifestOf(FILES) })).path, {});
    expect(r.problems).toEqual([
      `data/children.json: 3 bytes, manifest says ${Buffer.byteLength(FILES['data/children.json']!)}`,
      `data/children.json: SHA-256 ${sha256('[]\n')} does not match the manifest`,
    ]);
    expect(r.filesChecked).toBe(3);
    const longer = { ...FILES, 'data/children.json': `${FILES['data/children.json']}x` };
    const l = await verifyBundle((await bundle({ files: longer, manifest: manifestOf(FILES) })).path, {});
    expect(l.problems).toEqual([`data/children.json: more than the ${Buffer.byteLength(FILES['data/children.json']!)} bytes manifest.json lists; reading stopped`]);
    expect(l.filesChecked).toBe(2);
  });

  it('folder entries are not files: listed twice, unlisted, they are no problem', async () => {
    const path = join(work, 'folders.zip');
    await writeFile(path, zipOf([stored('data/', ''), stored('data/', ''), stored('manifest.json', JSON.stringify(manifestOf(FILES))), ...Object.entries(FILES).map(([name, t]) => stored(name, t))]));
    expect(await verifyBundle(path, {})).toMatchObject({ ok: true, filesChecked: 3, problems: [] });
  });

  it('a file whose bytes cannot be inflated is reported, and the rest checked', async () => {
    const broken = { name: 'data/children.json', method: 8 as const, data: Buffer.from([0xff, 0xff, 0xff, 0xff]), crc: 0, size: Buffer.byteLength(FILES['data/children.json']!) };
    const path = join(work, 'broken-file.zip');
    await writeFile(path, zipOf([stored('manifest.json', JSON.stringify(manifestOf(FILES))), stored('README.txt', FILES['README.txt']!), stored('index.html', FILES['index.html']!), broken]));
    const r = await verifyBundle(path, {});
    expect(r).toMatchObject({ ok: false, filesChecked: 2 });
    expect(r.problems).toEqual([expect.stringMatching(/^data\/children\.json: cannot be read \(.+\)$/)]);
  });

  it('an entry twice in the zip', async () => {
    const text = (name: string) => stored(name, FILES[name]!);
    const m = stored('manifest.json', JSON.stringify(manifestOf(FILES)));
    const path = join(work, 'twice.zip');
    await writeFile(path, zipOf([m, text('README.txt'), text('index.html'), text('data/children.json'), text('data/children.json')]));
    expect(await problemsOf({ path })).toEqual(['data/children.json: appears 2 times in the zip', 'data/children.json: not listed in manifest.json']);
  });
});

describe('manifest.sig', () => {
  it('signed and checked with the DPO’s key: ok, and names the key', async () => {
    const r = await verifyBundle((await bundle({ sig: (m) => signManifest(dpo.privateKey, m) })).path, { publicKey: dpo.publicKey });
    expect(r).toMatchObject({ ok: true, signedBy: keyId(dpo.publicKey), signatureChecked: true, filesChecked: 3, problems: [] });
  });

  it('signed, but no key given: names the key, checks nothing', async () => {
    const r = await verifyBundle((await bundle({ sig: (m) => signManifest(other.privateKey, m) })).path, {});
    expect(r).toMatchObject({ ok: true, signedBy: keyId(other.publicKey), signatureChecked: false });
  });

  it('signed by another key, or not signed, when a key is given', async () => {
    expect(await problemsOf(bundle({ sig: (m) => signManifest(other.privateKey, m) }), { publicKey: dpo.publicKey })).toEqual([
      `manifest.sig: signed by key ${keyId(other.publicKey)}, not ${keyId(dpo.publicKey)}`,
    ]);
    const unsigned = await verifyBundle((await bundle()).path, { publicKey: dpo.publicKey });
    expect(unsigned).toMatchObject({ ok: false, signatureChecked: false, problems: ['manifest.sig: missing; the bundle is not signed'] });
  });

  it('a signature of other manifest bytes, or one that is not JSON', async () => {
    const stale = await bundle({ sig: () => signManifest(dpo.privateKey, Buffer.from('{}')) });
    expect(await problemsOf(stale, { publicKey: dpo.publicKey })).toEqual(['manifest.sig: the signature does not match manifest.json']);
    const junk = await verifyBundle((await bundle({ sig: 'not json' })).path, { publicKey: dpo.publicKey });
    expect(junk).toMatchObject({ signedBy: null, problems: ['manifest.sig: not valid JSON'] });
    expect((await verifyBundle((await bundle({ sig: '{"key_id":""}' })).path, {})).signedBy).toBeNull();
    expect((await verifyBundle((await bundle({ sig: '{}' })).path, {})).signedBy).toBeNull();
  });

  it('one that cannot be inflated is read as empty: not valid JSON, no key named', async () => {
    const broken = { name: 'manifest.sig', method: 8 as const, data: Buffer.from([0xff, 0xff, 0xff, 0xff]), crc: 0, size: 64 };
    const path = join(work, 'broken-sig.zip');
    await writeFile(path, zipOf([stored('manifest.json', JSON.stringify(manifestOf(FILES))), broken, ...Object.entries(FILES).map(([name, t]) => stored(name, t))]));
    expect(await verifyBundle(path, { publicKey: dpo.publicKey })).toMatchObject({ signedBy: null, problems: ['manifest.sig: not valid JSON'] });
  });

  it('larger than any signature: reading stops', async () => {
    const r = await verifyBundle((await bundle({ sig: 'x'.repeat(4097) })).path, {});
    expect(r).toMatchObject({ ok: false, filesChecked: 0, problems: ['manifest.sig: larger than any signature (4096 bytes); reading stopped'] });
    expect((await verifyBundle((await bundle({ sig: `"${'x'.repeat(4094)}"` })).path, {})).ok).toBe(true);
  });
});

describe('an encrypted bundle', () => {
  it('needs its passphrase: refused without one or with a wrong one; verified with it', async () => {
    const b = await bundle({ passphrase: 'correct horse battery staple' });
    await expect(verifyBundle(b.path, {})).rejects.toThrow(new RefusedError(`${b.path} is encrypted`, 'Pass --passphrase-stdin and give the passphrase on standard input'));
    await expect(verifyBundle(b.path, { passphrase: 'wrong' })).rejects.toThrow(new RefusedError(`${b.path}: wrong passphrase`));
    const r = await verifyBundle(b.path, { passphrase: 'correct horse battery staple' });
    expect(r).toMatchObject({ ok: true, encrypted: true, filesChecked: 3, problems: [] });
    // Each encrypted zip has its own salts.
    const again = await bundle({ passphrase: 'correct horse battery staple' });
    expect(sha256(await readFile(again.path))).not.toBe(sha256(await readFile(b.path)));
  });
});

describe('a hostile zip', () => {
  const listing = (files: Record<string, { bytes: number; sha256: string }>) =>
    JSON.stringify({ format: BUNDLE_FORMAT, files: [...Object.entries(FILES).slice(0, 2).map(([path, t]) => ({ path, bytes: Buffer.byteLength(t), sha256: sha256(t) })), ...Object.entries(files).map(([path, f]) => ({ path, ...f }))] });
  const MiB = 2 ** 20;

  it('entries that overlap (one deflated stream named three times) stop at 1,100 times the zip’s size', async () => {
    const zeros = await deflatedZeros('z0.bin', 64);
    const z = { bytes: 64 * MiB, sha256: sha256(Buffer.alloc(64 * MiB)) };
    const m = stored('manifest.json', listing({ 'z0.bin': z, 'z1.bin': z, 'z2.bin': z }));
    const entries = [m, stored('README.txt', FILES['README.txt']!), stored('index.html', FILES['index.html']!), zeros];
    const path = join(work, 'overlap.zip');
    await writeFile(path, zipOf(entries, { central: [0, 1, 2, 3, 3, 3], names: ['manifest.json', 'README.txt', 'index.html', 'z0.bin', 'z1.bin', 'z2.bin'] }));
    const r = await verifyBundle(path, {});
    expect(r).toMatchObject({ ok: false, filesChecked: 0, problems: [`${path}: decompresses to more than 1100 times its size (overlapping entries, a zip bomb); reading stopped`] });
    // Named once, the same stream is inside the bound (64 MiB from about 64 KiB) and checked like any file.
    const once = join(work, 'overlap-once.zip');
    await writeFile(once, zipOf([stored('manifest.json', listing({ 'z0.bin': z })), ...entries.slice(1)]));
    expect(await verifyBundle(once, {})).toMatchObject({ ok: true, filesChecked: 3, problems: [] });
  });

  it('a manifest whose header claims more than 16 MiB is not read', async () => {
    const m = { ...stored('manifest.json', listing({})), size: 16 * MiB + 1 };
    const path = join(work, 'big-manifest.zip');
    await writeFile(path, zipOf([m, stored('README.txt', FILES['README.txt']!), stored('index.html', FILES['index.html']!)]));
    expect(await problemsOf({ path })).toEqual([`manifest.json: ${16 * MiB + 1} bytes, larger than any bundle manifest (${16 * MiB})`]);
  });

  it('a manifest that inflates past what its header says: one line, reading stopped', async () => {
    // zip.js stops an entry at its declared size before verify's own bound (16 MiB) is reached.
    const m = { ...(await deflatedZeros('manifest.json', 17)), size: 16 * MiB };
    const path = join(work, 'lying-manifest.zip');
    await writeFile(path, zipOf([m, stored('README.txt', FILES['README.txt']!)]));
    expect(await problemsOf({ path })).toEqual(['manifest.json: cannot be read (Invalid uncompressed size)']);
  });

  it('a manifest.sig that inflates past the whole zip’s bound', async () => {
    const path = join(work, 'sig-bomb.zip');
    await writeFile(path, zipOf([stored('manifest.json', listing({})), stored('README.txt', FILES['README.txt']!), stored('index.html', FILES['index.html']!), await deflatedZeros('manifest.sig', 1)]));
    expect(await problemsOf({ path })).toEqual(['manifest.sig: larger than any signature (4096 bytes); reading stopped']);
  });
});
