/**
 * The production path (SPEC §9): `convoy build` bundles convoy/ into .convoy/dist/, `convoy migrate`
 * is the one step that changes the schema, and `node convoy/_generated/http.js` loads the bundle
 * (no TypeScript sources, no esbuild), never changes the schema, and refuses a database that does
 * not match it. Any number of processes started at once from one folder all start.
 */
import assert from 'node:assert/strict';
import { appendFile, cp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, type Running, start, waitForHealth } from './helpers/process.js';
import { convoy, copyApp, runProductionToExit, snapshot, startProduction } from './helpers/production.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'behaviour-app');

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
});

async function newDatabase(): Promise<TestDatabase> {
  const database = await createDatabase();
  cleanup.push(() => database.drop());
  await createExistingTables(database);
  return database;
}

async function newApp(): Promise<string> {
  const dir = await copyApp(fixture);
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function call(url: string, kind: 'query' | 'mutation', name: string, args: object = {}) {
  const response = await fetch(`${url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: name, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** A hook for `node --import` that makes importing esbuild fail, to show production never does. */
async function withoutEsbuild(dir: string): Promise<string[]> {
  const hook = path.join(dir, 'no-esbuild.mjs');
  const resolve =
    "export async function resolve(specifier, context, next) { if (specifier === 'esbuild' || specifier.includes('/esbuild/')) throw new Error('the production server imported esbuild'); return next(specifier, context); }";
  await writeFile(
    hook,
    `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(resolve)}`)});\n`,
  );
  return ['--import', hook];
}

