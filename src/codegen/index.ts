/**
 * Writes `convoy/_generated/` (SPEC §2), one template per file (`./templates/`). Types flow by
 * inference from the app's own files, so these files only need rewriting when files or exports
 * are added or removed. A file is written only when its content changes, so a watcher never sees
 * its own writes as edits.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FunctionFile } from '../server/app.js';
import { apiTs } from './templates/api.js';
import { importSpecifier } from './templates/common.js';
import { dataModelTs } from './templates/dataModel.js';
import { httpJs } from './templates/http.js';
import { serverTs } from './templates/server.js';

export function generatedDir(appDir: string): string {
  return path.join(appDir, 'convoy', '_generated');
}

async function writeIfChanged(file: string, content: string): Promise<boolean> {
  if (existsSync(file) && readFileSync(file, 'utf8') === content) return false;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return true;
}

/** `../server.js` when `convoy/server.*` exports `createContext` (read from its source). */
export function contextModule(appDir: string): string | null {
  for (const extension of ['.ts', '.tsx', '.mts', '.js', '.mjs']) {
    const file = path.join(appDir, 'convoy', `server${extension}`);
    if (!existsSync(file)) continue;
    const source = readFileSync(file, 'utf8');
    const exported =
      /export\s+(async\s+)?function\s*\*?\s*createContext\b/.test(source) ||
      /export\s+(const|let|var)\s+createContext\b/.test(source) ||
      /export\s*\{[^}]*\bcreateContext\b[^}]*\}/.test(source);
    return exported ? importSpecifier(`server${extension}`) : null;
  }
  return null;
}

/** The files that do not depend on the function list; they must exist before `convoy/` is bundled. */
export async function writeStaticFiles(appDir: string): Promise<string[]> {
  const dir = generatedDir(appDir);
  const written: string[] = [];
  for (const [name, content] of [
    ['server.ts', serverTs(contextModule(appDir))],
    ['dataModel.ts', dataModelTs()],
    ['http.js', httpJs()],
  ] as const) {
    if (await writeIfChanged(path.join(dir, name), content)) written.push(name);
  }
  return written;
}

/** Writes every generated file; returns the names of those that changed. */
export async function writeGenerated(appDir: string, files: FunctionFile[]): Promise<string[]> {
  const written = await writeStaticFiles(appDir);
  if (await writeIfChanged(path.join(generatedDir(appDir), 'api.ts'), apiTs(files))) written.push('api.ts');
  return written;
}
