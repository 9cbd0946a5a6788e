import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyId } from '../../src/audit/keys.js';
import { MANIFEST_SIGNATURE, SIGNATURE_FORMAT, manifestSignatureProblem, signManifest } from '../../src/dsar/format.js';

const dpo = generateKeyPairSync('ed25519');
const forger = generateKeyPairSync('ed25519');
const manifest = Buffer.from('{"format":"trustctl-dsar-bundle/1","files":[]}\n');

describe('manifest.sig', () => {
  it('names the key and signs the manifest’s exact bytes; the DPO’s public key verifies it', () => {
    const text = signManifest(dpo.privateKey, manifest);
    expect(text.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(text);
    expect(Object.keys(parsed)).toEqual(['format', 'key_id', 'signature']);
    expect(parsed.format).toBe(SIGNATURE_FORMAT);
    expect(SIGNATURE_FORMAT).toBe('trustctl-dsar-signature/1');
    expect(MANIFEST_SIGNATURE).toBe('manifest.sig');
    expect(parsed.key_id).toBe(keyId(dpo.publicKey));
    expect(Buffer.from(parsed.signature, 'base64')).toHaveLength(64);
    expect(manifestSignatureProblem(dpo.publicKey, manifest, text)).toBeNull();
  });

  it('reports each way it can fail, in words', () => {
    const good = JSON.parse(signManifest(dpo.privateKey, manifest));
    const problem = (file: unknown, bytes = manifest) => manifestSignatureProblem(dpo.publicKey, bytes, typeof file === 'string' ? file : JSON.stringify(file));
    expect(problem('{not json')).toBe('manifest.sig: not valid JSON');
    expect(problem('null')).toBe('manifest.sig: not a trustctl signature');
    expect(problem({ ...good, format: 'trustctl-dsar-signature/2' })).toBe('manifest.sig: not a trustctl signature');
    expect(problem({ ...good, signature: 42 })).toBe('manifest.sig: not a trustctl signature');
    expect(problem({ ...good, key_id: 'abc' })).toBe(`manifest.sig: signed by key abc, not ${keyId(dpo.publicKey)}`);
    expect(problem(good, Buffer.from(`${manifest.toString()} `))).toBe('manifest.sig: the signature does not match manifest.json');
    const flipped = Buffer.from(good.signature, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    expect(problem({ ...good, signature: flipped.toString('base64') })).toBe('manifest.sig: the signature does not match manifest.json');
    // A forger's own key, named as the DPO's.
    const forged = JSON.parse(signManifest(forger.privateKey, manifest));
    expect(problem({ ...forged, key_id: good.key_id })).toBe('manifest.sig: the signature does not match manifest.json');
    expect(problem(forged)).toBe(`manifest.sig: signed by key ${keyId(forger.publicKey)}, not ${keyId(dpo.publicKey)}`);
  });
});
