// Format names written into bundles and DPO records, checked by verify; and
// the optional signature over a bundle's manifest.
import { sign, verify, type KeyObject } from 'node:crypto';
import { keyId } from '../audit/keys.js';

export const BUNDLE_FORMAT = 'trustctl-dsar-bundle/1';
export const DPO_RECORD_FORMAT = 'trustctl-dsar-dpo-record/1';
export const SIGNATURE_FORMAT = 'trustctl-dsar-signature/1';

/** The zip entry holding the Ed25519 signature of manifest.json (not itself listed in the manifest). */
export const MANIFEST_SIGNATURE = 'manifest.sig';

/** manifest.sig: JSON naming the key and holding the signature of the manifest's exact bytes. */
export function signManifest(key: KeyObject, manifest: Buffer): string {
  return `${JSON.stringify({ format: SIGNATURE_FORMAT, key_id: keyId(key), signature: sign(null, manifest, key).toString('base64') }, null, 2)}\n`;
}

/** Checks manifest.sig against the manifest and a public key; a problem line, or null when it holds. */
export function manifestSignatureProblem(key: KeyObject, manifest: Buffer, signatureFile: string): string | null {
  let parsed: { format?: unknown; key_id?: unknown; signature?: unknown };
  try {
    parsed = JSON.parse(signatureFile);
  } catch {
    return `${MANIFEST_SIGNATURE}: not valid JSON`;
  }
  if (parsed?.format !== SIGNATURE_FORMAT || typeof parsed.signature !== 'string') return `${MANIFEST_SIGNATURE}: not a trustctl signature`;
  if (parsed.key_id !== keyId(key)) return `${MANIFEST_SIGNATURE}: signed by key ${String(parsed.key_id)}, not ${keyId(key)}`;
  if (!verify(null, manifest, key, Buffer.from(parsed.signature, 'base64'))) {
    return `${MANIFEST_SIGNATURE}: the signature does not match manifest.json`;
  }
  return null;
}
