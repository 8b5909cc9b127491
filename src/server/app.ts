/**
 * Loads the app's `convoy/` folder. From the sources (`convoy dev`, codegen, migrate): bundled with
 * esbuild into a directory of its own under `.convoy/build/` (inside the app, so that Node resolves
 * the app's own node_modules from there), imported, and removed. From the bundle that
 * `convoy build` wrote to `.convoy/dist/` (the production server): imported as it is, read only.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ConvoyRequest, type FunctionKind, isRegisteredFunction, type RegisteredFunction } from '../functions.js';
import type { SchemaDefinition } from '../schema.js';
import { ConvoyError } from '../values/errors.js';
import {
  type AppSources,
  bundle,
  convoyVersion,
  distDir,
  findSources,
  MANIFEST,
  type Manifest,
  readManifest,
  sourceHash,
  staleness,
} from './bundle.js';
import { ensureStateDir, stateDir } from './stateDir.js';

export { convoyDir, distDir, findSources, type Manifest } from './bundle.js';

export type AnyFunction = RegisteredFunction<FunctionKind, unknown, unknown>;

/**
 * `createContext` in `convoy/server.ts`: what it returns is every handler's `ctx` (SPEC §7). Write
 * it with `defineContext` from `_generated/server.ts` (which types `req` and `base` for the app and
 * returns the function as it is), as a plain function, or check it with `satisfies CreateContext`
 * so that `ctx` keeps the returned type; annotating it `: CreateContext` alone leaves `ctx` untyped
 * (or name the type: `CreateContext<{ auth: … }>`).
 */
export type CreateContext<Context = unknown> = (
  req: ConvoyRequest,
  base: Record<string, unknown>,
) => Context | Promise<Context>;

export interface FunctionFile {
  /** Path under `convoy/functions/` without the extension, with `/` separators: `admin/users`. */
  modulePath: string;
  /** The file's name relative to `convoy/`, as codegen imports it: `functions/admin/users.ts`. */
  fileName: string;
  exports: Array<{ name: string; kind: FunctionKind }>;
}

export interface LoadedApp {
  schema: SchemaDefinition;
  /** By wire name, `admin/users:ban`. */
  functions: Map<string, AnyFunction>;
  files: FunctionFile[];
  createContext: CreateContext | undefined;
}

/** The built modules of an app, by absolute path. */
interface Modules {
  schema: string;
  server: string | undefined;
  functions: Array<{ modulePath: string; fileName: string; module: string }>;
}

function requireSources(appDir: string): AppSources {
  const sources = findSources(appDir);
  if (!sources) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `No convoy/schema.ts in ${appDir}. Create it with \`export const schema = defineSchema({ … })\`.`,
    );
  }
  return sources;
}

function modulesIn(dir: string, manifest: Pick<Manifest, 'schema' | 'server' | 'functions'>): Modules {
  return {
    schema: path.join(dir, manifest.schema),
    server: manifest.server === undefined ? undefined : path.join(dir, manifest.server),
    functions: manifest.functions.map((fn) => ({ ...fn, module: path.join(dir, fn.module) })),
  };
}

/** The manifest's description of the modules that `bundle` writes for these sources. */
function layoutOf(sources: AppSources): Pick<Manifest, 'schema' | 'server' | 'functions'> {
  return {
    schema: 'schema.mjs',
    ...(sources.server ? { server: 'server.mjs' } : {}),
    functions: sources.functions.map(({ modulePath, fileName, entry }) => ({
      modulePath,
      fileName,
      module: `${entry}.mjs`,
    })),
  };
}

/** Imports built modules; `query` makes their URLs those of this bundle alone. */
async function importModules(modules: Modules, query = ''): Promise<LoadedApp> {
  const importBuilt = (file: string) => import(pathToFileURL(file).href + query);
  try {
    const schemaModule = await importBuilt(modules.schema);
    const schema = schemaModule.schema as SchemaDefinition | undefined;
    if (!schema || typeof schema !== 'object' || typeof schema.tables !== 'object') {
      throw new ConvoyError(
        'INVALID_ARGS',
        'convoy/schema.ts must export `schema`: `export const schema = defineSchema({ … })`',
      );
    }
    const createContext = modules.server ? (await importBuilt(modules.server)).createContext : undefined;
    if (createContext !== undefined && typeof createContext !== 'function') {
      throw new ConvoyError('INVALID_ARGS', 'convoy/server.ts: `createContext` must be a function');
    }

    const functions = new Map<string, AnyFunction>();
    const files: FunctionFile[] = [];
    for (const { modulePath, fileName, module: file } of modules.functions) {
      const module = await importBuilt(file);
      const exports: FunctionFile['exports'] = [];
      for (const [name, value] of Object.entries(module)) {
        if (!isRegisteredFunction(value)) continue;
        functions.set(`${modulePath}:${name}`, value);
        exports.push({ name, kind: value.kind });
      }
      files.push({ modulePath, fileName, exports });
    }
    return { schema, functions, files, createContext };
  } catch (error) {
    if (error instanceof ConvoyError) throw error;
    throw new ConvoyError('INVALID_ARGS', `convoy/ failed to load: ${(error as Error).stack ?? error}`);
  }
}

