/**
 * One `convoy dev` per app folder: `.convoy/dev.json` names the one that runs (its pid and URL),
 * so a second says where the first is instead of failing on the embedded Postgres's lock file.
 * A file left by a killed process (its pid dead, or reused by another program) is taken over.
 */
import { readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stateDir } from '../server/stateDir.js';
import { commandOf, isSameProcess } from './processes.js';

export interface DevHolder {
  pid: number;
  /** Its command line, to tell it from a process that got its pid later. */
  command?: string;
  /** Unset while it starts. */
  url?: string;
}

export interface DevLock {
  /** Records the URL it serves, for the next one to name. */
  serving(url: string): Promise<void>;
}

function holderOf(file: string): DevHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as DevHolder;
    return Number.isInteger(holder.pid) ? holder : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock, or returns the live `convoy dev` that holds it. Released when this process exits. */
export async function lockDev(appDir: string): Promise<DevLock | { heldBy: DevHolder }> {
  const file = path.join(stateDir(appDir), 'dev.json');
  const write = (holder: DevHolder, flag: 'wx' | 'w') =>
    writeFile(file, `${JSON.stringify(holder, null, 2)}\n`, { flag });
  const me = { pid: process.pid, command: commandOf(process.pid) };
  for (let attempt = 0; ; attempt++) {
    try {
      // `wx`: of two that start at once, one creates the file.
      await write(me, 'wx');
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = holderOf(file);
      if (holder && holder.pid !== process.pid && isSameProcess(holder.pid, holder.command)) return { heldBy: holder };
      rmSync(file, { force: true });
    }
  }
  process.once('exit', () => {
    if (holderOf(file)?.pid === process.pid) rmSync(file, { force: true });
  });
  return { serving: (url) => write({ ...me, url }, 'w') };
}
