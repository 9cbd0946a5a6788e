// Every way to alter a DSAR bundle that keeps the zip valid (each entry's
// CRC-32 recomputed by Info-ZIP's zip, and `unzip -t` passing) is caught by
// `trustctl dsar verify`, for every entry of a real exported bundle: its
// content changed, added, removed, renamed, duplicated. A flipped byte is
// caught by the zip's own CRC; these are the alterations only the manifest's
// SHA-256s, and the signature over the manifest, catch.
//
// What an unsigned bundle proves, and what not (docs/dsar.md, "Verify"): on
// its own, that its files are the ones its manifest lists, byte for byte,
// none missing, none extra, none twice. Not who made it: whoever rewrites a
// file *and* its manifest entry, or any other field of the manifest, gets a
// bundle that verifies (exit 0, asserted below). That is caught only from
// outside the bundle: by the SHA-256s in the DPO record and the dsar.export
// audit event (the manifest's SHA-256 never matches a rewritten manifest),
// or, for a bundle exported with --sign-key, by `dsar verify --pubkey`,
// which requires manifest.sig and checks it against the manifest's exact
// bytes and the DPO's public key (the strongest claim the design makes).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { demoId } from '../support/demo-ids.js';
import { inParallel } from '../support/parallel.js';
import { readZip } from '../support/zip.js';

const CHILD = demoId('child:oak-primary:3');
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let db: TestDatabase;
let work: string;
let key: string;
let otherKey: string;
/** The exported bundle, its entries in zip order, what export printed, and the DPO record. */
let bundle: string;
let entries: Map<string, Buffer>;
/** Every entry but manifest.json and manifest.sig: what the manifest lists. */
let listed: string[];
let exported: { sha256: string; manifest_sha256: string; audit_event_id: string };
let record: { bundle: { sha256: string; manifest_sha256: string } };
let auditEvent: { bundle_sha256: string; manifest_sha256: string };

beforeAll(async () => {
  db = await createTestDatabase();
  work = await mkdtemp(join(tmpdir(), 'trustctl-altered-bundle-'));
  key = join(work, 'dpo');
  otherKey = join(work, 'someone-else');
  for (const prefix of [key, otherKey]) expect((await runCli(['audit', 'keygen', '--out', prefix])).code).toBe(0);
  const op = db.url('trustctl_test_op');
  const open = await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-ALTER-1']);
  expect(open.code, open.stderr).toBe(0);
  const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-ALTER-1',
    '--out', join(work, 'out'), '--media-dir', inject('mediaDir'), '--sign-key', `${key}.key`]);
  expect(r.code, r.stderr).toBe(0);
  exported = JSON.parse(r.stdout);
  bundle = JSON.parse(r.stdout).path;
  record = JSON.parse(await readFile(JSON.parse(r.stdout).dpo_record, 'utf8'));
  auditEvent = (await db.admin.query('select context from audit_events where id = $1', [exported.audit_event_id])).rows[0].context;
  entries = await readZip(bundle);
  listed = [...entries.keys()].filter((n) => n !== 'manifest.json' && n !== 'manifest.sig');
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

type Entries = ReadonlyArray<readonly [string, Buffer]>;

/**
 * Zips entries, in order, with Info-ZIP's zip (not the code under test):
 * every CRC-32 right. A name given twice is written under a stand-in of the
 * same length, whose bytes are then put back in the local and central
 * headers (names are not covered by any CRC), so the zip is still valid.
 */
async function rezip(what: string, list: Entries): Promise<string> {
  const tree = await mkdtemp(join(work, 'tree-'));
  const seen = new Set<string>();
  const standIns: Array<[string, string]> = [];
  const names: string[] = [];
  for (const [name, content] of list) {
    let file = name;
    if (seen.has(name)) {
      file = `Q${standIns.length}`.padEnd(name.length, 'Q');
      standIns.push([file, name]);
    }
    seen.add(name);
    await mkdir(join(tree, posix.dirname(file)), { recursive: true });
    await writeFile(join(tree, file), content);
    names.push(file);
  }
  const out = join(work, `${what.replace(/[^A-Za-z0-9.-]+/g, '_')}-${names.length}-${Math.random().toString(36).slice(2, 8)}.zip`);
  const zipped = spawnSync('zip', ['-q', '-X', '-D', out, ...names], { cwd: tree, encoding: 'utf8' });
  expect(zipped.status, zipped.stderr).toBe(0);
  if (standIns.length > 0) {
    let bytes = await readFile(out);
    for (const [standIn, name] of standIns) {
      const parts = bytes.toString('latin1').split(standIn);
      expect(parts.length - 1, `${standIn} in local and central headers`).toBe(2);
      bytes = Buffer.from(parts.join(name), 'latin1');
    }
    await writeFile(out, bytes);
  }
  // The premise: the altered zip is a valid zip, every CRC-32 right.
  const tested = spawnSync('unzip', ['-tqq', out], { encoding: 'utf8' });
  expect(tested.status, `${what}: unzip -t: ${tested.stdout}${tested.stderr}`).toBe(0);
  await rm(tree, { recursive: true, force: true });
  return out;
}

