/**
 * Runs a program to its end and gives back its exit code and what it wrote, stdout and stderr
 * interleaved as they came: the tools Convoy runs (initdb, tsc) tell what went wrong on either.
 */
import { type SpawnOptions, spawn } from 'node:child_process';

export function collectOutput(
  command: string,
  args: string[],
  options: Omit<SpawnOptions, 'stdio'> = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { windowsHide: true, ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk;
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}
