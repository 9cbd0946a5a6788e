// Whether a command is on the PATH, so the next steps a person is shown are
// ones that work where they are.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * @example
 * commandOnPath('trustctl') // false right after `npm ci && npm run demo`
 */
export function commandOnPath(name: string, path = process.env.PATH ?? ''): boolean {
  return path
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}
