// The demo seed derives ids as md5('trustctl-demo:' || name)::uuid.
import { createHash } from 'node:crypto';

export function demoId(name: string): string {
  const h = createHash('md5').update(`trustctl-demo:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const OAK = demoId('org:oak-trust');
export const ACORNS = demoId('org:little-acorns');
export const PLATFORM = demoId('org:platform');
export const OAK_PRIMARY = demoId('site:oak-primary');
export const ASH_PRIMARY = demoId('site:ash-primary');
