// Ed25519 keys for signing audit checkpoints. The private key stays with the
// operators, outside the database; whoever holds only database access cannot
// forge a signed checkpoint, so a rewrite of a whole chain is still caught.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { RefusedError } from '../errors.js';
import { writePrivateFile } from '../io/private-file.js';

export interface CheckpointClaim {
  readonly org_id: string;
  readonly chain_seq: string;
  readonly head_hash: string; // hex
  readonly horizon: string;
}

/** The bytes a checkpoint signature covers. */
export function checkpointMessage(c: CheckpointClaim): Buffer {
  return Buffer.from(`trustctl-audit-checkpoint/1\n${c.org_id}\n${c.chain_seq}\n${c.head_hash}\n${c.horizon}\n`, 'utf8');
}

/** A key's id: the first 16 hex digits of the SHA-256 of its public key (DER). */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/**
 * Writes a new key pair: PRIVATE (PEM) and PUBLIC (PEM), both new private
 * files (mode 0600, never through a symlink). A private key is never
 * overwritten: anything at PRIVATE, a symlink included, is a refusal.
 *
 * @example
 * await generateSigningKey('/secure/audit.key', '/secure/audit.pub')
 */
export async function generateSigningKey(privatePath: string, publicPath: string): Promise<{ keyId: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writePrivateFile(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { replace: false }).catch((error: unknown) => {
    if (error instanceof RefusedError) throw new RefusedError(`${privatePath} already exists`, 'Choose another path; keys are never overwritten');
    throw error;
  });
  await writePrivateFile(publicPath, publicKey.export({ type: 'spki', format: 'pem' }));
  return { keyId: keyId(publicKey) };
}

async function readKey(path: string, kind: 'private' | 'public'): Promise<KeyObject> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new RefusedError(`cannot read ${kind} key ${path}`);
  });
  try {
    const key = kind === 'private' ? createPrivateKey(text) : createPublicKey(text);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return key;
  } catch {
    throw new RefusedError(`${path} is not an Ed25519 ${kind} key in PEM form`, 'Make one with: trustctl audit keygen');
  }
}

export const loadPrivateKey = (path: string): Promise<KeyObject> => readKey(path, 'private');
export const loadPublicKey = (path: string): Promise<KeyObject> => readKey(path, 'public');

export function signCheckpoint(key: KeyObject, claim: CheckpointClaim): Buffer {
  return sign(null, checkpointMessage(claim), key);
}

export function checkpointSignatureValid(key: KeyObject, claim: CheckpointClaim, signature: Buffer): boolean {
  return verify(null, checkpointMessage(claim), key, signature);
}
