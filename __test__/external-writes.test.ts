/**
 * Writes made outside Convoy (issue 14): inserts, updates and deletes by `pg`, one row or many,
 * reach exactly the live queries they change, on two server processes, as Convoy's own writes do
 * — `/metrics` counts the query runs, so it shows that other users' live queries did not run. A
 * transaction that rolls back tells nothing; a statement of 100,000 rows is told as its table,
 * and every live query runs once.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { queryRuns } from './helpers/call.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { convoy, copyApp } from './helpers/production.js';
import { relational } from './helpers/storage.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'graduate-app');

let database: TestDatabase;
let appDir: string;
const servers: ConvoyServer[] = [];
const clients: ConvoyClient[] = [];
let alice: string;
let bob: string;
/** Nobody watches carol's projects: the bulk rows are hers, so that no live query reads them. */
let carol: string;

/** A live listProjects of `userId` on `server`: its latest value, and a wait for one. */
function watch(server: ConvoyServer, userId: string) {
  const client = new ConvoyClient(server.url);
  clients.push(client);
  const state: { value: any[] | undefined } = { value: undefined };
  client.subscribe({ path: 'app:listProjects' } as never, { userId } as never, (value) => {
    state.value = value as any[];
  });
  return {
    state,
    async until(check: (projects: any[]) => boolean, what: string) {
      const deadline = Date.now() + 5000;
      while (!(state.value && check(state.value))) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}; saw ${JSON.stringify(state.value)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

/** Waits until no live query runs any more (the wave a write started has ended). */
async function settled(server: ConvoyServer): Promise<number> {
  let last = await queryRuns(server.url);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const now = await queryRuns(server.url);
    if (now === last) return now;
    last = now;
  }
}

/** One project of `userId`, as SQL of the storage the suite runs on. */
function insertProject(userId: string, name: string): string {
  return relational
    ? `INSERT INTO projects (id, name, user_id, status, created_at_field) VALUES (gen_random_uuid(), '${name}', '${userId}', 'active', 1)`
    : `INSERT INTO projects (id, data) VALUES (gen_random_uuid(), jsonb_build_object('name', '${name}', 'userId', '${userId}', 'status', 'active', 'createdAt', 1))`;
}
const nameIs = (name: string) => (relational ? `name = '${name}'` : `data->>'name' = '${name}'`);
const setName = (name: string) =>
  relational ? `name = '${name}'` : `data = jsonb_set(data, '{name}', to_jsonb('${name}'::text))`;

before(async () => {
  database = await createDatabase();
  appDir = await copyApp(fixture);
  const codegen = await convoy(['codegen'], appDir);
  assert.equal(codegen.code, 0, codegen.output);
  // Two processes on one database: `convoy dev` (which installs the change triggers) and another.
  for (const dev of [true, false]) {
    servers.push(await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev, log: () => {} }));
  }
  const users = await database.query(
    relational
      ? "INSERT INTO users (id, name, email, created_at_field) SELECT gen_random_uuid(), 'user ' || n, n || '@example.com', n FROM generate_series(1, 3) AS n RETURNING id::text"
      : "INSERT INTO users (id, data) SELECT gen_random_uuid(), jsonb_build_object('name', 'user ' || n, 'email', n || '@example.com', 'createdAt', n) FROM generate_series(1, 3) AS n RETURNING id::text",
  );
  [alice, bob, carol] = users.map((row: any) => row.id);
});

after(async () => {
  for (const client of clients) client.close();
  for (const server of servers) await server.stop();
  await database?.drop();
  if (appDir) await rm(appDir, { recursive: true, force: true });
});

