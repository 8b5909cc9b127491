/**
 * The production path for tests: the CLI as built (dist/), a copy of an app folder of its own,
 * the production entry `node convoy/_generated/http.js`, and what a database holds.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDatabase } from './postgres.js';
import { type Running, run, start } from './process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = path.join(root, 'dist', 'cli', 'bin.js');

/** `convoy <args>` as built, in `cwd`. */
export function convoy(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  return run('node', [cliPath, ...args], { cwd, env });
}

/**
 * A copy of `source` (its `convoy/` only) in a new folder, with a node_modules that holds this
 * package and zod, as an installed app's does. Returns the copy's folder.
 */
export async function copyApp(source: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'convoy-app-'));
  await cp(path.join(source, 'convoy'), path.join(dir, 'convoy'), {
    recursive: true,
    filter: (file) => !file.includes(`${path.sep}_generated`),
  });
  await linkPackages(dir);
  return dir;
}

/**
 * A node_modules in `dir` as an installed app's: this package and zod (and TypeScript when
 * asked), linked to this checkout's.
 */
export async function linkPackages(dir: string, { typescript = false }: { typescript?: boolean } = {}): Promise<void> {
  const modules = path.join(dir, 'node_modules');
  await mkdir(path.join(modules, '@avvos'), { recursive: true });
  await symlink(root, path.join(modules, '@avvos', 'convoy'), 'dir');
  for (const name of ['zod', ...(typescript ? ['typescript'] : [])]) {
    await symlink(path.join(root, 'node_modules', name), path.join(modules, name), 'dir');
  }
}

/** `node convoy/_generated/http.js` in `appDir` on a port of its own; `url` once it says it serves. */
export async function startProduction(
  appDir: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<{ running: Running; url: string }> {
  const running = start('node', [...nodeArgs, path.join('convoy', '_generated', 'http.js')], {
    cwd: appDir,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const match = /on port (\d+)/.exec(running.output());
    if (match) return { running, url: `http://127.0.0.1:${match[1]}` };
    if (running.child.exitCode !== null || Date.now() > deadline) {
      await running.stop('SIGTERM');
      assert.fail(`the production server did not start:\n${running.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Everything a schema change could touch: schemas, relations (tables, indexes, sequences),
 * columns, triggers, functions outside the system schemas, and Convoy's bookkeeping rows.
 */
export async function snapshot(database: TestDatabase): Promise<Record<string, unknown>> {
  const user = "NOT IN ('pg_catalog', 'information_schema', 'pg_toast')";
  const schemas = await database.query(
    `SELECT nspname AS name FROM pg_namespace WHERE nspname ${user} AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%' ORDER BY 1`,
  );
  const relations = await database.query(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname ${user} AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2`,
  );
  const columns = await database.query(
    `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
     WHERE table_schema ${user} ORDER BY 1, 2, 3`,
  );
  const triggers = await database.query(
    'SELECT tgrelid::regclass::text AS on, tgname AS name FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2',
  );
  const functions = await database.query(
    `SELECT n.nspname AS schema, p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname ${user} ORDER BY 1, 2`,
  );
  const hasBookkeeping = (await database.query("SELECT to_regclass('convoy.indexes') IS NOT NULL AS yes"))[0].yes;
  const bookkeeping = hasBookkeeping
    ? {
        tables: await database.query('SELECT name, created_at FROM convoy.tables ORDER BY 1'),
        indexes: await database.query('SELECT * FROM convoy.indexes ORDER BY 1, 2'),
      }
    : null;
  return { schemas, relations, columns, triggers, functions, bookkeeping };
}

/** Starts the production entry and waits for it to exit (it is expected to refuse). */
export async function runProductionToExit(appDir: string, env: NodeJS.ProcessEnv) {
  const running = start('node', [path.join('convoy', '_generated', 'http.js')], {
    cwd: appDir,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 60_000);
    running.child.once('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  await running.stop('SIGTERM');
  return { code, output: running.output() };
}