/**
 * Bundles `convoy/` and imports it. Each load bundles into a directory of its own, so that any
 * number of processes may load one app at once.
 */
export async function loadApp(appDir: string): Promise<LoadedApp> {
  const sources = requireSources(appDir);
  await ensureStateDir(appDir);
  const builds = path.join(stateDir(appDir), 'build');
  await mkdir(builds, { recursive: true });
  const outdir = await mkdtemp(path.join(builds, 'load-'));
  try {
    await bundle(appDir, sources, outdir, 'inline');
    return await importModules(modulesIn(outdir, layoutOf(sources)));
  } finally {
    // Loaded modules stay in memory; their files are no longer needed.
    await rm(outdir, { recursive: true, force: true });
  }
}

export interface BuiltApp {
  app: LoadedApp;
  manifest: Manifest;
  /** Why the bundle may not match the sources (see `staleness`); empty when it does. */
  stale: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A `convoy build` between moving the old bundle away and moving the new one in. */
function replacing(appDir: string): boolean {
  const home = path.dirname(distDir(appDir));
  return existsSync(home) && readdirSync(home).some((name) => /^dist\.(tmp|old)-/.test(name));
}

/**
 * Imports the bundle in `.convoy/dist/` (see `buildApp`), reading nothing else: no TypeScript, no
 * esbuild. When a build replaces the bundle while it is read, it reads the new one.
 */
export async function loadBuiltApp(appDir: string): Promise<BuiltApp> {
  const dist = distDir(appDir);
  for (let attempt = 0; ; attempt++) {
    const retry = attempt < 50;
    const manifest = readManifest(dist);
    if (!manifest) {
      if (retry && replacing(appDir)) {
        await sleep(50);
        continue;
      }
      throw new ConvoyError(
        'INVALID_ARGS',
        `No bundle of convoy/ in ${dist}: run \`npx convoy build\` in ${appDir} first ` +
          '(the production server loads that bundle, not the TypeScript sources).',
      );
    }
    let app: LoadedApp | undefined;
    let failure: unknown;
    try {
      app = await importModules(modulesIn(dist, manifest), `?build=${manifest.buildId}`);
    } catch (error) {
      failure = error;
    }
    // Unchanged since it was read: this is the bundle, whole. Otherwise a build replaced it meanwhile.
    if (readManifest(dist)?.buildId === manifest.buildId || !retry) {
      if (failure) throw failure;
      return { app: app!, manifest, stale: staleness(appDir, manifest) };
    }
    await sleep(50);
  }
}

/**
 * The app as a server loads it: from the sources (`'sources'`, the default), or from the bundle
 * of `convoy build` (`'bundle'`), served as built with a warning for each way it may be stale.
 */
export async function loadServedApp(
  appDir: string,
  from: 'sources' | 'bundle' | undefined,
  log: (line: string) => void,
): Promise<LoadedApp> {
  if (from !== 'bundle') return loadApp(appDir);
  const built = await loadBuiltApp(appDir);
  for (const reason of built.stale) {
    log(
      `convoy: warning: the bundle in .convoy/dist is stale: ${reason}. Serving it as built; run \`npx convoy build\` to serve convoy/ as it is now.`,
    );
  }
  return built.app;
}

export interface Build {
  dir: string;
  manifest: Manifest;
  app: LoadedApp;
  /** What it wrote, relative to `dir`. */
  files: string[];
}

async function filesIn(dir: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) found.push(...(await filesIn(path.join(dir, entry.name), name)));
    else found.push(name);
  }
  return found.sort();
}

/** Moves `staging` to `dist`, replacing what is there; the last of builds at once wins. */
async function moveInto(staging: string, dist: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const old = `${dist}.old-${randomUUID().slice(0, 8)}`;
    let moved = false;
    try {
      await rename(dist, old);
      moved = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    try {
      await rename(staging, dist);
      return;
    } catch (error) {
      // Another build moved its bundle in between: move that one away too.
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt > 20 || (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM')) throw error;
    } finally {
      if (moved) await rm(old, { recursive: true, force: true });
    }
  }
}

/**
 * `convoy build`: bundles `convoy/` once into `.convoy/dist/` — ESM `.mjs` files with linked
 * source maps, and `manifest.json` — for the production server. It builds beside it, checks that
 * the result loads, and only then moves it in, so a server never sees half a bundle.
 */
export async function buildApp(appDir: string): Promise<Build> {
  const sources = requireSources(appDir);
  const dist = distDir(appDir);
  await ensureStateDir(appDir);
  const staging = await mkdtemp(`${dist}.tmp-`);
  try {
    // mkdtemp makes it private to its owner; the bundle is read by whoever runs the server (the
    // unprivileged user of an image built as root).
    await chmod(staging, 0o755);
    const inputs = await bundle(appDir, sources, staging, 'linked');
    const manifest: Manifest = {
      format: 1,
      convoy: convoyVersion,
      buildId: randomUUID(),
      builtAt: new Date().toISOString(),
      sourceHash: sourceHash(appDir, sources, inputs),
      inputs,
      ...layoutOf(sources),
    };
    await writeFile(path.join(staging, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const app = await importModules(modulesIn(staging, manifest));
    const files = await filesIn(staging);
    await moveInto(staging, dist);
    return { dir: dist, manifest, app, files };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
