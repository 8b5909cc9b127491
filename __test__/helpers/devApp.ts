/**
 * A small app for `convoy dev` tests, laid out as a user's: `convoy/` with a schema and a function
 * file, a package.json of `"type": "module"`, a strict tsconfig, and a node_modules holding this
 * package, zod and (unless asked not to) TypeScript. `startDev` runs the CLI as
 * built (dist/) in it and waits until it serves, or until its output matches what a test awaits.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, type Running, start } from './process.js';
import { cliPath, linkPackages } from './production.js';

export const SCHEMA = `import { defineSchema, defineTable } from '@avvos/convoy';
import { z } from 'zod';
export const schema = defineSchema({ notes: defineTable({ text: z.string() }) });
`;

/** `count` answers `value`; `boom` throws on line 3 of its file. */
export const notesFile = (value: string) => `import { query } from '@avvos/convoy';
export const count = query({ handler: async (): Promise<number> => ${value} });
export const boom = query({ handler: async () => { throw new Error('boom'); } });
`;

export async function makeDevApp(
  files: Record<string, string>,
  { typescript = true }: { typescript?: boolean } = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'convoy-dev-'));
  const all: Record<string, string> = {
    'package.json': '{ "name": "dev-app", "private": true, "type": "module" }\n',
    'tsconfig.json': `${JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      include: ['convoy'],
    })}\n`,
    'convoy/schema.ts': SCHEMA,
    'convoy/functions/notes.ts': notesFile('1'),
    ...files,
  };
  for (const [name, content] of Object.entries(all)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  await linkPackages(dir, { typescript });
  return dir;
}

/** The environment of a user's terminal: no DATABASE_URL or PORT unless given, no colours. */
export function devEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { DATABASE_URL: _url, PORT: _port, ...rest } = process.env;
  return { ...rest, NO_COLOR: '1', ...extra };
}

export async function waitForOutput(running: Running, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(running.output());
    if (match) return match;
    if (running.child.exitCode !== null || Date.now() > deadline) {
      assert.fail(`no ${pattern} in the output of convoy dev (exit ${running.child.exitCode}):\n${running.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `convoy dev` on a port of its own; `url` once it says it serves (unless `until` is given). */
export async function startDev(
  appDir: string,
  {
    env = devEnv(),
    args = [],
    until = /serving (http:\/\/\S+)/,
  }: { env?: NodeJS.ProcessEnv; args?: string[]; until?: RegExp } = {},
): Promise<{ running: Running; url: string; port: number }> {
  const port = await freePort();
  const running = start('node', [cliPath, 'dev', '--port', String(port), ...args], { cwd: appDir, env });
  await waitForOutput(running, until);
  return { running, url: `http://127.0.0.1:${port}`, port };
}