describe('the production server', { timeout: 300_000 }, () => {
  let app: string;

  before(async () => {
    app = await newApp();
    const built = await convoy(['build'], app);
    assert.equal(built.code, 0, built.output);
    assert.match(built.output, /wrote \.convoy\/dist\/ \(\d+ files\)/);
    assert.match(built.output, /functions\/notes\.mjs/);
  });

  test('`convoy build` writes ESM with linked source maps and a manifest', async () => {
    const dist = path.join(app, '.convoy', 'dist');
    const manifest = JSON.parse(await readFile(path.join(dist, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, 1);
    assert.equal(manifest.convoy, JSON.parse(await readFile(path.join(here, '..', 'package.json'), 'utf8')).version);
    assert.match(manifest.sourceHash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(manifest.schema, 'schema.mjs');
    assert.equal(manifest.server, 'server.mjs');
    assert.deepEqual(
      manifest.functions.find((fn: any) => fn.modulePath === 'notes'),
      {
        modulePath: 'notes',
        fileName: 'functions/notes.ts',
        module: 'functions/notes.mjs',
      },
    );
    const notes = await readFile(path.join(dist, 'functions', 'notes.mjs'), 'utf8');
    assert.match(notes, /\/\/# sourceMappingURL=notes\.mjs\.map\s*$/);
    const map = JSON.parse(await readFile(path.join(dist, 'functions', 'notes.mjs.map'), 'utf8'));
    assert.ok(
      map.sourcesContent.some((source: string) => source.includes('addThenCrash')),
      'the map holds the sources',
    );
    // Readable by any user (the server of an image built as root runs unprivileged).
    assert.equal((await stat(dist)).mode & 0o005, 0o005, 'others may read and enter .convoy/dist');
    // Built beside it and moved in: nothing of the build is left around it.
    // (.convoy/ may hold the .gitignore that keeps it out of git, made by whichever command made it.)
    const around = (await readdir(path.join(app, '.convoy'))).filter((name) => name !== '.gitignore');
    assert.deepEqual(around, ['dist']);
  });

  test('on an unmigrated database it exits non-zero naming `convoy migrate`, and changes nothing', async () => {
    const database = await newDatabase();
    const before = await snapshot(database);
    for (const extra of [{}, { CONVOY_CHANGE_TRIGGER: '1' }]) {
      const server = start('node', ['convoy/_generated/http.js'], {
        cwd: app,
        env: { ...process.env, DATABASE_URL: database.url, PORT: '0', ...extra },
      });
      const { code } = await new Promise<{ code: number | null }>((resolve) =>
        server.child.once('exit', (code) => resolve({ code })),
      );
      await server.stop();
      assert.notEqual(code, 0, server.output());
      assert.match(server.output(), /npx convoy migrate/);
      assert.match(server.output(), /CREATE TABLE IF NOT EXISTS "notes"/, 'it says what differs');
      assert.doesNotMatch(server.output(), /serving/);
    }
    assert.deepEqual(await snapshot(database), before, 'no schema, table, index, trigger or function was created');

    // A dry run of migrate is a gate that changes nothing either.
    const dryRun = await convoy(['migrate', '--dry-run'], app, { ...process.env, DATABASE_URL: database.url });
    assert.equal(dryRun.code, 0, dryRun.output);
    assert.deepEqual(await snapshot(database), before);
  });

  test('without a bundle it exits 1 and says to run `npx convoy build`', async () => {
    const bare = await newApp();
    const built = await convoy(['codegen'], bare);
    assert.equal(built.code, 0, built.output);
    const database = await newDatabase();
    const before = await snapshot(database);
    const server = start('node', ['convoy/_generated/http.js'], {
      cwd: bare,
      env: { ...process.env, DATABASE_URL: database.url, PORT: '0' },
    });
    const code = await new Promise((resolve) => server.child.once('exit', resolve));
    await server.stop();
    assert.equal(code, 1, server.output());
    assert.match(server.output(), /npx convoy build/);
    assert.deepEqual(await snapshot(database), before);
  });

  test('after `convoy migrate` and `convoy build` it serves from the bundle alone, with source-mapped stacks', async () => {
    const database = await newDatabase();
    const env = { ...process.env, DATABASE_URL: database.url };
    const migrated = await convoy(['migrate'], app, env);
    assert.equal(migrated.code, 0, migrated.output);
    assert.match(migrated.output, /ran \d+ statements:/);
    assert.match(migrated.output, /CREATE TABLE IF NOT EXISTS "notes"/);
    const schema = await snapshot(database);

    // A runtime image: the bundle, convoy/_generated and node_modules; no TypeScript sources.
    const image = await newApp();
    await rm(path.join(image, 'convoy'), { recursive: true });
    await cp(path.join(app, 'convoy', '_generated'), path.join(image, 'convoy', '_generated'), { recursive: true });
    await cp(path.join(app, '.convoy', 'dist'), path.join(image, '.convoy', 'dist'), { recursive: true });
    assert.deepEqual((await readdir(path.join(image, 'convoy'))).sort(), ['_generated']);

    // migrate reads the schema from the bundle when the sources are not there.
    const again = await convoy(['migrate'], image, env);
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /\.convoy\/dist/);
    assert.match(again.output, /nothing to do/);

    const { running, url } = await startProduction(image, { DATABASE_URL: database.url }, await withoutEsbuild(image));
    cleanup.push(() => running.stop('SIGTERM'));
    const added = await call(url, 'mutation', 'notes:add', { text: 'from the bundle', n: 1 });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    const listed = await call(url, 'query', 'notes:list');
    assert.deepEqual(
      listed.body.value.map((note: any) => note.text),
      ['from the bundle'],
    );
    // The stack of an internal error names the source file and line, through the source maps.
    const crash = await call(url, 'mutation', 'notes:addThenCrash', { text: 'never' });
    assert.equal(crash.status, 500);
    const { requestId } = crash.body.error.data;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(
      running.output(),
      new RegExp(`${requestId}[^\\n]*kaboom\\n\\s+at [^\\n]*convoy/functions/notes\\.ts:\\d+:\\d+`),
      running.output(),
    );
    assert.deepEqual(await snapshot(database), schema, 'serving changed no schema');
    assert.deepEqual(await running.stop('SIGTERM'), { code: 0, signal: null });
  });

  test('a bundle older than the sources is served with a warning that it is stale', async () => {
    const database = await newDatabase();
    const env = { DATABASE_URL: database.url };
    const stale = await newApp();
    for (const step of [['build'], ['migrate']]) {
      const result = await convoy(step, stale, { ...process.env, ...env });
      assert.equal(result.code, 0, result.output);
    }
    const fresh = await startProduction(stale, env);
    await fresh.running.stop('SIGTERM');
    assert.doesNotMatch(fresh.running.output(), /stale/);

    await appendFile(path.join(stale, 'convoy', 'functions', 'notes.ts'), '\n// edited after the build\n');
    const { running, url } = await startProduction(stale, env);
    cleanup.push(() => running.stop('SIGTERM'));
    assert.match(running.output(), /stale: convoy\/ changed since it was built/);
    assert.match(running.output(), /npx convoy build/);
    assert.equal((await call(url, 'query', 'notes:list')).status, 200, 'it still serves');
    await running.stop('SIGTERM');
  });

  test('processes started at once from one folder all start: three servers, convoy dev, three codegens and a build', async () => {
    const database = await newDatabase();
    const env = { ...process.env, DATABASE_URL: database.url };
    const shared = await newApp();
    for (const step of [['build'], ['migrate']]) {
      const result = await convoy(step, shared, env);
      assert.equal(result.code, 0, result.output);
    }
    const devPort = await freePort();
    const dev = start('node', [path.join(here, '..', 'dist', 'cli', 'bin.js'), 'dev', '--port', String(devPort)], {
      cwd: shared,
      env,
    });
    cleanup.push(() => dev.stop());
    const [servers, others] = await Promise.all([
      Promise.all([1, 2, 3].map(() => startProduction(shared, { DATABASE_URL: database.url }))),
      Promise.all([...[1, 2, 3].map(() => convoy(['codegen'], shared)), convoy(['build'], shared)]),
      waitForHealth(`http://127.0.0.1:${devPort}`, dev),
    ]);
    for (const { running } of servers) cleanup.push(() => running.stop('SIGTERM'));
    for (const result of others) assert.equal(result.code, 0, result.output);

    const urls = [...servers.map((server) => server.url), `http://127.0.0.1:${devPort}`];
    for (const [index, url] of urls.entries()) {
      const added = await call(url, 'mutation', 'notes:add', { text: `process ${index}`, n: index });
      assert.equal(added.status, 200, JSON.stringify(added.body));
    }
    const listed = await call(urls[0]!, 'query', 'notes:list');
    assert.deepEqual(
      listed.body.value.map((note: any) => note.text),
      ['process 0', 'process 1', 'process 2', 'process 3'],
    );

    const stopped: Running[] = [dev, ...servers.map((server) => server.running)];
    await Promise.all(stopped.map((running) => running.stop('SIGTERM')));
    // Every load bundled into a directory of its own and removed it; the bundle is whole.
    assert.deepEqual(await readdir(path.join(shared, '.convoy', 'build')), []);
    // And convoy dev's pid file went with it (.convoy/'s own .gitignore aside).
    const left = (await readdir(path.join(shared, '.convoy'))).filter((name) => name !== '.gitignore');
    assert.deepEqual(left.sort(), ['build', 'dist']);
  });
});

describe('what the production server checks before it serves', { timeout: 300_000 }, () => {
  let app: string;

  before(async () => {
    app = await newApp();
    const built = await convoy(['build'], app);
    assert.equal(built.code, 0, built.output);
  });

  test('without the change triggers it refuses, naming migrate; migrate installs them once; CONVOY_CHANGE_TRIGGER=0 turns them off', async () => {
    const database = await newDatabase();
    const env = { DATABASE_URL: database.url };
    const migrated = await convoy(['migrate'], app, { ...process.env, ...env, CONVOY_CHANGE_TRIGGER: '0' });
    assert.equal(migrated.code, 0, migrated.output);
    assert.doesNotMatch(migrated.output, /change triggers/);

    const refused = await runProductionToExit(app, env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /the change triggers .* are missing or out of date on .*notes/);
    assert.match(refused.output, /Run `npx convoy migrate` first/);
    const off = await startProduction(app, { ...env, CONVOY_CHANGE_TRIGGER: '0' });
    try {
      assert.equal((await call(off.url, 'query', 'notes:list')).status, 200);
    } finally {
      await off.running.stop('SIGTERM');
    }

    const dryRun = await convoy(['migrate', '--dry-run'], app, { ...process.env, ...env });
    assert.match(dryRun.output, /would install the change triggers on .*notes/);
    const withTrigger = await convoy(['migrate'], app, { ...process.env, ...env });
    assert.equal(withTrigger.code, 0, withTrigger.output);
    // migrate prints what the core ran, each function's body included.
    assert.match(
      withTrigger.output,
      /CREATE UNLOGGED TABLE IF NOT EXISTS convoy.changes[\s\S]*CREATE OR REPLACE FUNCTION convoy\."notify_notes"\(\)[\s\S]*INSERT INTO convoy.changes/,
    );
    assert.match(
      withTrigger.output,
      /CREATE OR REPLACE TRIGGER convoy_notify_insert AFTER INSERT ON "notes" REFERENCING NEW TABLE/,
    );
    // Once there and current, a migrate has nothing to do.
    const again = await convoy(['migrate'], app, { ...process.env, ...env });
    assert.match(again.output, /nothing to do/);
    assert.doesNotMatch(again.output, /change triggers/);

    const { running, url } = await startProduction(app, env);
    try {
      assert.equal((await call(url, 'query', 'notes:list')).status, 200);
    } finally {
      await running.stop('SIGTERM');
    }
  });

  test('a database whose tables are there but whose Convoy records are not is refused, and migrate restores them', async () => {
    const database = await newDatabase();
    const env = { ...process.env, DATABASE_URL: database.url };
    assert.equal((await convoy(['migrate'], app, env)).code, 0);
    await database.query("DELETE FROM convoy.indexes WHERE table_name = 'notes'");

    const refused = await runProductionToExit(app, { DATABASE_URL: database.url });
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /INSERT INTO convoy\.indexes/);
    assert.match(refused.output, /npx convoy migrate/);

    const dryRun = await convoy(['migrate', '--dry-run'], app, env);
    assert.match(dryRun.output, /would run:/);
    assert.equal((await convoy(['migrate'], app, env)).code, 0);
    const again = await convoy(['migrate', '--dry-run'], app, env);
    assert.match(again.output, /already matches the schema; nothing to do/);
  });
});
