#!/usr/bin/env node
/**
 * Makes a clone ready to run: installs dependencies, builds the native core, compiles the
 * TypeScript layer — each only when its output is missing or older than its inputs, so running it
 * before every `npm test`, `npm run example` and `npm run bench` costs nothing when all is fresh.
 *
 * It runs before `npm ci`, so it uses nothing but Node itself.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const steps = [
  {
    does: 'installing dependencies',
    npm: ['ci'],
    // npm writes this hidden lockfile on every install; the node_modules folder's own mtime only
    // changes when an entry is added or removed.
    output: 'node_modules/.package-lock.json',
    inputs: ['package-lock.json'],
  },
  {
    does: 'building the native core',
    npm: ['run', 'build:native'],
    output: nativeBinaryName(),
    inputs: ['crates', 'Cargo.toml', 'Cargo.lock'],
    needs: { command: 'cargo', why: 'the native core is built with Rust: install it from https://rustup.rs' },
  },
  {
    does: 'compiling TypeScript',
    npm: ['run', 'build:ts'],
    output: 'dist/index.js',
    inputs: ['src', 'tsconfig.json', 'tsconfig.build.json'],
  },
  {
    does: "building the dashboard's page",
    npm: ['run', 'build:dashboard'],
    output: 'dist/dashboard/page/index.html',
    inputs: ['dashboard'],
  },
];

for (const step of steps) {
  if (!isStale(step.output, step.inputs)) continue;
  console.log(`setup: ${step.does} (npm ${step.npm.join(' ')})`);
  if (step.needs && !isOnPath(step.needs.command)) {
    fail(`\`${step.needs.command}\` was not found; ${step.needs.why}`);
  }
  const { status, error } = spawnSync('npm', step.npm, {
    cwd: root,
    stdio: 'inherit',
    // npm is `npm.cmd` on Windows, which Node only starts through a shell.
    shell: process.platform === 'win32',
  });
  if (error || status !== 0) {
    // A failed step may still have written its output (tsc emits despite type errors); make it
    // look stale so that the next run repeats the step instead of trusting it.
    markStale(step.output);
    fail(`\`npm ${step.npm.join(' ')}\` failed (${error ? error.message : `exit code ${status}`}); see above`);
  }
}

linkExamplesToThisCheckout();

/**
 * examples/app has a package.json of its own, as a user's app does, so Node no longer finds
 * `@avvos/convoy` by the package's name from inside this repository: link it, as npm would link a
 * `file:` dependency, to the Convoy built here.
 */
function linkExamplesToThisCheckout() {
  for (const example of ['examples/app']) {
    if (!existsSync(path.join(root, example, 'package.json'))) continue;
    const scope = path.join(root, example, 'node_modules', '@avvos');
    const link = path.join(scope, 'convoy');
    if (lstatSync(link, { throwIfNoEntry: false })) continue;
    console.log(`setup: linking ${example}/node_modules/@avvos/convoy to this checkout`);
    mkdirSync(scope, { recursive: true });
    // A junction on Windows needs no privileges; elsewhere the type is ignored.
    symlinkSync(path.relative(scope, root), link, 'junction');
  }
}

/** The file name `napi build --platform` gives this machine's binary, e.g. convoy.linux-x64-gnu.node. */
function nativeBinaryName() {
  const { napi } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const { platform, arch } = process;
  let abi = '';
  if (platform === 'linux') abi = process.report.getReport().header.glibcVersionRuntime ? '-gnu' : '-musl';
  if (platform === 'win32') abi = '-msvc';
  return `${napi.binaryName}.${platform}-${arch}${abi}.node`;
}

function isStale(output, inputs) {
  const built = modifiedAt(path.join(root, output));
  if (built === undefined) return true;
  return inputs.some((input) => newestIn(path.join(root, input)) > built);
}

/** The newest modification time of a file, or of any file under a directory. */
function newestIn(file) {
  const stats = statSync(file, { throwIfNoEntry: false });
  if (!stats) return Number.NEGATIVE_INFINITY;
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = Number.NEGATIVE_INFINITY;
  for (const entry of readdirSync(file)) {
    if (entry === 'target' || entry === 'node_modules') continue;
    newest = Math.max(newest, newestIn(path.join(file, entry)));
  }
  return newest;
}

function modifiedAt(file) {
  return statSync(file, { throwIfNoEntry: false })?.mtimeMs;
}

function markStale(output) {
  const file = path.join(root, output);
  if (existsSync(file)) utimesSync(file, 0, 0);
}

function isOnPath(command) {
  return !spawnSync(command, ['--version'], { stdio: 'ignore' }).error;
}

function fail(message) {
  console.error(`setup: ${message}`);
  process.exit(1);
}
