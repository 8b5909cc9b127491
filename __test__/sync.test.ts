/**
 * Live queries over the sync stream (SPEC §6), through `ConvoyClient.subscribe` against a real
 * server and a real Postgres: updates arrive without a refetch, only the subscriptions a write
 * can change re-run, identical subscriptions share one run, and a second server process sees
 * the first one's writes only when it learns of them (not yet: one process).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { relational } from './helpers/storage.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');

let database: TestDatabase;
let server: ConvoyServer;
const clients: ConvoyClient[] = [];

function client(headers?: Record<string, string>): ConvoyClient {
  const created = new ConvoyClient(server.url, headers ? { headers } : {});
  clients.push(created);
  return created;
}

const ref = (path: string) => ({ path }) as any;

/** The values one subscription receives, with a way to wait for the next that passes a test. */
function watch(subscriber: ConvoyClient, path: string, args: Record<string, unknown> = {}) {
  const values: unknown[] = [];
  const waiters: { test: (value: unknown) => boolean; resolve: (value: unknown) => void }[] = [];
  const unsubscribe = subscriber.subscribe(
    ref(path),
    args,
    (value) => {
      values.push(value);
      for (const waiter of [...waiters]) {
        if (waiter.test(value)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(value);
        }
      }
    },
    (error) => assert.fail(`${path}: ${error.message}`),
  );
  return {
    values,
    unsubscribe,
    until(test: (value: any) => boolean, what: string) {
      const seen = values.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${what}; saw ${JSON.stringify(values)}`)),
          5_000,
        );
        waiters.push({
          test,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
        });
      });
    },
  };
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}${labels} `));
  assert.ok(line, `${name}${labels} in /metrics`);
  return Number(line.split(' ')[1]);
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe('live queries', () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: true, log: () => {} });
  });

  after(async () => {
    for (const open of clients) open.close();
    await server?.stop();
    await database?.drop();
  });

  test('a subscriber sees writes without refetching, and subscriptions of one query share a run', async () => {
    const writer = client();
    const [first, second] = [watch(client(), 'notes:list'), watch(client(), 'notes:list')];
    await first.until((notes: any) => Array.isArray(notes), 'the first result');
    await second.until((notes: any) => Array.isArray(notes), 'the first result');
    assert.equal(clients[1]?.connectionState, 'open');
    assert.equal(await metric('convoy_live_queries'), 1, 'one live query for both');

    const before = await metric('convoy_function_executions_total', '{kind="query"}');
    await writer.mutation(ref('notes:add'), { text: 'live', n: 7 });
    for (const subscription of [first, second]) {
      await subscription.until((notes: any) => notes.some((note: any) => note.text === 'live'), 'the new note');
    }
    await settle();
    const runs = (await metric('convoy_function_executions_total', '{kind="query"}')) - before;
    assert.equal(runs, 1, 'one run served both subscribers');
    first.unsubscribe();
    second.unsubscribe();
  });

  test("a write to one counter re-runs none of the other counters' subscriptions", async () => {
    const writer = client();
    for (const name of ['a', 'b', 'c']) await writer.mutation(ref('counters:create'), { name });
    const subscriber = client();
    const watched = Object.fromEntries(
      ['a', 'b', 'c'].map((name) => [name, watch(subscriber, 'counters:read', { name })]),
    );
    for (const subscription of Object.values(watched)) await subscription.until((value) => value === 0, 'zero');
    await settle();
    const before = await metric('convoy_function_executions_total', '{kind="query"}');
    await writer.mutation(ref('counters:increment'), { name: 'a' });
    await watched.a!.until((value) => value === 1, 'a = 1');
    await settle();
    const runs = (await metric('convoy_function_executions_total', '{kind="query"}')) - before;
    assert.equal(runs, 1, "only a's subscription ran again");
    assert.deepEqual(watched.b!.values, [0], 'b received nothing new');
    assert.deepEqual(watched.c!.values, [0]);
    for (const subscription of Object.values(watched)) subscription.unsubscribe();
  });

  test('a result that did not change sends nothing', async () => {
    const writer = client();
    const subscription = watch(client(), 'counters:read', { name: 'quiet' });
    await subscription.until((value) => value === null, 'null: no such counter');
    // The table changes, but not what this query returns.
    await writer.mutation(ref('notes:add'), { text: 'elsewhere' });
    await writer.mutation(ref('counters:create'), { name: 'other' });
    await settle();
    assert.deepEqual(subscription.values, [null]);
    subscription.unsubscribe();
  });

  test("when a mutation resolves, the caller's subscriptions already show it", async () => {
    const own = client();
    const list = watch(own, 'notes:list');
    const counter = watch(own, 'counters:read', { name: 'ryw' });
    await list.until(Array.isArray, 'the first list');
    await counter.until((value) => value === null, 'no counter yet');
    await own.mutation(ref('counters:create'), { name: 'ryw' });
    assert.equal(counter.values.at(-1), 0, 'the created counter, without waiting');
    for (let round = 1; round <= 5; round++) {
      const text = `ryw-${round}`;
      await own.mutation(ref('notes:add'), { text });
      assert.ok(
        (list.values.at(-1) as any[]).some((note) => note.text === text),
        `round ${round}: the new note is already in the list`,
      );
      await own.mutation(ref('counters:increment'), { name: 'ryw' });
      assert.equal(counter.values.at(-1), round, `round ${round}: the increment already shows`);
    }
    list.unsubscribe();
    counter.unsubscribe();
  });

  test('a write made with psql reaches subscribers (the development trigger)', async () => {
    const list = watch(client(), 'notes:list');
    await list.until(Array.isArray, 'the first list');
    await database.query(
      relational
        ? `INSERT INTO notes (id, text, n) VALUES (gen_random_uuid(), 'from psql', 99)`
        : `INSERT INTO notes (id, data) VALUES (gen_random_uuid(), '{"text": "from psql", "n": 99}')`,
    );
    await list.until((notes: any) => notes.some((note: any) => note.text === 'from psql'), 'the psql row');
    list.unsubscribe();
  });

  test("a query call that someone's live query already answers needs no run, and is never stale", async () => {
    const writer = client();
    await writer.mutation(ref('counters:create'), { name: 'cached' });
    const live = watch(client(), 'counters:read', { name: 'cached' });
    await live.until((value) => value === 0, 'zero');
    await settle();
    const runsBefore = await metric('convoy_function_executions_total', '{kind="query"}');
    const servedBefore = await metric('convoy_queries_served_live_total');
    for (let i = 0; i < 10; i++) assert.equal(await writer.query(ref('counters:read'), { name: 'cached' }), 0);
    assert.equal((await metric('convoy_function_executions_total', '{kind="query"}')) - runsBefore, 0);
    assert.equal((await metric('convoy_queries_served_live_total')) - servedBefore, 10);
    // Right after a write the answer is the new value, from a run or from the re-run live query.
    for (let round = 1; round <= 5; round++) {
      await writer.mutation(ref('counters:increment'), { name: 'cached' });
      assert.equal(await writer.query(ref('counters:read'), { name: 'cached' }), round);
    }
    live.unsubscribe();
  });

  test('closing the last subscription closes the stream, and the server forgets it', async () => {
    const subscriber = client();
    const subscription = watch(subscriber, 'notes:list');
    await subscription.until(Array.isArray, 'a result');
    assert.equal(await metric('convoy_sync_streams'), 1);
    subscription.unsubscribe();
    assert.equal(subscriber.connectionState, 'closed');
    await settle();
    assert.equal(await metric('convoy_sync_streams'), 0);
    assert.equal(await metric('convoy_live_queries'), 0);
  });

  test('createContext says who shares a result, whatever header it reads; a key it refuses gets nothing live', async () => {
    const ask = async (headers: Record<string, string>) => {
      const response = await fetch(`${server.url}/api/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ path: 'auth:whoami', args: {} }),
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    const before = await metric('convoy_live_queries');
    // Two API keys, no Authorization and no Cookie: two identities all the same.
    const grace = watch(client({ 'x-api-key': 'grace' }), 'auth:whoami');
    const linus = watch(client({ 'x-api-key': 'linus' }), 'auth:whoami');
    await grace.until((auth: any) => auth?.userId === 'user-grace', "grace's identity");
    await linus.until((auth: any) => auth?.userId === 'user-linus', "linus's identity");
    // Another client of grace's, with other headers but the same context: it shares her run.
    const graceAgain = watch(client({ 'x-api-key': 'grace', cookie: 'theme=dark' }), 'auth:whoami');
    await graceAgain.until((auth: any) => auth?.userId === 'user-grace', "grace's identity again");
    assert.equal((await metric('convoy_live_queries')) - before, 2);
    assert.deepEqual([...grace.values, ...graceAgain.values], [{ userId: 'user-grace' }, { userId: 'user-grace' }]);
    assert.deepEqual(linus.values, [{ userId: 'user-linus' }]);

    // A query call that grace's live query answers: served without a run, as her.
    const served = await metric('convoy_queries_served_live_total');
    assert.deepEqual(await ask({ 'x-api-key': 'grace' }), { status: 200, body: { value: { userId: 'user-grace' } } });
    assert.equal((await metric('convoy_queries_served_live_total')) - served, 1);
    // Once createContext refuses her key, the live result answers her no more.
    (globalThis as { revokedTokens?: Set<string> }).revokedTokens = new Set(['grace']);
    try {
      const refused = await ask({ 'x-api-key': 'grace' });
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error.message, 'That token was revoked');
    } finally {
      delete (globalThis as { revokedTokens?: Set<string> }).revokedTokens;
    }
    for (const each of [grace, linus, graceAgain]) each.unsubscribe();
  });

  test('subscribing to a mutation or an unknown function reports an error', async () => {
    const subscriber = client();
    const errors = await Promise.all(
      ['notes:add', 'notes:nope'].map(
        (path) =>
          new Promise<string>((resolve) => {
            subscriber.subscribe(
              ref(path),
              {},
              () => resolve('a value'),
              (error) => resolve(error.code),
            );
          }),
      ),
    );
    assert.deepEqual(errors, ['INVALID_ARGS', 'NOT_FOUND']);
  });
});
