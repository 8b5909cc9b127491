/**
 * Behind PgBouncer (SPEC §11). A transaction-mode pooler hands each transaction to whichever
 * server connection is free, so it cannot carry what Convoy keeps per connection (prepared
 * statements, a mutation connection's settings, LISTEN): on one without DATABASE_DIRECT_URL
 * Convoy refuses at start and names that variable; with it, Convoy serves everything from the
 * direct URL. A session-mode pooler carries all of it, so it serves as DATABASE_URL alone —
 * mutations included, whose settings are sent after connecting rather than as startup options
 * PgBouncer refuses.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConvoyClient } from '../src/client/index.js';
import { connectEngine } from '../src/server/native.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { callOk } from './helpers/call.js';
import { createExistingTables } from './helpers/fixture.js';
import { type Pgbouncer, pgbouncerBinary, startPgbouncer } from './helpers/pgbouncer.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');

// CI installs PgBouncer (.ci/run); elsewhere the suite says why it did not run.
const skip = !pgbouncerBinary && !process.env.CI ? 'pgbouncer is not installed' : false;

describe('behind PgBouncer', { skip }, () => {
  let database: TestDatabase;
  let pgbouncer: Pgbouncer;

  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    pgbouncer = await startPgbouncer(database.url);
  });

  after(async () => {
    await pgbouncer?.stop();
    await database?.drop();
  });

  const call = callOk;

  /** Queries, mutations and a live query that sees a mutation, all through `server`. */
  async function serves(server: ConvoyServer, text: string) {
    const client = new ConvoyClient(server.url);
    const seen: any[][] = [];
    const unsubscribe = client.subscribe({ path: 'notes:list' } as any, {}, (value) => seen.push(value as any[]));
    try {
      const deadline = Date.now() + 15_000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(seen.length > 0, 'the live query answered');
      await Promise.all(
        Array.from({ length: 20 }, (_, n) => call(server.url, 'mutation', 'notes:add', { text: `${text} ${n}`, n })),
      );
      const notes = await call(server.url, 'query', 'notes:list', {});
      assert.equal(notes.filter((note: any) => note.text.startsWith(text)).length, 20);
      while (seen.at(-1)!.filter((note) => note.text.startsWith(text)).length < 20 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.equal(seen.at(-1)!.filter((note) => note.text.startsWith(text)).length, 20, 'the live query caught up');
    } finally {
      unsubscribe();
      client.close();
    }
  }

  test('a transaction-mode pooler without DATABASE_DIRECT_URL is refused at start, naming it', async () => {
    await assert.rejects(connectEngine(pgbouncer.url('transaction'), 2, ''), (error: Error) => {
      assert.match(error.message, /DATABASE_URL leads to a transaction-mode pooler/);
      assert.match(error.message, /Set DATABASE_DIRECT_URL/);
      return true;
    });
    // Refused before anything was created.
    const tables = await database.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'convoy'");
    assert.deepEqual(tables, [{ n: 0 }]);
  });

  test('with DATABASE_DIRECT_URL beside a transaction-mode pooler, everything is served', async () => {
    const previous = process.env.DATABASE_DIRECT_URL;
    process.env.DATABASE_DIRECT_URL = database.url;
    let server: ConvoyServer | undefined;
    try {
      server = await startConvoy({
        appDir,
        databaseUrl: pgbouncer.url('transaction'),
        port: 0,
        dev: true,
        log: () => {},
      });
      await serves(server, 'direct');
    } finally {
      if (previous === undefined) delete process.env.DATABASE_DIRECT_URL;
      else process.env.DATABASE_DIRECT_URL = previous;
      await server?.stop();
    }
  });

  test('a session-mode pooler serves as DATABASE_URL alone, mutations and LISTEN included', async () => {
    const server = await startConvoy({
      appDir,
      databaseUrl: pgbouncer.url('session'),
      port: 0,
      dev: true,
      log: () => {},
    });
    try {
      await serves(server, 'session');
    } finally {
      await server.stop();
    }
  });
});
