/**
 * Mutations never lose a write: concurrent read-modify-write mutations of one counter, sent to
 * two server processes on one database, conflict, re-run, and end at exactly their count.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../dist/server/index.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, start } from './helpers/process.js';

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
  const rows = await database.query("SELECT (data->>'value')::int AS value FROM counters");
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