describe('writes from outside Convoy wake only the live queries they change', { timeout: 120_000 }, () => {
  test("insert, update, delete of alice's project, by pg, re-run none of bob's live queries, on either process", async () => {
    const watchers = servers.map((server) => ({ server, alice: watch(server, alice), bob: watch(server, bob) }));
    for (const { alice: a, bob: b } of watchers) {
      await a.until((projects) => projects.length === 0, "alice's first answer");
      await b.until((projects) => projects.length === 0, "bob's first answer");
    }
    const steps: Array<[string, string, (projects: any[]) => boolean]> = [
      ['an insert', insertProject(alice, 'from pg'), (projects) => projects.some((p) => p.name === 'from pg')],
      [
        'an update',
        `UPDATE projects SET ${setName('renamed by pg')} WHERE ${nameIs('from pg')}`,
        (projects) => projects.some((p) => p.name === 'renamed by pg'),
      ],
      ['a delete', `DELETE FROM projects WHERE ${nameIs('renamed by pg')}`, (projects) => projects.length === 0],
    ];
    for (const [what, sql, seen] of steps) {
      const before = await Promise.all(servers.map(settled));
      await database.query(sql);
      for (const { alice: a } of watchers) await a.until(seen, `${what} in alice's live query`);
      const after = await Promise.all(servers.map(settled));
      // One live query ran on each process: alice's. Bob's did not.
      assert.deepEqual(
        after.map((runs, s) => runs - (before[s] as number)),
        [1, 1],
        `${what}: query runs on each process`,
      );
    }
  });

  test('a statement of several rows wakes each user it wrote to, once; a rolled back one wakes nobody', async () => {
    const before = await Promise.all(servers.map(settled));
    await database.query(
      `${insertProject(alice, 'multi a1')}, ${insertProject(alice, 'multi a2').replace(/^INSERT INTO projects \([^)]*\) VALUES /, '')}, ${insertProject(bob, 'multi b1').replace(/^INSERT INTO projects \([^)]*\) VALUES /, '')}`,
    );
    const after = await Promise.all(servers.map(settled));
    assert.deepEqual(
      after.map((runs, s) => runs - (before[s] as number)),
      [2, 2],
      "alice's and bob's live queries, once each",
    );
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(insertProject(alice, 'rolled back'));
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    const later = await Promise.all(servers.map(settled));
    assert.deepEqual(later, after, 'a rollback tells nothing');
  });

  test('the triggers never fail a writer: a document that is no object is written, and told', async () => {
    if (relational) return;
    await database.query(`INSERT INTO projects (id, data) VALUES (gen_random_uuid(), '"not an object"')`);
    await database.query(`DELETE FROM projects WHERE jsonb_typeof(data) <> 'object'`);
  });

  test('a writer with rights on its own table only is told, and the queue is left empty', async () => {
    // The triggers' function runs as its owner: an outside service's role needs nothing of Convoy's.
    const role = `convoy_outside_${Math.random().toString(36).slice(2, 10)}`;
    await database.query(`CREATE ROLE ${role} LOGIN`);
    const writer = new URL(database.url);
    writer.username = role;
    const client = new pg.Client({ connectionString: writer.toString() });
    try {
      await database.query(`GRANT INSERT, SELECT ON projects TO ${role}`);
      const watcher = watch(servers[1] as ConvoyServer, alice);
      await watcher.until(() => true, "alice's first answer");
      await client.connect();
      await client.query(insertProject(alice, 'by a stranger role'));
      await watcher.until((projects) => projects.some((p) => p.name === 'by a stranger role'), 'the insert');
      await Promise.all(servers.map(settled));
      assert.deepEqual(await database.query('SELECT * FROM convoy.changes'), [], 'every queued row taken');
    } finally {
      await client.end().catch(() => {});
      await database.query(`DROP OWNED BY ${role}`);
      await database.query(`DROP ROLE ${role}`);
    }
  });

  test('a statement of 100,000 rows is told as its table: every live query runs once, and the writer is not held up', async () => {
    await database.query(
      relational
        ? `INSERT INTO projects (id, name, user_id, status, created_at_field) SELECT gen_random_uuid(), 'bulk ' || n, '${carol}', 'draft', n FROM generate_series(1, 100000) AS n`
        : `INSERT INTO projects (id, data) SELECT gen_random_uuid(), jsonb_build_object('name', 'bulk ' || n, 'userId', '${carol}', 'status', 'draft', 'createdAt', n) FROM generate_series(1, 100000) AS n`,
    );
    const before = await Promise.all(servers.map(settled));
    const started = performance.now();
    await database.query(
      relational
        ? "UPDATE projects SET status = 'archived'"
        : `UPDATE projects SET data = data || '{"status": "archived"}'`,
    );
    const took = performance.now() - started;
    const after = await Promise.all(servers.map(settled));
    assert.deepEqual(
      after.map((runs, s) => runs - (before[s] as number)),
      [2, 2],
      'both live queries of each process, once',
    );
    assert.ok(took < 60_000, `the update took ${took} ms`);
  });
});
