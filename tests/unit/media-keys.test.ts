// The media store as export and erasure see it (src/dsar/media.ts): a
// tenant writes storage_key and content_type, so both are hostile input.
import { describe, expect, it } from 'vitest';
import { bundleExtension, mediaKeyProblem } from '../../src/dsar/media.js';

const ORG = '6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c';
const ROOT = '/srv/media';
const INSIDE = 'storage key is not a path inside the organisation’s part of the media store';

describe('mediaKeyProblem', () => {
  it('accepts a relative key under the organisation’s own folder', () => {
    expect(mediaKeyProblem(ORG, ROOT, `${ORG}/site/child/drawing.png`)).toBeNull();
    expect(mediaKeyProblem(ORG, `${ROOT}/`, `${ORG}/x`)).toBeNull();
    expect(mediaKeyProblem(ORG, ROOT, `${ORG}/..png`)).toBeNull();
  });

  it.each([
    ['another organisation’s folder', `7a2b3c4d-0000-4000-8000-000000000000/site/x.png`],
    ['the organisation’s folder itself', ORG],
    ['an absolute path', `/${ORG}/x.png`],
    ['a parent segment', `${ORG}/../7a2b3c4d/x.png`],
    ['a trailing parent segment', `${ORG}/site/..`],
    ['a current-folder segment', `${ORG}/./x.png`],
    ['an empty segment', `${ORG}//x.png`],
    ['a trailing slash', `${ORG}/site/`],
    ['a backslash', `${ORG}/..\\..\\etc\\passwd`],
    ['a NUL byte', `${ORG}/x.png\0.txt`],
    ['an empty key', ''],
  ])('refuses %s', (_label, key) => {
    expect(mediaKeyProblem(ORG, ROOT, key)).toBe(INSIDE);
  });
});

describe('bundleExtension', () => {
  it.each([
    ['image/png', '.png'],
    ['image/jpeg', '.jpg'],
    ['image/gif', '.gif'],
    ['image/webp', '.webp'],
    ['application/pdf', '.pdf'],
    ['text/plain', '.txt'],
    ['audio/mpeg', '.mp3'],
    ['video/mp4', '.mp4'],
    [' Image/PNG ; charset=binary', '.png'],
    ['TEXT/PLAIN;charset=utf-8', '.txt'],
  ])('%s travels as %s', (type, ext) => {
    expect(bundleExtension(type)).toEqual({ ext, neutralised: false });
  });

  it.each([['text/html'], ['image/svg+xml'], ['application/xml'], ['application/javascript'], ['application/x-msdownload'], [''], ['png'], ['constructor'], ['__proto__'], ['hasOwnProperty'], ['toString']])(
    '%s travels as .bin',
    (type) => {
      expect(bundleExtension(type)).toEqual({ ext: '.bin', neutralised: true });
    },
  );

  it('no content type travels as .bin', () => {
    expect(bundleExtension(null)).toEqual({ ext: '.bin', neutralised: true });
  });
});
