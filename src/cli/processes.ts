/**
 * What runs as a pid, for the files a process leaves behind when it is killed (`postmaster.pid`,
 * `.convoy/dev.json`): a pid in such a file may be dead, or reused by another program since.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, another user's (the embedded Postgres runs as "postgres" when we are root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The command line of a live process, or undefined where it cannot be read (Windows, a `ps`
 * that is missing): callers then trust that the pid is alive and nothing more.
 */
export function commandOf(pid: number): string | undefined {
  if (process.platform === 'linux') {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      return undefined;
    }
  }
  if (process.platform === 'win32') return undefined;
  const ps = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
  return ps.status === 0 ? ps.stdout.trim() : undefined;
}

/**
 * Whether `pid` is still the process that wrote it down with its `command`: alive, and running
 * the same command line (a pid reused by another program runs another), where that can be read.
 */
export function isSameProcess(pid: number | undefined, command: string | undefined): pid is number {
  if (pid === undefined || !isAlive(pid)) return false;
  const now = commandOf(pid);
  return command === undefined || now === undefined || now === command;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `pid` is gone; false when it is still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}
