/**
 * Two server processes on one database. Mutations never lose a write: concurrent
 * read-modify-write mutations of one counter conflict, re-run, and end at exactly their count.
 * Live queries never miss one: a subscriber on either process converges on every write made
 * through either (commits travel between them by LISTEN/NOTIFY).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../dist/client/index.js';
import { type ConvoyServer, startConvoy } from '../dist/server/index.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, start } from './helpers/process.js';
import { fieldText } from './helpers/storage.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');

let database: TestDatabase;
let local: ConvoyServer;
let other: Running;
let otherUrl: string;

async function mutation(url: string, name: string, args: unknown): Promise<any> {
  const response = await fetch(`${url}/api/mutation`, {
    method: 'POST',
    body: JSON.stringify({ path: `counters:${name}`, args }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.value;
}

before(async () => {
  database = await createDatabase();
  await createExistingTables(database);
  local = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: true, log: () => {} });
  other = start('node', [path.join(here, 'fixtures', 'serve.mjs'), appDir, database.url], {
    cwd: here,
    env: process.env,
  });
  const deadline = Date.now() + 30_000;
  while (!/listening (\S+)/.test(other.output())) {
    if (Date.now() > deadline || other.child.exitCode !== null) throw new Error(`no second server:\n${other.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  otherUrl = /listening (\S+)/.exec(other.output())![1]!;
});

after(async () => {
  await other?.stop('SIGTERM');
  await local?.stop();
  await database?.drop();
});

test('50 concurrent read-modify-write mutations from two server processes end at exactly 50', async () => {
  await mutation(local.url, 'create', { name: 'hits' });
  const INCREMENTS = 50;
  const results = await Promise.all(
    Array.from({ length: INCREMENTS }, (_, i) =>
      mutation(i % 2 === 0 ? local.url : otherUrl, 'increment', { name: 'hits' }),
    ),
  );
  // Each mutation saw a distinct value: no two read the same counter and both wrote.
  assert.deepEqual(
    [...results].sort((a, b) => a - b),
    Array.from({ length: INCREMENTS }, (_, i) => i + 1),
  );
  const rows = await database.query(`SELECT (${fieldText('value')})::int AS value FROM counters`);
  assert.deepEqual(rows, [{ value: INCREMENTS }]);

  // Conflicting attempts ran their handlers again, but each increment's afterCommit ran once.
  const effects = async (url: string) => {
    const response = await fetch(`${url}/api/query`, {
      method: 'POST',
      body: JSON.stringify({ path: 'counters:effects', args: {} }),
    });
    return (await response.json()).value as number;
  };
  let total = 0;
  for (let tries = 0; tries < 50 && total < INCREMENTS; tries++) {
    total = (await effects(local.url)) + (await effects(otherUrl));
    if (total < INCREMENTS) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(total, INCREMENTS);
});

const ref = (path: string) => ({ path }) as any;

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test("a subscriber on one process sees the other process's writes", async () => {
  await mutation(local.url, 'create', { name: 'across' });
  const subscriber = new ConvoyClient(otherUrl);
  const values: unknown[] = [];
  const unsubscribe = subscriber.subscribe(ref('counters:read'), { name: 'across' }, (value) => values.push(value));
  try {
    await until(() => values.at(-1) === 0, 'the first value');
    await mutation(local.url, 'increment', { name: 'across' });
    await until(() => values.at(-1) === 1, 'the write made on the other process');
  } finally {
    unsubscribe();
    subscriber.close();
  }
});

test('stress: writers and subscribers on both processes; every subscriber ends on the fresh value', async () => {
  const COUNTERS = 8;
  const WRITES = 200;
  const names = Array.from({ length: COUNTERS }, (_, i) => `stress-${i}`);
  for (const name of names) await mutation(local.url, 'create', { name });
  // Six clients, three on each process, each subscribed to every counter.
  const subscribers = Array.from({ length: 6 }, (_, i) => new ConvoyClient(i % 2 === 0 ? local.url : otherUrl));
  const last = subscribers.map(() => new Map<string, unknown>());
  const stops = subscribers.flatMap((client, i) =>
    names.map((name) =>
      client.subscribe(
        ref('counters:read'),
        { name },
        (value) => last[i]!.set(name, value),
        (error) => assert.fail(error.message),
      ),
    ),
  );
  try {
    await until(() => last.every((values) => values.size === COUNTERS), 'every first value');
    // Twenty writers at a time, each write to a random counter through a random process. Under
    // this much contention a write may run out of retries (CONFLICT): it must then leave nothing.
    let next = 0;
    let acknowledged = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < WRITES) {
          next++;
          const name = names[Math.floor(Math.random() * COUNTERS)]!;
          const response = await fetch(`${Math.random() < 0.5 ? local.url : otherUrl}/api/mutation`, {
            method: 'POST',
            body: JSON.stringify({ path: 'counters:increment', args: { name } }),
          });
          const body = await response.json();
          if (response.status === 200) acknowledged++;
          else assert.equal(body.error.code, 'CONFLICT', JSON.stringify(body));
        }
      }),
    );
    assert.ok(acknowledged > WRITES / 2, `most writes succeed (${acknowledged} of ${WRITES})`);
    const fresh = new Map<string, unknown>();
    for (const name of names) {
      const response = await fetch(`${local.url}/api/query`, {
        method: 'POST',
        body: JSON.stringify({ path: 'counters:read', args: { name } }),
      });
      fresh.set(name, (await response.json()).value);
    }
    assert.equal(
      [...fresh.values()].reduce((sum: number, value) => sum + (value as number), 0),
      acknowledged,
      'every acknowledged write counted once, no refused one',
    );
    await until(
      () => last.every((values) => names.every((name) => values.get(name) === fresh.get(name))),
      'every subscriber to converge',
    );
  } finally {
    for (const stop of stops) stop();
    for (const client of subscribers) client.close();
  }
});
