#!/usr/bin/env node
/**
 * What the release workflow runs on each platform it builds for (.github/workflows/release.yml),
 * with the binary built for this platform at the repository root (`convoy.<platform>.node`). It
 * needs no Postgres, and `openssl` on PATH for the TLS part of the smoke test.
 *
 *   node scripts/check-platform.mjs                       the binary at the root
 *   node scripts/check-platform.mjs --registry <version>  @avvos/convoy@<version> from npm
 *
 * With the binary at the root: `npm ci`; the smoke test (scripts/smoke-native.mjs) against this
 * repository's loader, which must load that binary; the type checks and the tests that need no
 * Postgres; then the path users' installs take — the main package and `npm/<platform>/` (with the
 * binary copied in) packed, installed together in a fresh folder, and the smoke test against the
 * installed loader, which must load the binary from node_modules/@avvos/convoy-<platform>.
 *
 * With `--registry`, after a release: `npm install @avvos/convoy@<version>` in a fresh folder, as a
 * user would (npm picks the platform package by `os`, `cpu` and `libc`), and the same smoke test.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const smoke = path.join(root, 'scripts', 'smoke-native.mjs');
// The unit tests that need no Postgres (the others create databases).
const testsWithoutPostgres = ['__test__/identity.test.ts'];

const args = process.argv.slice(2);
const registryIndex = args.indexOf('--registry');
const registryVersion = registryIndex === -1 ? undefined : args[registryIndex + 1];

/** The napi-rs name of this platform, as in `convoy.<platform>.node` and `npm/<platform>/`. */
function hostPlatform() {
  const { platform, arch } = process;
  if (platform === 'linux')
    return `linux-${arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function fail(message) {
  console.error(`check-platform: FAILED: ${message}`);
  process.exit(1);
}

/** Runs a command, its output shown; fails the check if it fails. */
function step(title, command, commandArgs, cwd = root) {
  console.log(`\n::group::${title}`);
  console.log(`$ ${command} ${commandArgs.join(' ')}   (in ${cwd})`);
  // npm is `npm.cmd` on Windows, which Node only starts through a shell; quote what has spaces.
  const windows = process.platform === 'win32';
  const quoted = windows ? commandArgs.map((arg) => (/\s/.test(arg) ? `"${arg}"` : arg)) : commandArgs;
  const { status, error } = spawnSync(command, quoted, { cwd, stdio: 'inherit', shell: windows });
  console.log('::endgroup::');
  if (error) fail(`${title}: ${error.message}`);
  if (status !== 0) fail(`${title}: exit code ${status}`);
}

function tarballIn(folder) {
  const tarball = readdirSync(folder).find((name) => name.endsWith('.tgz'));
  if (!tarball) fail(`npm pack wrote no tarball in ${folder}`);
  return path.join(folder, tarball);
}

function nodeFilesUnder(folder) {
  return readdirSync(folder, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.node'));
}

/** A fresh app folder with a package.json, as `npm init` would leave it. */
function freshApp(work) {
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  return app;
}

const platform = hostPlatform();
const binary = `convoy.${platform}.node`;
const packageName = `@avvos/convoy-${platform}`;
console.log(`check-platform: ${platform}, Node ${process.version}`);
const work = mkdtempSync(path.join(tmpdir(), 'convoy-check-'));

/** The main package as installed in `app` holds no binary, and loads the platform package's. */
function smokeInstalled(app) {
  const installedMain = path.join(app, 'node_modules', '@avvos', 'convoy');
  const stray = nodeFilesUnder(installedMain);
  if (stray.length > 0) fail(`the installed main package has a binary of its own: ${stray.join(', ')}`);
  step('smoke test: the installed packages', process.execPath, [
    smoke,
    path.join(installedMain, 'native.cjs'),
    '--tls',
    '--expect',
    `node_modules/${packageName}/`,
  ]);
}

try {
  if (registryVersion) {
    const app = freshApp(work);
    // The registry can take a minute to serve a version it has just accepted.
    let installed = false;
    for (let attempt = 1; attempt <= 10 && !installed; attempt++) {
      const windows = process.platform === 'win32';
      const result = spawnSync(
        'npm',
        ['install', '--no-audit', '--no-fund', `@avvos/convoy@${registryVersion}`, 'zod@4'],
        {
          cwd: app,
          stdio: 'inherit',
          shell: windows,
        },
      );
      installed = result.status === 0;
      if (!installed) await new Promise((resolve) => setTimeout(resolve, 30_000));
    }
    if (!installed) fail(`npm install @avvos/convoy@${registryVersion} failed 10 times`);
    smokeInstalled(app);
  } else {
    if (!existsSync(path.join(root, binary))) fail(`${binary} is not at the repository root`);
    if (!existsSync(path.join(root, 'npm', platform, 'package.json'))) fail(`npm/${platform}/ does not exist`);
    step('npm ci', 'npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
    step('smoke test: this repository', process.execPath, [
      smoke,
      path.join(root, 'native.cjs'),
      '--tls',
      '--expect',
      `/${binary}`,
    ]);
    // dist/ first: some tests import the compiled package, as users do.
    step('compile TypeScript', 'npm', ['run', 'build:ts']);
    step('type checks', 'npm', ['run', 'test:types']);
    step('tests that need no Postgres', process.execPath, ['--import', 'tsx', '--test', ...testsWithoutPostgres]);

    // The path users' installs take: the main package (no binary) beside its platform package.
    const staged = path.join(work, 'staged');
    cpSync(path.join(root, 'npm', platform), staged, { recursive: true });
    cpSync(path.join(root, binary), path.join(staged, binary));
    mkdirSync(path.join(work, 'platform'));
    mkdirSync(path.join(work, 'main'));
    step(`npm pack ${packageName}`, 'npm', ['pack', '--pack-destination', path.join(work, 'platform')], staged);
    step('npm pack @avvos/convoy', 'npm', ['pack', '--pack-destination', path.join(work, 'main')]);
    const app = freshApp(work);
    // npm looks the other platform packages up on the registry, where this version is not yet:
    // it skips optional dependencies it cannot fetch, and this platform's is the local tarball.
    step(
      'npm install both tarballs in a fresh folder',
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        tarballIn(path.join(work, 'platform')),
        tarballIn(path.join(work, 'main')),
        'zod@4',
      ],
      app,
    );
    smokeInstalled(app);
  }
  console.log(`\ncheck-platform: ${platform} ok`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
