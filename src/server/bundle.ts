/**
 * The app's `convoy/` folder as esbuild bundles it. `convoy dev` (and codegen, migrate) bundle it
 * into a directory of their own on every load; `convoy build` bundles it once into `.convoy/dist/`
 * with a manifest, which the production server loads without the TypeScript sources or esbuild.
 * esbuild is imported only where a bundle is made, so the production server never loads it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConvoyError } from '../values/errors.js';

const SOURCE = /\.(ts|tsx|mts|js|mjs|jsx)$/;

/** The version of Convoy this is, as its package.json says (dist/server/ and src/server/ alike). */
export const convoyVersion: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

export function convoyDir(appDir: string): string {
  return path.join(appDir, 'convoy');
}

/** Where `convoy build` puts the bundle the production server loads. */
export function distDir(appDir: string): string {
  return path.join(appDir, '.convoy', 'dist');
}

export interface FunctionSource {
  /** Absolute path of the file. */
  file: string;
  /** Path under `convoy/functions/` without the extension, with `/` separators: `admin/users`. */
  modulePath: string;
  /** The file's name relative to `convoy/`, as codegen imports it: `functions/admin/users.ts`. */
  fileName: string;
  /** The bundle's name for it, without the extension: `functions/admin/users`. */
  entry: string;
}

/** The files of an app that are bundled: `convoy/schema.ts`, `convoy/server.ts`, `convoy/functions/**`. */
export interface AppSources {
  schema: string;
  server: string | undefined;
  functions: FunctionSource[];
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

const slash = (file: string) => file.split(path.sep).join('/');

/** The app's sources, or undefined when there is no `convoy/schema.ts` (as in a runtime image). */
export function findSources(appDir: string): AppSources | undefined {
  const dir = convoyDir(appDir);
  const schema = findSource(dir, 'schema');
  if (!schema) return undefined;
  const functionsDir = path.join(dir, 'functions');
  const entries = new Set<string>();
  const functions = functionFiles(functionsDir).map((file) => {
    const modulePath = slash(path.relative(functionsDir, file).replace(SOURCE, ''));
    // `notes.ts` beside `notes.js`: one module path, two bundles.
    let entry = `functions/${modulePath}`;
    for (let n = 1; entries.has(entry); n++) entry = `functions/${modulePath}~${n}`;
    entries.add(entry);
    return { file, modulePath, fileName: slash(path.relative(dir, file)), entry };
  });
  return { schema, server: findSource(dir, 'server'), functions };
}

/**
 * Bundles the sources into `outdir`: `schema.mjs`, `server.mjs`, `functions/<path>.mjs`, each
 * with its source map inline (a load that is imported at once) or linked (`.mjs.map` beside it,
 * sources included). Returns the files that went in, relative to the app, without packages.
 */
export async function bundle(
  appDir: string,
  sources: AppSources,
  outdir: string,
  sourcemap: 'inline' | 'linked',
): Promise<string[]> {
  const entryPoints: Record<string, string> = { schema: sources.schema };
  if (sources.server) entryPoints.server = sources.server;
  for (const source of sources.functions) entryPoints[source.entry] = source.file;
  const { build } = await import('esbuild');
  try {
    const result = await build({
      absWorkingDir: appDir,
      entryPoints,
      outdir,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap,
      sourcesContent: true,
      metafile: true,
      outExtension: { '.js': '.mjs' },
      logLevel: 'silent',
    });
    return Object.keys(result.metafile.inputs)
      .filter((input) => !input.includes('node_modules/') && !input.startsWith('<'))
      .sort();
  } catch (error) {
    const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number } }> }).errors;
    const detail = errors
      ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text)).join('\n')
      : String(error);
    throw new ConvoyError('INVALID_ARGS', `convoy/ does not build:\n${detail}`);
  }
}

/**
 * A hash of what a bundle was made from: which files are entries, and the content of every file
 * that went in (a file that is gone hashes as missing).
 */
export function sourceHash(appDir: string, sources: AppSources, inputs: string[]): string {
  const hash = createHash('sha256');
  const entries = [sources.schema, sources.server ?? '', ...sources.functions.map((source) => source.file)].map(
    (file) => (file ? slash(path.relative(appDir, file)) : ''),
  );
  hash.update(JSON.stringify(entries));
  for (const input of [...inputs].sort()) {
    const file = path.resolve(appDir, input);
    const content = existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : 'missing';
    hash.update(`\n${input}\0${content}`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** `.convoy/dist/manifest.json`: what the production server needs to load the bundle. */
export interface Manifest {
  format: 1;
  /** The version of Convoy that built it. */
  convoy: string;
  /** Unique to each build. */
  buildId: string;
  builtAt: string;
  /** `sourceHash` of the sources it was built from. */
  sourceHash: string;
  /** The files that went in, relative to the app. */
  inputs: string[];
  /** Module files, relative to the bundle's folder. */
  schema: string;
  server?: string;
  functions: Array<{ modulePath: string; fileName: string; module: string }>;
}

export const MANIFEST = 'manifest.json';

/** The manifest in `dir`, or undefined when there is none. */
export function readManifest(dir: string): Manifest | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, MANIFEST), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConvoyError(
      'INVALID_ARGS',
      `cannot read the bundle's ${path.join(dir, MANIFEST)} (${(error as Error).message}); the user that runs the server must be able to read .convoy/dist`,
    );
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch {
    throw new ConvoyError('INVALID_ARGS', `${path.join(dir, MANIFEST)} is not JSON; run \`npx convoy build\` again`);
  }
  if (manifest?.format !== 1 || typeof manifest.schema !== 'string' || !Array.isArray(manifest.functions)) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `${path.join(dir, MANIFEST)} was written by another version of Convoy; run \`npx convoy build\` again`,
    );
  }
  return manifest;
}

/**
 * Why a bundle may not be what the app's sources say now: built by another version of Convoy, or
 * from sources that changed since. Empty when it is current, or when the sources are not here to
 * compare (a runtime image holds the bundle alone).
 */
export function staleness(appDir: string, manifest: Manifest): string[] {
  const reasons: string[] = [];
  if (manifest.convoy !== convoyVersion) {
    reasons.push(`it was built by Convoy ${manifest.convoy}, and this is Convoy ${convoyVersion}`);
  }
  const sources = findSources(appDir);
  if (sources && sourceHash(appDir, sources, manifest.inputs) !== manifest.sourceHash) {
    reasons.push(`convoy/ changed since it was built (${manifest.builtAt})`);
  }
  return reasons;
}
