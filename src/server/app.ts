/**
 * Loads the app's `convoy/` folder: bundles it with esbuild into `.convoy/build/` (inside the app,
 * so that Node resolves the app's own node_modules from there) and imports the result.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { type ConvoyRequest, type FunctionKind, isRegisteredFunction, type RegisteredFunction } from '../functions.js';
import type { SchemaDefinition } from '../schema.js';
import { ConvoyError } from '../values/errors.js';

export type AnyFunction = RegisteredFunction<FunctionKind, unknown, unknown>;

/**
 * `createContext` in `convoy/server.ts`: what it returns is every handler's `ctx` (SPEC §7). Write
 * it as a plain function, or check it with `satisfies CreateContext` so that `ctx` keeps the
 * returned type; annotating it `: CreateContext` alone leaves `ctx` untyped (or name the type:
 * `CreateContext<{ auth: … }>`).
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

const SOURCE = /\.(ts|tsx|mts|js|mjs|jsx)$/;

export function convoyDir(appDir: string): string {
  return path.join(appDir, 'convoy');
}

function findSource(dir: string, name: string): string | undefined {
  for (const extension of ['.ts', '.tsx', '.mts', '.js', '.mjs']) {
    const file = path.join(dir, name + extension);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Every function file under `convoy/functions/`, skipping tests, declarations and `_`/`.` folders. */
function functionFiles(functionsDir: string): string[] {
  if (!existsSync(functionsDir)) return [];
  const found: string[] = [];
  const visit = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('_') || name.startsWith('.')) continue;
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) visit(full);
      else if (SOURCE.test(name) && !name.endsWith('.d.ts') && !/\.(test|spec)\.[a-z]+$/.test(name)) found.push(full);
    }
  };
  visit(functionsDir);
  return found;
}

let generation = 0;

export async function loadApp(appDir: string): Promise<LoadedApp> {
  const dir = convoyDir(appDir);
  const schemaFile = findSource(dir, 'schema');
  if (!schemaFile) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `No convoy/schema.ts in ${appDir}. Create it with \`export const schema = defineSchema({ … })\`.`,
    );
  }
  const serverFile = findSource(dir, 'server');
  const functionsDir = path.join(dir, 'functions');
  const sources = functionFiles(functionsDir);

  const entryPoints: Record<string, string> = { schema: schemaFile };
  if (serverFile) entryPoints.server = serverFile;
  const modulePaths = new Map<string, string>();
  sources.forEach((file, index) => {
    const modulePath = path.relative(functionsDir, file).replace(SOURCE, '').split(path.sep).join('/');
    entryPoints[`functions/${index}`] = file;
    modulePaths.set(`functions/${index}`, modulePath);
  });

  generation += 1;
  const outdir = path.join(appDir, '.convoy', 'build', String(generation));
  try {
    await build({
      entryPoints,
      outdir,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'inline',
      outExtension: { '.js': '.mjs' },
      logLevel: 'silent',
    });
  } catch (error) {
    const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number } }> }).errors;
    const detail = errors
      ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text)).join('\n')
      : String(error);
    throw new ConvoyError('INVALID_ARGS', `convoy/ does not build:\n${detail}`);
  }

  try {
    const importBuilt = (name: string) => import(pathToFileURL(path.join(outdir, `${name}.mjs`)).href);
    const schemaModule = await importBuilt('schema');
    const schema = schemaModule.schema as SchemaDefinition | undefined;
    if (!schema || typeof schema !== 'object' || typeof schema.tables !== 'object') {
      throw new ConvoyError(
        'INVALID_ARGS',
        'convoy/schema.ts must export `schema`: `export const schema = defineSchema({ … })`',
      );
    }
    const createContext = serverFile ? (await importBuilt('server')).createContext : undefined;
    if (createContext !== undefined && typeof createContext !== 'function') {
      throw new ConvoyError('INVALID_ARGS', 'convoy/server.ts: `createContext` must be a function');
    }

    const functions = new Map<string, AnyFunction>();
    const files: FunctionFile[] = [];
    for (const [entry, modulePath] of modulePaths) {
      const module = await importBuilt(entry);
      const exports: FunctionFile['exports'] = [];
      for (const [name, value] of Object.entries(module)) {
        if (!isRegisteredFunction(value)) continue;
        functions.set(`${modulePath}:${name}`, value);
        exports.push({ name, kind: value.kind });
      }
      const fileName = path
        .relative(dir, sources[Number(entry.split('/')[1])]!)
        .split(path.sep)
        .join('/');
      files.push({ modulePath, fileName, exports });
    }
    return { schema, functions, files, createContext };
  } catch (error) {
    if (error instanceof ConvoyError) throw error;
    throw new ConvoyError('INVALID_ARGS', `convoy/ failed to load: ${(error as Error).stack ?? error}`);
  } finally {
    // Loaded modules stay in memory; their files are no longer needed.
    await rm(outdir, { recursive: true, force: true });
  }
}
