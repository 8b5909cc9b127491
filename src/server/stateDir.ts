/**
 * `.convoy/` of an app: what Convoy keeps for it locally (the embedded Postgres's data, bundles,
 * the lock of `convoy dev`). It keeps itself out of git with a `.gitignore` of `*` inside, as
 * Next.js's `.next/` and pytest's `.pytest_cache/` do, whatever the app's own `.gitignore` says.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export function stateDir(appDir: string): string {
  return path.join(appDir, '.convoy');
}

const SELF_IGNORE = '# Written by Convoy: this folder is local state, never committed.\n*\n';

/** Creates `.convoy/` (and its `.gitignore`) when missing; true when it was created now. */
export async function ensureStateDir(appDir: string): Promise<boolean> {
  const dir = stateDir(appDir);
  const created = !existsSync(dir);
  await mkdir(dir, { recursive: true });
  const ignore = path.join(dir, '.gitignore');
  // `wx`: an app that chose its own rules for the folder keeps them.
  if (!existsSync(ignore)) await writeFile(ignore, SELF_IGNORE, { flag: 'wx' }).catch(() => {});
  return created;
}
