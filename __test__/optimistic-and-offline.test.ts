/**
 * Issue 16: a mutation had no state, no optimistic update and nothing queued while offline. Here
 * `ConvoyClient` against a real server: an optimistic update is what the live query shows before
 * the server answers, is replaced by the server's result when it lands and rolled back exactly
 * when it fails; mutations made while the server is down are sent when it is back, in order,
 * applied once each; a client with no stream still gives up on an unreachable server.
 * (The same through React and a browser: browser.test.ts and create-convoy-app.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConvoyClient, ConvoyError, type FunctionReference } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { behaviourApp } from './helpers/behaviour-suite.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

interface Note {
  _id: string;
  text: string;
  n?: number;
}
const api = {
  add: { path: 'notes:add', kind: 'mutation' } as FunctionReference<'mutation', { text: string; n?: number }, string>,
  list: { path: 'notes:list', kind: 'query' } as FunctionReference<'query', {}, Note[]>,
  createCounter: { path: 'counters:create', kind: 'mutation' } as FunctionReference<'mutation', { name: string }>,
  increment: { path: 'counters:increment', kind: 'mutation' } as FunctionReference<
    'mutation',
    { name: string },
    number
  >,
  readCounter: { path: 'counters:read', kind: 'query' } as FunctionReference<'query', { name: string }, number>,
};

let database: TestDatabase;
let server: ConvoyServer | undefined;
let port = 0;
const clients: ConvoyClient[] = [];

async function startServer() {
  server = await startConvoy({ appDir: behaviourApp, databaseUrl: database.url, port, log: () => {} });
  port = Number(new URL(server.url).port);
}

before(async () => {
  database = await createDatabase();
  await createExistingTables(database);
  await startServer();
});

after(async () => {
  for (const client of clients) client.close();
  await server?.stop();
  await database?.drop();
});

/** A client whose mutation requests wait until `release()`; everything else goes through. */
function heldClient() {
  const waiting: Array<() => void> = [];
  let arrived: (() => void) | undefined;
  const client = new ConvoyClient(`http://127.0.0.1:${port}`, {
    fetch: async (input, init) => {
      if (String(input).endsWith('/api/mutation')) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          arrived?.();
        });
      }
      return fetch(input, init);
    },
  });
  clients.push(client);
  return {
    client,
    /** Resolves once a mutation's request is held. */
    held: () => (waiting.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (arrived = () => resolve()))),
    release: () => {
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

/** Every value the subscription shows, and a way to wait for one that passes `check`. */
function watch<T>(client: ConvoyClient, ref: FunctionReference<'query'>, args: object) {
  const seen: T[] = [];
  const waiters: Array<{ check: (value: T) => boolean; resolve: (value: T) => void }> = [];
  client.subscribe(ref, args as never, (value) => {
    seen.push(value as T);
    for (const waiter of [...waiters]) {
      if (!waiter.check(value as T)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(value as T);
    }
  });
  return {
    seen,
    get now(): T | undefined {
      return seen.at(-1);
    },
    until(check: (value: T) => boolean, what: string): Promise<T> {
      const last = seen.at(-1);
      if (last !== undefined && check(last)) return Promise.resolve(last);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${what}; last: ${JSON.stringify(seen.at(-1))}`)),
          15_000,
        );
        waiters.push({
          check,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
        });
      });
    },
  };
}

const addOptimistically = (text: string) => ({
  optimisticUpdate: (store: any, args: { text: string }) => {
    const notes: Note[] | undefined = store.getQuery(api.list, {});
    if (notes) store.setQuery(api.list, {}, [...notes, { _id: `optimistic-${text}`, text: args.text }]);
  },
});

/**
 * No result shows the made-up note beside the server's: the server's result holding the write
 * waits for the mutation's answer, which drops the update, and both change at once.
 */
function assertNeverTwice(seen: Note[][], text: string) {
  for (const value of seen) {
    const copies = value.filter((note) => note.text === text);
    assert.ok(copies.length <= 1, `${text} shown twice: ${JSON.stringify(value)}`);
  }
}

describe('optimistic updates', { timeout: 60_000 }, () => {
  test('shown before the server answers, then replaced by the server’s result', async () => {
    const { client, held, release } = heldClient();
    const notes = watch<Note[]>(client, api.list, {});
    const before = await notes.until(() => true, 'the first result');

    const added = client.mutation(api.add, { text: 'optimistic one' }, addOptimistically('optimistic one'));
    await held();
    const shown = await notes.until((value) => value.length === before.length + 1, 'the optimistic note');
    assert.equal(shown.at(-1)?._id, 'optimistic-optimistic one', 'the update shows while the request is held');
    assert.deepEqual(shown.slice(0, -1), before, 'the rest is the server’s result as it was');

    release();
    const id = await added;
    // When the promise resolves the server's result is shown, the optimistic note gone.
    const landed = notes.now!;
    assert.ok(
      landed.some((note) => note._id === id && note.text === 'optimistic one'),
      JSON.stringify(landed),
    );
    assert.ok(!landed.some((note) => note._id.startsWith('optimistic-')), JSON.stringify(landed));
    assertNeverTwice(notes.seen, 'optimistic one');
  });

  test('rolled back exactly when the mutation fails, and nothing written', async () => {
    const { client, held, release } = heldClient();
    const notes = watch<Note[]>(client, api.list, {});
    const before = await notes.until(() => true, 'the first result');

    // `text` must be a string: the server refuses it.
    const failing = client.mutation(api.add, { text: 7 as never }, addOptimistically('refused'));
    await held();
    await notes.until((value) => value.length === before.length + 1, 'the optimistic note');
    release();
    await assert.rejects(failing, (error) => error instanceof ConvoyError && error.code === 'INVALID_ARGS');
    assert.deepEqual(notes.now, before, 'the live query shows the server’s result again');
    assert.deepEqual(await client.query(api.list), before, 'nothing was written');
  });

  test('pending updates stack in call order and are played again over a new server result', async () => {
    const { client, held, release } = heldClient();
    const notes = watch<Note[]>(client, api.list, {});
    const before = await notes.until(() => true, 'the first result');

    const first = client.mutation(api.add, { text: 'stacked 1' }, addOptimistically('stacked 1'));
    const second = client.mutation(api.add, { text: 'stacked 2' }, addOptimistically('stacked 2'));
    await held();
    await notes.until((value) => value.length === before.length + 2, 'both optimistic notes');
    // A write by someone else while both are pending: the new result, with both updates on top.
    const other = await fetch(`http://127.0.0.1:${port}/api/mutation`, {
      method: 'POST',
      body: JSON.stringify({ path: 'notes:add', args: { text: 'from elsewhere' } }),
    });
    assert.equal(other.status, 200);
    const replayed = await notes.until(
      (value) => value.some((note) => note.text === 'from elsewhere'),
      'the other write',
    );
    assert.deepEqual(
      replayed.slice(-2).map((note) => note._id),
      ['optimistic-stacked 1', 'optimistic-stacked 2'],
    );
    release();
    await Promise.all([first, second]);
    assert.ok(!notes.now!.some((note) => note._id.startsWith('optimistic-')));
    assert.equal(notes.now!.filter((note) => note.text.startsWith('stacked ')).length, 2);
    assertNeverTwice(notes.seen, 'stacked 1');
    assertNeverTwice(notes.seen, 'stacked 2');
  });

  test('an update that throws sends nothing and the call rejects with its error', async () => {
    const { client } = heldClient();
    const notes = watch<Note[]>(client, api.list, {});
    const before = await notes.until(() => true, 'the first result');
    await assert.rejects(
      client.mutation(
        api.add,
        { text: 'never sent' },
        {
          optimisticUpdate: () => {
            throw new Error('a bug in the update');
          },
        },
      ),
      /a bug in the update/,
    );
    assert.deepEqual(await client.query(api.list), before);
  });
});

