/**
 * The path users' installs take: `npm install @avvos/convoy` brings the main package, which ships
 * no binary, and the one platform package of `optionalDependencies` that fits the machine. Here,
 * in a fresh app, the packed main package beside the packed platform package of this host (packed
 * from `npm/<platform>/`), and the example served from it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertTheExampleWorked,
  check,
  createStrangerApp,
  hostPlatform,
  packMain,
  packPlatform,
  root,
  tarballFiles,
} from './helpers/pack.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, run, start, waitForHealth } from './helpers/process.js';

const platform = hostPlatform();
const platformPackage = `@avvos/convoy-${platform}`;
const binary = `convoy.${platform}.node`;

let work: string;
let mainTarball: string;
let platformTarball: string;
let app: string;
let database: TestDatabase;

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

describe(`the main package with ${platformPackage} beside it`, { timeout: 600_000 }, () => {
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'convoy-platform-'));
    mainTarball = await packMain(work);
    platformTarball = await packPlatform(work);
    app = await createStrangerApp(work, [platformTarball, mainTarball]);
    database = await createDatabase();
  });

  after(async () => {
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('npm/, optionalDependencies and package-lock.json agree with the version and napi.targets', async () => {
    const checked = await run('node', ['scripts/sync-platform-packages.mjs', '--check'], { cwd: root });
    assert.equal(checked.code, 0, checked.output);
    const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    assert.equal(Object.keys(manifest.optionalDependencies).length, manifest.napi.targets.length);
  });

  test('the main tarball ships no binary; the platform tarball ships exactly its own', async () => {
    const main = await tarballFiles(mainTarball);
    assert.ok(main.includes('package/native.cjs'), main.join('\n'));
    assert.deepEqual(
      main.filter((file) => file.endsWith('.node')),
      [],
    );
    assert.deepEqual((await tarballFiles(platformTarball)).sort(), [
      'package/README.md',
      `package/${binary}`,
      'package/package.json',
    ]);
  });

  test(`the binary loads from node_modules/${platformPackage}`, async () => {
    const installedMain = path.join(app, 'node_modules', '@avvos', 'convoy');
    assert.deepEqual(
      (await filesUnder(installedMain)).filter((file) => file.endsWith('.node')),
      [],
      'no .node in the installed main package',
    );
    // What the loader itself resolves and what Node then has loaded, asked from inside the app.
    const script = [
      "const { createRequire } = require('node:module');",
      "const path = require('node:path');",
      "const main = path.dirname(require.resolve('@avvos/convoy/package.json'));",
      "const loader = path.join(main, 'native.cjs');",
      'const binding = require(loader);',
      'console.log(JSON.stringify({',
      `  resolved: createRequire(loader).resolve('${platformPackage}'),`,
      "  loaded: Object.keys(require.cache).filter((file) => file.endsWith('.node')),",
      '  engine: typeof binding.Engine,',
      '}));',
    ].join('\n');
    const result = await run('node', ['-e', script], { cwd: app });
    assert.equal(result.code, 0, result.output);
    const seen = JSON.parse(result.output.trim().split('\n').at(-1)!);
    const expected = await realpath(path.join(app, 'node_modules', ...platformPackage.split('/'), binary));
    assert.equal(seen.resolved, expected);
    assert.deepEqual(seen.loaded, [expected]);
    assert.equal(seen.engine, 'function');
  });

  test('`npx convoy migrate` and `npx convoy dev` serve the example: mutations and a query', async () => {
    const env = { ...process.env, DATABASE_URL: database.url };
    const migrated = await run('npx', ['convoy', 'migrate'], { cwd: app, env });
    assert.equal(migrated.code, 0, migrated.output);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dev = start('npx', ['convoy', 'dev', '--port', String(port)], { cwd: app, env });
    try {
      await waitForHealth(url, dev);
      assertTheExampleWorked(await check(app, url, 'create'));
    } finally {
      await dev.stop('SIGINT');
    }
  });
});