/** The same length, one byte different: neither the size check nor the zip's CRC (recomputed) can tell. */
function changed(content: Buffer): Buffer {
  const b = Buffer.from(content);
  const at = Math.floor(b.length / 2);
  b[at] = b[at]! ^ 0x01;
  return b;
}

const all = (): Entries => [...entries];
const without = (name: string): Entries => all().filter(([n]) => n !== name);
const replacing = (name: string, content: Buffer): Entries => all().map(([n, c]) => [n, n === name ? content : c] as const);
const manifest = (): { files: Array<{ path: string; bytes: number; sha256: string }>; subject: { name: string } } =>
  JSON.parse(entries.get('manifest.json')!.toString('utf8'));
const manifestBytes = (m: unknown): Buffer => Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
/** The manifest with one entry's size and SHA-256 recomputed for new content. */
function recomputed(name: string, content: Buffer): Buffer {
  const m = manifest();
  m.files = m.files.map((f) => (f.path === name ? { ...f, bytes: content.length, sha256: sha256(content) } : f));
  return manifestBytes(m);
}
/** A signature of these manifest bytes with another key (the forger's own). */
async function signedByOtherKey(manifestJson: Buffer): Promise<Buffer> {
  const { createPrivateKey } = await import('node:crypto');
  const { signManifest } = (await import(new URL('../../dist/dsar/format.js', import.meta.url).href)) as {
    signManifest(key: import('node:crypto').KeyObject, manifest: Buffer): string;
  };
  return Buffer.from(signManifest(createPrivateKey(await readFile(`${otherKey}.key`, 'utf8')), manifestJson));
}

interface Verified {
  readonly code: number | null;
  /** The INVALID lines, without the prefix. */
  readonly invalid: string[];
  readonly stderr: string;
}

async function verify(path: string, pubkey = false): Promise<Verified> {
  const r = await runCli(['dsar', 'verify', path, ...(pubkey ? ['--pubkey', `${key}.pub`] : [])]);
  return { code: r.code, invalid: r.stdout.split('\n').filter((l) => l.startsWith('INVALID: ')).map((l) => l.slice(9)), stderr: r.stderr };
}

/** For every listed entry: forge a bundle, verify it, compare with what verify must say. */
async function everyEntry(
  what: string,
  forge: (name: string) => Promise<Entries> | Entries,
  expected: (name: string, forged: Entries) => string[],
  { pubkey = false }: { pubkey?: boolean } = {},
): Promise<void> {
  const rows = await inParallel(listed, 2, async (name) => {
    const forged = await forge(name);
    const v = await verify(await rezip(`${what}-${name}`, forged), pubkey);
    return { entry: name, code: v.code, invalid: v.invalid.sort(), stderr: v.stderr, want: expected(name, forged).sort() };
  });
  expect(rows.length).toBeGreaterThan(10);
  expect(rows).toEqual(rows.map((r) => ({ ...r, code: 3, invalid: r.want, stderr: '' })));
}

