// Runs the built binary (npm test builds first) and captures what a person
// or a script would see.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { strykerChild } from './stryker-bridge.js';

const BIN = fileURLToPath(new URL('../../bin/trustctl.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  args: string[],
  {
    env = {},
    input,
    onSpawn,
    bin = BIN,
    cwd,
  }: {
    env?: Record<string, string | undefined>;
    input?: string;
    onSpawn?: (child: ChildProcess) => void;
    /** Another checkout's bin/trustctl.js. */
    bin?: string;
    cwd?: string;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const stryker = strykerChild();
    const child = spawn(process.execPath, [...stryker.nodeArgs, bin, ...args], {
      cwd,
      env: { ...process.env, ...stryker.env, DATABASE_URL: undefined, CI: 'true', FORCE_COLOR: '0', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      stryker.collect();
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
    onSpawn?.(child);
  });
}
