#!/usr/bin/env node
/**
 * Keeps the platform packages in step with package.json: one `npm/<platform>/` per entry of
 * `napi.targets`, each at the main package's version, each in its `optionalDependencies` at that
 * exact version, and each in package-lock.json.
 *
 *   node scripts/sync-platform-packages.mjs          writes what differs (after a version bump)
 *   node scripts/sync-platform-packages.mjs --check  writes nothing; exits 1 and says what differs
 *
 * Why the lockfile entries: npm leaves an optional package it cannot fetch out of
 * package-lock.json, and npm 11.16 and later then refuse `npm ci` ("Missing: … from lock file",
 * npm/cli#9846) — which they would on every clone until the packages of that exact version are on
 * the registry, that is, until the release that publishes them. An entry with the package's
 * version, `os`, `cpu` and `libc` and no `resolved` satisfies `npm ci` on npm 10 and 11; npm
 * skips it on other platforms and, on the matching one, skips it too while the registry has no
 * such version. `npm install` keeps such entries, but drops them for a version it cannot find:
 * run this script after every version bump.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTriple } from '@napi-rs/cli';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const problems = [];
const writes = new Map();

function expect(file, json, before) {
  const text = `${JSON.stringify(json, null, 2)}\n`;
  if (text === before) return;
  problems.push(`${file} is out of date`);
  writes.set(file, text);
}

const manifestText = readFileSync(path.join(root, 'package.json'), 'utf8');
const manifest = JSON.parse(manifestText);
const { version } = manifest;
const platforms = manifest.napi.targets.map((triple) => parseTriple(triple).platformArchABI);

const optionalDependencies = {};
const lockEntries = {};
for (const platform of platforms) {
  const file = path.join('npm', platform, 'package.json');
  if (!existsSync(path.join(root, file))) {
    problems.push(`${file} is missing: run \`npx napi create-npm-dirs\``);
    continue;
  }
  const before = readFileSync(path.join(root, file), 'utf8');
  const platformManifest = { ...JSON.parse(before), version };
  expect(file, platformManifest, before);
  optionalDependencies[platformManifest.name] = version;
  // The fields npm itself writes for an optional platform package, in its order.
  lockEntries[`node_modules/${platformManifest.name}`] = {
    version,
    cpu: platformManifest.cpu,
    ...(platformManifest.libc ? { libc: platformManifest.libc } : {}),
    license: platformManifest.license,
    optional: true,
    os: platformManifest.os,
    ...(platformManifest.engines ? { engines: platformManifest.engines } : {}),
  };
}

const ownNames = new Set(Object.keys(optionalDependencies));
const isOurs = (name) => name.startsWith(`${manifest.name}-`);
// Other optional dependencies stay as they are; ours are exactly the ones of napi.targets.
const mergedOptional = Object.fromEntries(
  Object.entries({
    ...Object.fromEntries(Object.entries(manifest.optionalDependencies ?? {}).filter(([name]) => !isOurs(name))),
    ...optionalDependencies,
  }).sort(([a], [b]) => (a < b ? -1 : 1)),
);
expect('package.json', { ...manifest, optionalDependencies: mergedOptional }, manifestText);

const lockText = readFileSync(path.join(root, 'package-lock.json'), 'utf8');
const lock = JSON.parse(lockText);
const packages = {};
for (const [key, entry] of Object.entries(lock.packages)) {
  const name = key.replace(/^node_modules\//, '');
  if (key.startsWith('node_modules/') && isOurs(name) && !name.includes('/node_modules/') && !ownNames.has(name))
    continue;
  packages[key] = key === '' ? { ...entry, optionalDependencies: mergedOptional } : entry;
}
Object.assign(packages, lockEntries);
// npm sorts the entries by path; the root ('') stays first.
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b, 'en'))),
);
expect('package-lock.json', { ...lock, packages: sorted }, lockText);

if (problems.length === 0) {
  console.log(`platform packages: ${platforms.length} at ${version}, in optionalDependencies and package-lock.json`);
  process.exit(0);
}
if (check || problems.some((problem) => problem.includes('missing'))) {
  for (const problem of problems) console.error(`platform packages: ${problem}`);
  if (check) console.error('platform packages: run `node scripts/sync-platform-packages.mjs` to update them');
  process.exit(1);
}
for (const [file, text] of writes) {
  writeFileSync(path.join(root, file), text);
  console.log(`platform packages: wrote ${file}`);
}