describe('mutations while the server is away', { timeout: 90_000 }, () => {
  test('sent when it is back, in the order they were made, applied once each', async () => {
    const client = new ConvoyClient(`http://127.0.0.1:${port}`);
    clients.push(client);
    await client.mutation(api.createCounter, { name: 'offline' });
    const counter = watch<number>(client, api.readCounter, { name: 'offline' });
    await counter.until((value) => value === 0, 'the counter');
    const notes = watch<Note[]>(client, api.list, {});
    const before = await notes.until(() => true, 'the notes');

    await server!.stop();
    server = undefined;
    const deadline = Date.now() + 15_000;
    while (client.connectionState !== 'reconnecting') {
      assert.ok(Date.now() < deadline, `the stream did not notice: ${client.connectionState}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const settled: string[] = [];
    const firstIncrement = client.mutation(api.increment, { name: 'offline' }).finally(() => settled.push('first'));
    const secondIncrement = client.mutation(api.increment, { name: 'offline' }).finally(() => settled.push('second'));
    const note = client.mutation(api.add, { text: 'written offline' }, addOptimistically('written offline'));
    // Held, not failed: nothing settles while the server is away, and the optimistic note shows.
    await notes.until((value) => value.some((each) => each._id === 'optimistic-written offline'), 'the offline note');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual(settled, [], 'nothing settled while offline (a script without a stream gives up sooner)');

    await startServer();
    assert.deepEqual(await Promise.all([firstIncrement, secondIncrement]), [1, 2], 'sent in order');
    assert.deepEqual(settled, ['first', 'second']);
    await note;
    assert.equal(await client.query(api.readCounter, { name: 'offline' }), 2, 'each applied once');
    await counter.until((value) => value === 2, 'the live counter at 2');
    const after = await client.query(api.list);
    assert.equal(after.filter((each) => each.text === 'written offline').length, 1);
    assert.equal(after.length, before.length + 1);
  });

  test('a client with nothing subscribed still gives up on an unreachable server', async () => {
    // A port nothing listens on: a script's mutation fails after its few attempts.
    const client = new ConvoyClient('http://127.0.0.1:9');
    clients.push(client);
    const started = Date.now();
    await assert.rejects(
      client.mutation(api.add, { text: 'nowhere' }),
      (error) => error instanceof ConvoyError && error.code === 'UNAVAILABLE',
    );
    assert.ok(Date.now() - started < 10_000, 'within seconds');
  });
});
