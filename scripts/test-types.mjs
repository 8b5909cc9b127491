#!/usr/bin/env node
/**
 * `npm run test:types`: the repository's type tests and examples, checked by TypeScript 5.9
 * (`typescript`) and by TypeScript 7 (`typescript7`, the native port). Each compiler is run by its
 * path: both packages install a `tsc` command, and which of them `node_modules/.bin/tsc` names is
 * up to npm.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const compilers = [
  { version: '5.9', tsc: path.join(root, 'node_modules', 'typescript', 'bin', 'tsc') },
  { version: '7', tsc: path.join(root, 'node_modules', 'typescript7', 'bin', 'tsc') },
];

const projects = [
  ['--noEmit', '-p', 'tsconfig.json'],
  ['-p', '__test__/types/tsconfig.json'],
  ['-p', 'examples/app/tsconfig.json'],
  ['-p', 'examples/auth/tsconfig.json'],
  ['-p', 'bench/app/tsconfig.json'],
  ['-p', 'examples/app/web/tsconfig.json'],
  ['-p', 'dashboard/tsconfig.json'],
];

for (const { version, tsc } of compilers) {
  for (const args of projects) {
    console.log(`test:types: TypeScript ${version}: tsc ${args.join(' ')}`);
    const { status, error } = spawnSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
    if (error || status !== 0) {
      console.error(`test:types: TypeScript ${version} failed on ${args.at(-1)}`);
      process.exit(1);
    }
  }
}
