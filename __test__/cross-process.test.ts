/**
 * Issue 15, finding 5: one truth across processes. A client whose mutations reach process A and
 * whose stream and queries reach process B (a load balancer without affinity for calls) never
 * reads from B's live results anything older than a mutation A acknowledged, and its mutation
 * resolves only once its stream on B shows the write (read-your-writes).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');

let database: TestDatabase;
let a: ConvoyServer;
let b: ConvoyServer;
let client: ConvoyClient;

describe('finding 5: a client sees its writes whichever process answers', { timeout: 120_000 }, () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    a = await startConvoy({ appDir, databaseUrl: database.url, port: 0, log: () => {} });
    b = await startConvoy({ appDir, databaseUrl: database.url, port: 0, syncSchema: false, log: () => {} });
    // Mutations go to A; the stream, its changes and queries go to B.
    client = new ConvoyClient(b.url, {
      fetch: (input, init) => {
        const url = String(input);
        return fetch(url.endsWith('/api/mutation') ? url.replace(b.url, a.url) : url, init);
      },
    });
  });

  after(async () => {
    client?.close();
    await b?.stop();
    await a?.stop();
    await database?.drop();
  });

  test('300 queries right after a mutation acknowledged by the other process: none stale', async () => {
    let live: any[] | undefined;
    client.subscribe({ path: 'notes:list' } as never, {} as never, (value) => {
      live = value as any[];
    });
    while (!live) await new Promise((resolve) => setTimeout(resolve, 10));
    let stale = 0;
    for (let i = 0; i < 300; i++) {
      await client.mutation({ path: 'notes:add' } as never, { text: `fresh ${i}`, n: i } as never);
      const listed = (await client.query({ path: 'notes:list' } as never, {} as never)) as any[];
      if (!listed.some((note) => note.text === `fresh ${i}`)) stale++;
    }
    assert.equal(stale, 0, 'queries answered without the mutation just acknowledged');
  });

  test('200 mutations on A resolve only once the stream on B shows them', async () => {
    let live: any[] = [];
    client.subscribe({ path: 'notes:list' } as never, {} as never, (value) => {
      live = value as any[];
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    let missed = 0;
    for (let i = 0; i < 200; i++) {
      await client.mutation({ path: 'notes:add' } as never, { text: `seen ${i}`, n: 1000 + i } as never);
      if (!live.some((note) => note.text === `seen ${i}`)) missed++;
    }
    assert.equal(missed, 0, 'mutations resolved before the stream showed them');
  });
});
