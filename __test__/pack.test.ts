/**
 * The first thing a stranger does: `npm pack` this repository, install the tarball into an empty
 * app with zod, type the PRODUCT.md example in, and run it — on their own Postgres, on the
 * embedded one, and as the production server. The binary comes from the platform package packed
 * from `npm/<platform>/`, as it does from npm (platform-package.test.ts checks where it loads from).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertTheExampleWorked, check as checkIn, createStrangerApp, packMain, packPlatform } from './helpers/pack.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { freePort, type Running, run, start, waitForHealth } from './helpers/process.js';

let work: string;
let app: string;
let database: TestDatabase;

function envWithout(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env[name];
  return env;
}

function check(url: string, mode: 'create' | 'list', userId = ''): Promise<any> {
  return checkIn(app, url, mode, userId);
}

/** Ctrl-C: `convoy dev` says it stopped, and nothing answers on its port any more. */
async function assertStoppedCleanly(running: Running, url: string) {
  const { code, signal } = await running.stop('SIGINT');
  // npx itself may end by the signal; convoy dev under it must have finished its shutdown.
  assert.ok(code === 0 || signal === 'SIGINT', `exit code ${code}, signal ${signal}:\n${running.output()}`);
  assert.match(running.output(), /stopped/, `convoy dev did not shut down cleanly:\n${running.output()}`);
  await assert.rejects(fetch(`${url}/health`), 'the server still answers after Ctrl-C');
}

describe('the packed package in a fresh app', { timeout: 600_000 }, () => {
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'convoy-pack-'));
    app = await createStrangerApp(work, [await packPlatform(work), await packMain(work)]);
    database = await createDatabase();
  });

  after(async () => {
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  let userId: string;

  test('`npx convoy migrate` prints its plan, applies it once, and is idempotent', async () => {
    const target = await createDatabase();
    try {
      const env = { ...process.env, DATABASE_URL: target.url };
      // PRODUCT.md spells the command with the package name.
      const dryRun = await run('npx', ['@avvos/convoy', 'migrate', '--dry-run'], { cwd: app, env });
      assert.equal(dryRun.code, 0, dryRun.output);
      assert.match(dryRun.output, /CREATE TABLE IF NOT EXISTS "projects"/);
      const tables = async () =>
        (await target.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('users', 'projects')"))[0].n;
      assert.equal(await tables(), 0, 'a dry run creates nothing');
      const applied = await run('npx', ['convoy', 'migrate'], { cwd: app, env });
      assert.equal(applied.code, 0, applied.output);
      assert.equal(await tables(), 2);
      const again = await run('npx', ['convoy', 'migrate'], { cwd: app, env });
      assert.equal(again.code, 0, again.output);
      assert.match(again.output, /nothing to do/);
    } finally {
      await target.drop();
    }
  });

  test('`npx convoy dev` with DATABASE_URL serves the example', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dev = start('npx', ['convoy', 'dev', '--port', String(port)], {
      cwd: app,
      env: { ...process.env, DATABASE_URL: database.url },
    });
    try {
      await waitForHealth(url, dev);
      const seen = await check(url, 'create');
      assertTheExampleWorked(seen);
      userId = seen.userId;
      // Refs are plain UUIDs in JSONB: PRODUCT.md's graduation SQL runs as written.
      const rows = await database.query(
        "SELECT count(*)::int AS n FROM projects p JOIN users u ON u.id = (p.data->>'userId')::uuid WHERE u.id = $1",
        [userId],
      );
      assert.equal(rows[0].n, 2);

      // Editing convoy/ reloads in place: a new function is served and api.ts names it.
      await writeFile(
        path.join(app, 'convoy', 'functions', 'hello.ts'),
        "import { query } from '../_generated/server';\n" +
          "export const greet = query({ handler: async () => 'hello from a new file' });\n",
      );
      const deadline = Date.now() + 30_000;
      let greeting: unknown;
      while (Date.now() < deadline) {
        const response = await fetch(`${url}/api/query`, {
          method: 'POST',
          body: JSON.stringify({ path: 'hello:greet', args: {} }),
        });
        greeting = await response.json();
        if (response.ok) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.deepEqual(greeting, { value: 'hello from a new file' }, dev.output());
      const api = await readFile(path.join(app, 'convoy', '_generated', 'api.ts'), 'utf8');
      assert.match(api, /greet: \{ path: 'hello:greet', kind: 'query' \}/);
    } finally {
      await assertStoppedCleanly(dev, url);
    }
  });

  test('the generated api types every call (tsc in the app)', async () => {
    const checked = await run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: app });
    assert.equal(checked.code, 0, checked.output);
  });

  test('`node convoy/_generated/http.js` is the production server', async () => {
    // The production server never changes the schema and loads the bundle `convoy build` writes.
    for (const step of ['migrate', 'build']) {
      const result = await run('npx', ['convoy', step], {
        cwd: app,
        env: { ...process.env, DATABASE_URL: database.url },
      });
      assert.equal(result.code, 0, result.output);
    }
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = start('node', ['convoy/_generated/http.js'], {
      cwd: app,
      env: { ...process.env, DATABASE_URL: database.url, PORT: String(port) },
    });
    try {
      await waitForHealth(url, server);
      const seen = await check(url, 'list', userId);
      assert.deepEqual(
        seen.projects.map((project: any) => project.name),
        ['Second', 'First'],
      );
    } finally {
      await server.stop('SIGTERM');
    }
  });

  test('`npx convoy dev` without DATABASE_URL runs an embedded Postgres that keeps its data', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = envWithout('DATABASE_URL');
    const first = start('npx', ['convoy', 'dev', '--port', String(port)], { cwd: app, env });
    let embeddedUserId: string;
    try {
      await waitForHealth(url, first, 180_000);
      assert.match(first.output(), /embedded/i, 'says in one line that it runs an embedded Postgres');
      const seen = await check(url, 'create');
      assertTheExampleWorked(seen);
      embeddedUserId = seen.userId;
    } finally {
      await assertStoppedCleanly(first, url);
    }
    const second = start('npx', ['convoy', 'dev', '--port', String(port)], { cwd: app, env });
    try {
      await waitForHealth(url, second, 180_000);
      const seen = await check(url, 'list', embeddedUserId);
      assert.deepEqual(
        seen.projects.map((project: any) => project.name),
        ['Second', 'First'],
        'the next start reuses the data',
      );
    } finally {
      await assertStoppedCleanly(second, url);
    }
  });
});
