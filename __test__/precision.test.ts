/**
 * PRODUCT.md's example, live: a write to user A's projects re-runs none of user B's
 * subscriptions (counted by /metrics), and B's subscribers receive nothing.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../dist/client/index.js';
import { type ConvoyServer, startConvoy } from '../dist/server/index.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'app');
const ref = (path: string) => ({ path }) as any;

let database: TestDatabase;
let server: ConvoyServer;

before(async () => {
  database = await createDatabase();
  server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: true, log: () => {} });
});

after(async () => {
  await server?.stop();
  await database?.drop();
});

async function queryRuns(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^convoy_function_executions_total\{kind="query"\} (\d+)/m.exec(text)?.[1]);
}

test("a write to user A's project re-runs none of user B's subscriptions", async () => {
  const writer = new ConvoyClient(server.url);
  const [a, b] = [
    await writer.mutation(ref('users:createUser'), { name: 'A', email: 'a@example.com' }),
    await writer.mutation(ref('users:createUser'), { name: 'B', email: 'b@example.com' }),
  ];
  // Five subscribers of B's projects on streams of their own, one of A's.
  const received = { a: [] as unknown[][], b: [] as unknown[][] };
  const clients = Array.from({ length: 6 }, () => new ConvoyClient(server.url));
  clients.forEach((client, i) => {
    const [who, userId] = i === 0 ? (['a', a] as const) : (['b', b] as const);
    client.subscribe(ref('projects:listProjects'), { userId }, (projects) => received[who].push(projects as unknown[]));
  });
  const deadline = Date.now() + 10_000;
  while (received.a.length < 1 || received.b.length < 5) {
    assert.ok(Date.now() < deadline, 'every first value');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const before = await queryRuns();
  // The writer has no stream: the answer comes right after the commit. Wait for A's update.
  await writer.mutation(ref('projects:createProject'), { userId: a, name: 'Rocket' });
  while (received.a.length < 2) {
    assert.ok(Date.now() < deadline, "A's update");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal((await queryRuns()) - before, 1, "one run: A's listProjects, none of B's");
  assert.equal(received.b.length, 5, 'B received nothing new');
  for (const client of [writer, ...clients]) client.close();
});
