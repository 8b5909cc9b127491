/** Finding the app and its database, shared by the commands. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import pc from 'picocolors';
import { convoyDir } from '../server/app.js';

/** The app's folder; `exitCode` is what a missing `convoy/` exits with. */
export function resolveAppDir(dir: string | undefined, exitCode = 1): string {
  const appDir = path.resolve(dir ?? '.');
  if (!existsSync(convoyDir(appDir))) {
    fail(
      `No convoy/ folder in ${appDir}.\n` +
        '  Create convoy/schema.ts (export const schema = defineSchema({ … })) and convoy/functions/*.ts,\n' +
        '  or pass --dir <the folder that holds convoy/>.',
      exitCode,
    );
  }
  return appDir;
}

export function fail(message: string, exitCode = 1): never {
  console.error(`${pc.red('convoy:')} ${message}`);
  process.exit(exitCode);
}

export function info(message: string): void {
  console.log(`${pc.cyan('convoy')} ${message}`);
}
