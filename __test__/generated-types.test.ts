/**
 * The types a user's TypeScript sees, as they set it up: the packed package installed into a fresh
 * app (the PRODUCT.md example, a `createContext` written with `defineContext`, functions whose
 * inferred types name many of Convoy's, and a React page exporting hooks), `convoy codegen` run in
 * it, then `tsc -p` with each
 * tsconfig of __test__/fixtures/typescript-app on TypeScript 5.9 and 7. Found by a stranger's
 * trial (issue 16): `declaration: true`, which `tsc --init` sets, failed on
 * `convoy/_generated/server.ts` with TS2742 (TS2883 on 7), "The inferred type of 'query' cannot
 * be named without a reference to 'QueryDefinition'", and on every function returning documents
 * (`SystemFields`). One pack and one install serve every combination.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createStrangerApp, packMain, packPlatform, root } from './helpers/pack.js';
import { run } from './helpers/process.js';

const fixture = path.join(root, '__test__', 'fixtures', 'typescript-app');

/** Both compilers from this repository's devDependencies, run on the app's files and node_modules. */
const compilers = [
  { version: '5.9', tsc: path.join(root, 'node_modules', 'typescript', 'bin', 'tsc') },
  { version: '7', tsc: path.join(root, 'node_modules', 'typescript7', 'bin', 'tsc') },
];

const tsconfigs = [
  { file: 'tsconfig.init.json', what: 'what `tsc --init` writes (declaration: true, nodenext, strict)' },
  { file: 'tsconfig.strictest.json', what: 'declaration: true + nodenext with every strict option tsc --init lists' },
  { file: 'tsconfig.node.json', what: 'declaration: true + nodenext, skipLibCheck off (a Node server)' },
  { file: 'tsconfig.bundler-declaration.json', what: 'declaration: true + bundler, skipLibCheck off' },
  { file: 'tsconfig.vite.json', what: "strict + bundler (Vite's React template)" },
  {
    file: 'tsconfig.convoy-bundler.json',
    what: "module preserve + bundler (docs/typescript.md's convoy/tsconfig.json)",
  },
  { file: 'tsconfig.json', what: 'strict + bundler, skipLibCheck off (the stranger app)' },
  // TypeScript 7 has no node10 resolution any more; 5.9 still reads it (typesVersions).
  { file: 'tsconfig.node10.json', what: 'moduleResolution node (node10), an older project', only: '5.9' },
];

let work: string;
let app: string;

describe('the generated code and the app compile as users configure TypeScript', { timeout: 600_000 }, () => {
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'convoy-types-'));
    // React for page.tsx: the hooks and the client, as a Vite + React app exports them.
    app = await createStrangerApp(
      work,
      [await packPlatform(work), await packMain(work)],
      ['react@19', '@types/react@19'],
    );
    await cp(fixture, app, { recursive: true });
    const codegen = await run('npx', ['convoy', 'codegen'], { cwd: app });
    assert.equal(codegen.code, 0, codegen.output);
    assert.doesNotMatch(codegen.output, /"type"/, 'an app with "type": "module" hears nothing of it');
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the app under test has a createContext, so ctx is typed from it', async () => {
    const server = await readFile(path.join(app, 'convoy', '_generated', 'server.ts'), 'utf8');
    assert.match(server, /import type \{ createContext \} from '\.\.\/server\.js';/);
  });

  for (const { version, tsc } of compilers) {
    for (const { file, what, only } of tsconfigs) {
      if (only && only !== version) continue;
      test(`convoy/_generated/server.ts and the app's functions compile under ${what} on TypeScript ${version}`, async () => {
        const checked = await run('node', [tsc, '-p', file], { cwd: app });
        assert.equal(checked.code, 0, `tsc ${version} -p ${file}:\n${checked.output}`);
      });
    }
  }

  test('`convoy codegen` and `convoy dev` in a CommonJS package say in one line to set "type": "module"', async () => {
    const packageJson = path.join(app, 'package.json');
    const original = await readFile(packageJson, 'utf8');
    const warningsIn = (output: string) => output.split('\n').filter((line) => line.includes('"type"'));
    try {
      // What `npm init -y` writes.
      await writeFile(packageJson, JSON.stringify({ ...JSON.parse(original), type: 'commonjs' }, null, 2));
      const codegen = await run('npx', ['convoy', 'codegen'], { cwd: app });
      assert.equal(codegen.code, 0, codegen.output);
      const [warning, ...more] = warningsIn(codegen.output);
      assert.deepEqual(more, [], codegen.output);
      assert.match(warning ?? '', /package\.json says "type": "commonjs".*add "type": "module" to package\.json/);
      // convoy dev says it before it needs the database (here one that refuses, so it stops).
      const dev = await run('npx', ['convoy', 'dev', '--port', '0'], {
        cwd: app,
        env: { ...process.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/refused' },
      });
      assert.deepEqual(warningsIn(dev.output), [warning], dev.output);
    } finally {
      await writeFile(packageJson, original);
    }
  });
});
