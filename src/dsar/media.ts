// The media store as DSAR export and erasure see it: which storage keys a
// job may touch (a plain path inside the organisation's own part of the
// store, whatever a tenant wrote into storage_key), and under which name a
// file may travel in a bundle (an extension that opens it inertly, from a
// fixed list by content type; anything else as .bin).
import { resolve, sep } from 'node:path';

/**
 * Why a storage key is not one this organisation's job may read or remove,
 * or null. Keys are `ORG_ID/…`, relative, without `.`, `..`, empty segments
 * or backslashes.
 *
 * @example
 * mediaKeyProblem(org, '/srv/media', `${org}/site/child/drawing.png`) // null
 * mediaKeyProblem(org, '/srv/media', '../other-org/x.png') // 'storage key is not …'
 */
export function mediaKeyProblem(orgId: string, root: string, key: string): string | null {
  const segments = key.split('/');
  if (segments[0] !== orgId || segments.length < 2 || segments.some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    return 'storage key is not a path inside the organisation’s part of the media store';
  }
  const path = resolve(root, key);
  if (!path.startsWith(resolve(root) + sep)) return 'storage key points outside the media store';
  return null;
}

/**
 * Content types a bundle carries under their own extension: they open in a
 * viewer, not a browser that would run them. HTML, SVG, XML, scripts and
 * everything else travel as .bin.
 */
const SAFE_EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/webp': '.webp',
  'application/pdf': '.pdf',
  'text/plain': '.txt',
  'audio/mpeg': '.mp3',
  'video/mp4': '.mp4',
};

/**
 * The extension a media file travels under in a bundle, from its recorded
 * content type (never from its storage key), and whether it was neutralised.
 *
 * @example
 * bundleExtension('image/png') // { ext: '.png', neutralised: false }
 * bundleExtension('text/html') // { ext: '.bin', neutralised: true }
 */
export function bundleExtension(contentType: string | null): { ext: string; neutralised: boolean } {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  // Own keys only: a content type of "constructor" or "__proto__" names no extension.
  return Object.hasOwn(SAFE_EXTENSIONS, type) ? { ext: SAFE_EXTENSIONS[type]!, neutralised: false } : { ext: '.bin', neutralised: true };
}
