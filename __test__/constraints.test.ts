/**
 * Constraints of the database are never `INTERNAL` (SPEC §5), here ones a user added by hand
 * with psql to a document table and an unmanaged one: a write whose own value breaks NOT NULL,
 * a CHECK or a reference is `INVALID_ARGS` naming the constraint; one refused because of other
 * rows (a duplicate in a unique index, a row others still reference) is `CONFLICT` with
 * `data.constraint`. Each writes nothing, is not retried, and is answered so in production too.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');

let database: TestDatabase;
let server: ConvoyServer;

async function call(kind: 'query' | 'mutation', name: string, args: unknown) {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: name, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

const noteCount = async () => (await database.query('SELECT count(*)::int AS n FROM notes'))[0].n as number;

before(async () => {
  database = await createDatabase();
  await createExistingTables(database);
  // Production mode: what a client sees there must still name the constraint.
  const dev = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: true, log: () => {} });
  await dev.stop();
  server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, dev: false, log: () => {} });
  await database.query("ALTER TABLE notes ADD CONSTRAINT short_text CHECK (length(data->>'text') < 30)");
  await database.query("CREATE UNIQUE INDEX notes_text_unique ON notes ((data->>'text'))");
  await database.query("INSERT INTO events (id, event) VALUES (1, 'launch')");
  // A column derived from the document, NOT NULL and referencing events: psql's graduation, half done.
  await database.query(
    "ALTER TABLE notes ADD COLUMN event_id int GENERATED ALWAYS AS ((data->>'n')::int) STORED REFERENCES events (id)",
  );
});

after(async () => {
  await server?.stop();
  await database?.drop();
});

describe('constraints a user added by hand', () => {
  test('a CHECK the value breaks is INVALID_ARGS naming it, and nothing is written', async () => {
    const before = await noteCount();
    const refused = await call('mutation', 'notes:add', { text: 'a text far too long for the check', n: 1 });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVALID_ARGS');
    assert.match(refused.body.error.message, /short_text/);
    assert.equal(await noteCount(), before);
  });

  test('a duplicate in a unique index is CONFLICT with data.constraint, and not retried', async () => {
    assert.equal((await call('mutation', 'notes:add', { text: 'only once', n: 1 })).status, 200);
    const before = await noteCount();
    const metrics = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/^convoy_mutation_conflicts_retried_total (\d+)/m.exec(text)?.[1]);
    };
    const retriedBefore = await metrics();
    const refused = await call('mutation', 'notes:add', { text: 'only once', n: 1 });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'CONFLICT');
    assert.equal(refused.body.error.data.constraint, 'notes_text_unique');
    assert.equal(await noteCount(), before);
    assert.equal(await metrics(), retriedBefore, 'a duplicate is not a serialization conflict');
  });

  test('a reference to a row that does not exist is INVALID_ARGS naming the foreign key', async () => {
    const before = await noteCount();
    const refused = await call('mutation', 'notes:add', { text: 'points nowhere', n: 999 });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'INVALID_ARGS');
    assert.match(refused.body.error.message, /notes_event_id_fkey/);
    assert.equal(await noteCount(), before);
  });

  test('deleting a row others still reference is CONFLICT with data.constraint, and it stays', async () => {
    assert.equal((await call('mutation', 'notes:add', { text: 'about the launch', n: 1 })).status, 200);
    const refused = await call('mutation', 'events:remove', { id: 1 });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'CONFLICT');
    assert.equal(refused.body.error.data.constraint, 'notes_event_id_fkey');
    assert.deepEqual(await database.query('SELECT id FROM events'), [{ id: 1 }]);
  });

  test('NOT NULL on a column the document leaves empty is INVALID_ARGS naming the column', async () => {
    await database.query('ALTER TABLE notes ALTER COLUMN event_id SET NOT NULL');
    try {
      const before = await noteCount();
      const refused = await call('mutation', 'notes:add', { text: 'no event' });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'INVALID_ARGS');
      assert.match(refused.body.error.message, /notes\.event_id/);
      assert.equal(await noteCount(), before);
    } finally {
      await database.query('ALTER TABLE notes ALTER COLUMN event_id DROP NOT NULL');
    }
  });

  test("raw SQL naming a document's field as a column is INVALID_ARGS with the data->>'field' hint, in production", async () => {
    const hint = await call('query', 'notes:rawFieldAsColumn', {});
    assert.equal(hint.status, 400, JSON.stringify(hint.body));
    assert.equal(hint.body.error.code, 'INVALID_ARGS');
    assert.match(hint.body.error.message, /data->>'text'/);
  });
});
