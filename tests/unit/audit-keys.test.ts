// Ed25519 keys for signed audit checkpoints (src/audit/keys.ts): the exact
// bytes a signature covers, key ids, and key files read and written as
// private files that are never overwritten.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { lstat, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointMessage, checkpointSignatureValid, generateSigningKey, keyId, loadPrivateKey, loadPublicKey, signCheckpoint, type CheckpointClaim,
} from '../../src/audit/keys.js';
import { RefusedError } from '../../src/errors.js';

const CLAIM: CheckpointClaim = { org_id: '6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c', chain_seq: '1042', head_hash: 'ab'.repeat(32), horizon: '98765' };
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'trustctl-keys-unit-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('checkpoint signatures', () => {
  it('cover exactly the format, organisation, position, head and horizon, one per line', () => {
    expect(checkpointMessage(CLAIM).toString('utf8')).toBe(`trustctl-audit-checkpoint/1\n${CLAIM.org_id}\n1042\n${'ab'.repeat(32)}\n98765\n`);
  });

  it('verify with the public key, and fail when any field of the claim changes', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signature = signCheckpoint(privateKey, CLAIM);
    expect(signature).toHaveLength(64);
    expect(checkpointSignatureValid(publicKey, CLAIM, signature)).toBe(true);
    for (const field of Object.keys(CLAIM) as (keyof CheckpointClaim)[]) {
      expect(checkpointSignatureValid(publicKey, { ...CLAIM, [field]: `${CLAIM[field]}0` }, signature), field).toBe(false);
    }
    expect(checkpointSignatureValid(generateKeyPairSync('ed25519').publicKey, CLAIM, signature)).toBe(false);
  });

  it('a key id is the first 16 hex digits of the SHA-256 of the public key, the same from either half', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(keyId(publicKey)).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16));
    expect(keyId(privateKey)).toBe(keyId(publicKey));
    expect(keyId(generateKeyPairSync('ed25519').publicKey)).not.toBe(keyId(publicKey));
  });
});

describe('key files', () => {
  it('are written as private files, and read back as the same pair', async () => {
    const priv = join(work, 'a.key');
    const pub = join(work, 'a.pub');
    const { keyId: id } = await generateSigningKey(priv, pub);
    for (const path of [priv, pub]) expect(((await lstat(path)).mode & 0o777).toString(8), path).toBe('600');
    expect(await readFile(priv, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await readFile(pub, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const privateKey = await loadPrivateKey(priv);
    const publicKey = await loadPublicKey(pub);
    expect(keyId(privateKey)).toBe(id);
    expect(keyId(publicKey)).toBe(id);
    expect(checkpointSignatureValid(publicKey, CLAIM, signCheckpoint(privateKey, CLAIM))).toBe(true);
  });

  it('never overwrite a private key, nor write through a symlink at its path', async () => {
    const priv = join(work, 'b.key');
    await generateSigningKey(priv, join(work, 'b.pub'));
    const before = await readFile(priv, 'utf8');
    const refusal = new RefusedError(`${priv} already exists`, 'Choose another path; keys are never overwritten');
    await expect(generateSigningKey(priv, join(work, 'b2.pub'))).rejects.toThrow(refusal);
    expect(await readFile(priv, 'utf8')).toBe(before);
    const target = join(work, 'victim.txt');
    await writeFile(target, 'keep\n');
    const link = join(work, 'c.key');
    await symlink(target, link);
    await expect(generateSigningKey(link, join(work, 'c.pub'))).rejects.toThrow(new RefusedError(`${link} already exists`, 'Choose another path; keys are never overwritten'));
    expect(await readFile(target, 'utf8')).toBe('keep\n');
  });

  it('a folder that does not exist is that error, not "already exists"', async () => {
    const priv = join(work, 'no-such-folder', 'e.key');
    const error = await generateSigningKey(priv, join(work, 'e.pub')).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(RefusedError);
    expect(error).toMatchObject({ code: 'ENOENT' });
  });

  it('that are missing, not PEM, the wrong half or not Ed25519 are refused in words', async () => {
    const missing = join(work, 'none.key');
    await expect(loadPrivateKey(missing)).rejects.toThrow(new RefusedError(`cannot read private key ${missing}`));
    await expect(loadPublicKey(missing)).rejects.toThrow(new RefusedError(`cannot read public key ${missing}`));
    const junk = join(work, 'junk.pem');
    await writeFile(junk, 'not a key\n');
    await expect(loadPrivateKey(junk)).rejects.toThrow(new RefusedError(`${junk} is not an Ed25519 private key in PEM form`, 'Make one with: trustctl audit keygen'));
    await expect(loadPublicKey(junk)).rejects.toThrow(new RefusedError(`${junk} is not an Ed25519 public key in PEM form`, 'Make one with: trustctl audit keygen'));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsaPriv = join(work, 'rsa.key');
    const rsaPub = join(work, 'rsa.pub');
    await writeFile(rsaPriv, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(rsaPub, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    await expect(loadPrivateKey(rsaPriv)).rejects.toThrow(new RefusedError(`${rsaPriv} is not an Ed25519 private key in PEM form`, 'Make one with: trustctl audit keygen'));
    await expect(loadPublicKey(rsaPub)).rejects.toThrow(new RefusedError(`${rsaPub} is not an Ed25519 public key in PEM form`, 'Make one with: trustctl audit keygen'));
    // A public key file where the private one should be.
    await generateSigningKey(join(work, 'd.key'), join(work, 'd.pub'));
    await expect(loadPrivateKey(join(work, 'd.pub'))).rejects.toBeInstanceOf(RefusedError);
  });
});