describe('the bundle under test', () => {
  it('is a real export with every kind of file, verifies with --pubkey, and its SHA-256s are the DPO record’s and the audit event’s', async () => {
    expect(listed).toEqual(expect.arrayContaining(['README.txt', 'index.html']));
    for (const kind of [/^data\/[a-z_]+\.json$/, /^data\/[a-z_]+\.csv$/, /^data\/archive\.[a-z_]+\.json$/, /^data\/archive\.[a-z_]+\.csv$/, /^media\/[0-9a-f-]+\.png$/]) {
      expect(listed.some((n) => kind.test(n)), String(kind)).toBe(true);
    }
    expect([...entries.keys()]).toContain('manifest.sig');
    const r = await runCli(['--json', 'dsar', 'verify', bundle, '--pubkey', `${key}.pub`]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const v = JSON.parse(r.stdout);
    expect({ sha256: v.sha256, manifest: v.manifestSha256, checked: v.signatureChecked }).toEqual({
      sha256: exported.sha256,
      manifest: exported.manifest_sha256,
      checked: true,
    });
    expect(record.bundle).toMatchObject({ sha256: v.sha256, manifest_sha256: v.manifestSha256 });
    expect(auditEvent).toMatchObject({ bundle_sha256: v.sha256, manifest_sha256: v.manifestSha256 });
  });

  it('re-zipped unaltered, the way every forgery below is made, still verifies with --pubkey (so each failure below is the alteration’s)', async () => {
    const rebuilt = await verify(await rezip('unaltered', all()), true);
    expect(rebuilt).toEqual({ code: 0, invalid: [], stderr: '' });
    // Re-zipping alone changes the zip's bytes, not the manifest's.
    const r = await runCli(['--json', 'dsar', 'verify', await rezip('unaltered-json', all())]);
    expect(JSON.parse(r.stdout).manifestSha256).toBe(record.bundle.manifest_sha256);
  });
});

describe('every entry of the bundle, altered with the zip kept valid: exit 3, INVALID lines naming the entry', () => {
  it('its content changed (same size, CRC recomputed)', async () => {
    await everyEntry('changed', (name) => replacing(name, changed(entries.get(name)!)), (name, forged) => [
      `${name}: SHA-256 ${sha256(forged.find(([n]) => n === name)![1])} does not match the manifest`,
    ]);
  });

  it('removed', async () => {
    await everyEntry('removed', (name) => without(name), (name) => [`${name}: listed in manifest.json but missing from the zip`]);
  });

  it('renamed (moved beside itself)', async () => {
    const renamed = (name: string): string => posix.join(posix.dirname(name), `renamed-${posix.basename(name)}`);
    await everyEntry(
      'renamed',
      (name) => all().map(([n, c]) => [n === name ? renamed(n) : n, c] as const),
      (name) => [`${name}: listed in manifest.json but missing from the zip`, `${renamed(name)}: not listed in manifest.json`],
    );
  });

  it('added (a copy under another name)', async () => {
    const copy = (name: string): string => posix.join(posix.dirname(name), `copy-of-${posix.basename(name)}`);
    await everyEntry('added', (name) => [...all(), [copy(name), entries.get(name)!] as const], (name) => [`${copy(name)}: not listed in manifest.json`]);
  });

  it('twice under its own name, the second copy altered (what one tool shows may not be what another checked)', async () => {
    await everyEntry(
      'duplicate',
      (name) => [...all(), [name, changed(entries.get(name)!)] as const],
      (name) => [`${name}: appears 2 times in the zip`, `${name}: not listed in manifest.json`],
    );
  });

  it('its content changed and its manifest entry recomputed, manifest.sig kept: --pubkey catches it', async () => {
    await everyEntry(
      'recomputed',
      (name) => {
        const content = changed(entries.get(name)!);
        return all().map(([n, c]) => [n, n === name ? content : n === 'manifest.json' ? recomputed(name, content) : c] as const);
      },
      () => ['manifest.sig: the signature does not match manifest.json'],
      { pubkey: true },
    );
  });
});

describe('the manifest and its signature, altered', () => {
  const notes = 'data/notes.json';

  it('a data file and its manifest entry rewritten: verify alone passes (what an unsigned bundle cannot prove), the SHA-256s on record do not match, --pubkey fails', async () => {
    const content = Buffer.from(entries.get(notes)!.toString('utf8').replace(/"body":"/, '"body":"FORGED '));
    expect(content.equals(entries.get(notes)!)).toBe(false);
    const forged = await rezip('rewritten', all().map(([n, c]) => [n, n === notes ? content : n === 'manifest.json' ? recomputed(notes, content) : c] as const));
    const alone = await runCli(['--json', 'dsar', 'verify', forged]);
    expect(alone.code, alone.stdout).toBe(0);
    const v = JSON.parse(alone.stdout);
    expect(v.sha256).not.toBe(record.bundle.sha256);
    expect(v.sha256).not.toBe(auditEvent.bundle_sha256);
    expect(v.manifestSha256).not.toBe(record.bundle.manifest_sha256);
    expect(v.manifestSha256).not.toBe(auditEvent.manifest_sha256);
    expect(await verify(forged, true)).toEqual({ code: 3, invalid: ['manifest.sig: the signature does not match manifest.json'], stderr: '' });
  });

  it('a field of the manifest rewritten, no hash touched: verify alone passes, the manifest’s SHA-256 on record does not match, --pubkey fails', async () => {
    const m = manifest();
    m.subject.name = 'Someone Else';
    const forged = await rezip('subject', replacing('manifest.json', manifestBytes(m)));
    const alone = await runCli(['--json', 'dsar', 'verify', forged]);
    expect(alone.code, alone.stdout).toBe(0);
    expect(JSON.parse(alone.stdout).manifestSha256).not.toBe(record.bundle.manifest_sha256);
    expect(await verify(forged, true)).toEqual({ code: 3, invalid: ['manifest.sig: the signature does not match manifest.json'], stderr: '' });
  });

  it('a wrong SHA-256 written into the manifest for an entry, not recomputed: verify alone names the entry', async () => {
    const m = manifest();
    m.files = m.files.map((f) => (f.path === notes ? { ...f, sha256: sha256('something else') } : f));
    const forged = await rezip('wrong-hash', replacing('manifest.json', manifestBytes(m)));
    expect(await verify(forged)).toEqual({ code: 3, invalid: [`${notes}: SHA-256 ${sha256(entries.get(notes)!)} does not match the manifest`], stderr: '' });
    const signed = await verify(forged, true);
    expect(signed.code).toBe(3);
    expect(signed.invalid.sort()).toEqual(['manifest.sig: the signature does not match manifest.json', `${notes}: SHA-256 ${sha256(entries.get(notes)!)} does not match the manifest`].sort());
  });

  it('manifest.json removed, or twice: one line naming it', async () => {
    expect(await verify(await rezip('no-manifest', without('manifest.json')))).toEqual({ code: 3, invalid: ['manifest.json: missing'], stderr: '' });
    const m = manifest();
    m.subject.name = 'Someone Else';
    const twice = await verify(await rezip('two-manifests', [...all(), ['manifest.json', manifestBytes(m)]]));
    expect(twice.code).toBe(3);
    expect(twice.invalid).toContain('manifest.json: appears 2 times in the zip');
  });

  it('manifest.sig removed, altered, twice, or a forger’s own signature over a rewritten manifest: --pubkey names manifest.sig', async () => {
    const sig = JSON.parse(entries.get('manifest.sig')!.toString('utf8'));
    const badSig = Buffer.from(`${JSON.stringify({ ...sig, signature: Buffer.from(changed(Buffer.from(sig.signature, 'base64'))).toString('base64') }, null, 2)}\n`);
    const content = changed(entries.get(notes)!);
    const rewritten = recomputed(notes, content);
    // The forger signs their rewritten manifest with a key of their own.
    const forgersSig = await signedByOtherKey(rewritten);
    const resigned = all().map(([n, c]) => [n, n === notes ? content : n === 'manifest.json' ? rewritten : n === 'manifest.sig' ? forgersSig : c] as const);
    const cases: Array<[string, Entries, string | RegExp]> = [
      ['unsigned', without('manifest.sig'), 'manifest.sig: missing; the bundle is not signed'],
      ['bad-signature', replacing('manifest.sig', badSig), 'manifest.sig: the signature does not match manifest.json'],
      ['two-signatures', [...all(), ['manifest.sig', badSig]], 'manifest.sig: appears 2 times in the zip'],
      ['resigned', resigned, /^manifest\.sig: signed by key [0-9a-f]+, not [0-9a-f]+$/],
    ];
    for (const [name, list, line] of cases) {
      const v = await verify(await rezip(name, list), true);
      expect(v.code, name).toBe(3);
      expect(v.invalid, name).toContainEqual(typeof line === 'string' ? line : expect.stringMatching(line));
      expect(v.invalid.every((l) => l.startsWith('manifest.sig: ')), `${name}: ${v.invalid.join('; ')}`).toBe(true);
    }
  });
});
