/**
 * Hostile input over real HTTP against a real Postgres (docs/security.md): malformed and enormous
 * bodies, deep nesting, NUL bytes, injection attempts in every string position, forged cursors and
 * ids. Each gets its documented code, the server keeps serving, and the database is unchanged
 * except by the writes that were meant to succeed.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');

/** Strings built to break out of a SQL literal, an identifier, a JSON path or a format string. */
const HOSTILE = [
  "'; DROP TABLE notes; --",
  '" OR 1=1 --',
  "') OR ('1'='1",
  "\\'; DELETE FROM notes WHERE ''='",
  '$1',
  '%s%s%n',
  'data',
  "data->>'text'",
  'id',
  '_id',
  '',
  '\\',
  'é🚀\u202e\u200b',
  '\ud800',
  'x'.repeat(100_000),
];

let database: TestDatabase;
let server: ConvoyServer;
let noteId: string;
let counterId: string;

interface Answer {
  status: number;
  body: any;
}

async function send(route: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    assert.fail(`${route} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, body: parsed };
}

const call = (kind: 'query' | 'mutation', name: string, args: unknown) =>
  send(`/api/${kind}`, JSON.stringify({ path: name, args }));

function expectError(answer: Answer, status: number, code: string, what: string) {
  assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
  assert.equal(answer.body?.error?.code, code, what);
  assert.equal(typeof answer.body.error.message, 'string', what);
}

function expectValue(answer: Answer, what: string): any {
  assert.equal(answer.status, 200, `${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
  return answer.body.value;
}

/** Everything in the database that a request could have changed. */
async function snapshot(): Promise<string> {
  const rows = await database.query(`
    SELECT (SELECT md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY id), '')) FROM notes t) AS notes,
           (SELECT md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY id), '')) FROM counters t) AS counters,
           (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public') AS tables`);
  return JSON.stringify(rows[0]);
}

async function stillServing() {
  assert.deepEqual(await call('query', 'notes:get', { id: noteId }).then((answer) => answer.status), 200);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
}

/** Runs `cases`, each of which must leave the database as it was. */
async function unchanged(what: string, cases: () => Promise<void>) {
  const before = await snapshot();
  await cases();
  assert.equal(await snapshot(), before, `${what} changed the database`);
  await stillServing();
}

describe('hostile input', () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, log: () => {} });
    noteId = expectValue(await call('mutation', 'notes:add', { text: 'keep me', n: 1 }), 'seed');
    await call('mutation', 'notes:add', { text: 'and me', n: 2 });
    await call('mutation', 'notes:add', { text: 'me too', n: 3 });
    counterId = expectValue(await call('mutation', 'counters:create', { name: 'a' }), 'seed');
    await call('mutation', 'counters:create', { name: 'b' });
    await call('mutation', 'counters:create', { name: 'c' });
  });

  after(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('malformed bodies are INVALID_ARGS', () =>
    unchanged('malformed bodies', async () => {
      const bodies: Array<[string, BodyInit]> = [
        ['empty', ''],
        ['truncated', '{"path": "notes:add", "args": {"text": "x"'],
        ['trailing garbage', '{"path": "notes:add", "args": {"text": "x"}} DROP TABLE notes'],
        ['an array', '[]'],
        ['a number', '42'],
        ['a string', '"notes:add"'],
        ['null', 'null'],
        ['path null', '{"path": null}'],
        ['path an object', '{"path": {"$ne": ""}}'],
        ['path an array', '{"path": ["notes:add"]}'],
        ['args a number', '{"path": "notes:add", "args": 1}'],
        ['args a string', '{"path": "notes:add", "args": "text=x"}'],
        ['args null', '{"path": "notes:add", "args": null}'],
        ['single quotes', "{'path': 'notes:add'}"],
        ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
        ['a lone surrogate escape in a key', '{"path": "notes:add", "args": {"text": "x", "\\ud800": 1}}'],
        ['NaN', '{"path": "notes:add", "args": {"text": "x", "n": NaN}}'],
        ['a huge number', `{"path": "notes:add", "args": {"text": "x", "n": 1${'0'.repeat(400)}}}`],
      ];
      for (const [what, body] of bodies) {
        expectError(await send('/api/mutation', body), 400, 'INVALID_ARGS', what);
      }
      const wrongTypes: Array<[string, unknown]> = [
        ['text a number', { text: 1 }],
        ['text an object', { text: { toString: 'x' } }],
        ['n a string', { text: 'x', n: '1' }],
        ['tags not strings', { text: 'x', tags: [1, null] }],
        ['an unknown arg', { text: 'x', isAdmin: true }],
        ['a prototype key', JSON.parse('{"text": "x", "__proto__": {"isAdmin": true}}')],
      ];
      for (const [what, args] of wrongTypes) {
        expectError(await call('mutation', 'notes:add', args), 400, 'INVALID_ARGS', what);
      }
    }));

  test('deep nesting is refused, in args and in documents', () =>
    unchanged('deep nesting', async () => {
      const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
      for (const levels of [200, 10_000, 100_000]) {
        const body = `{"path": "hostile:insertDocument", "args": {"document": {"text": "x", "extra": ${deep(levels)}}}}`;
        expectError(await send('/api/mutation', body), 400, 'INVALID_ARGS', `args nested ${levels} deep`);
      }
      // Shallow enough for the request, too deep for a document (16 levels).
      const body = `{"path": "hostile:insertDocument", "args": {"document": {"text": "x", "extra": ${deep(40)}}}}`;
      expectError(await send('/api/mutation', body), 400, 'INVALID_ARGS', 'a document nested 40 deep');
    }));

  test('bodies over the limit are 413, however they are sent, and the server carries on', () =>
    unchanged('large bodies', async () => {
      const fiveMiB = JSON.stringify({ path: 'notes:add', args: { text: 'x'.repeat(5 * 1024 * 1024) } });
      expectError(await send('/api/mutation', fiveMiB), 413, 'PAYLOAD_TOO_LARGE', '5 MiB');
      // Chunked, with no Content-Length to refuse it by.
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
          controller.enqueue(new TextEncoder().encode('{"path": "notes:add", "args": {"text": "'));
          for (let sent = 0; sent < 80; sent++) controller.enqueue(chunk);
          controller.enqueue(new TextEncoder().encode('"}}'));
          controller.close();
        },
      });
      const response = await fetch(`${server.url}/api/mutation`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chunks,
        duplex: 'half',
      } as RequestInit);
      assert.equal(response.status, 413, 'chunked 5 MiB');
      assert.equal(((await response.json()) as any).error.code, 'PAYLOAD_TOO_LARGE');
      // Many at once: each is refused, none takes the server down.
      const answers = await Promise.all(Array.from({ length: 8 }, () => send('/api/mutation', fiveMiB)));
      for (const answer of answers) expectError(answer, 413, 'PAYLOAD_TOO_LARGE', 'concurrent 5 MiB');
    }));

  test('bodies of other media types are 415; the labels fetch and curl put on JSON are read', async () => {
    const body = JSON.stringify({ path: 'notes:get', args: { id: noteId } });
    for (const type of ['multipart/form-data; boundary=x', 'application/xml', 'image/png']) {
      expectError(await send('/api/query', body, { 'content-type': type }), 415, 'INVALID_ARGS', type);
    }
    for (const type of [
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-8',
    ]) {
      assert.equal((await send('/api/query', body, { 'content-type': type })).status, 200, type);
    }
    await stillServing();
  });

  test("NUL bytes are INVALID_ARGS wherever they are (Postgres's JSONB cannot hold them)", () =>
    unchanged('NUL', async () => {
      expectError(await call('mutation', 'notes:add', { text: 'a\u0000b' }), 400, 'INVALID_ARGS', 'in a value');
      expectError(
        await call('mutation', 'hostile:patchFields', { id: noteId, fields: { 'te\u0000xt': 'x' } }),
        400,
        'INVALID_ARGS',
        'in a patched field name',
      );
      expectError(
        await call('mutation', 'hostile:patchFields', { id: noteId, fields: { text: '\u0000' } }),
        400,
        'INVALID_ARGS',
        'in a patched value',
      );
      expectError(
        await call('mutation', 'hostile:insertDocument', { document: { text: 'x', extra: { 'a\u0000': 1 } } }),
        400,
        'INVALID_ARGS',
        'in a nested key',
      );
      expectError(await call('query', 'hostile:byIndex', { n: 'a\u0000b' }), 400, 'INVALID_ARGS', 'in an index value');
      expectError(
        await call('query', 'hostile:filterBy', { field: 'text', value: 'a\u0000b' }),
        400,
        'INVALID_ARGS',
        'in a filter value',
      );
      expectError(await call('query', 'notes:list\u0000', {}), 404, 'NOT_FOUND', 'in a path');
    }));

  test('injection attempts in every string position are only data', async () => {
    const before = await snapshot();
    for (const hostile of HOSTILE) {
      const what = JSON.stringify(hostile.slice(0, 40));
      // Field names of a patch: not in the table's schema, so refused before anything is written.
      expectError(
        await call('mutation', 'hostile:patchFields', { id: noteId, fields: { [hostile]: 1 } }),
        400,
        'INVALID_ARGS',
        `field name ${what}`,
      );
      // Index values, range bounds, filter fields and values, sort fields: read, never run. A lone
      // surrogate cannot be in any stored document (it is not UTF-8), so a query may refuse it.
      const read = (answer: Answer, where: string) => {
        if (hostile === '\ud800' && answer.status === 400) return expectError(answer, 400, 'INVALID_ARGS', where);
        return expectValue(answer, where);
      };
      const indexed = read(await call('query', 'hostile:byIndex', { n: hostile }), `index ${what}`);
      if (indexed) assert.deepEqual(indexed, []);
      read(await call('query', 'hostile:fromIndex', { low: hostile }), `range ${what}`);
      // A field name that is not one of notes' is refused before anything runs, the name quoted
      // safely in the message (a filter on an undeclared field used to match nothing); a system
      // field compared with a number is refused as such.
      const systemField = hostile === '_id' || hostile === '_creationTime';
      const filtered = await call('query', 'hostile:filterBy', { field: hostile, value: 1 });
      expectError(filtered, 400, 'INVALID_ARGS', `filter field ${what}`);
      read(await call('query', 'hostile:filterBy', { field: 'text', value: hostile }), `filter value ${what}`);
      const ordered = await call('query', 'hostile:orderBy', { field: hostile });
      if (systemField) read(ordered, `order field ${what}`);
      else expectError(ordered, 400, 'INVALID_ARGS', `order field ${what}`);
      // Cursors and ids.
      if (hostile !== '') {
        expectError(
          await call('query', 'hostile:pageFrom', { cursor: hostile }),
          400,
          'INVALID_ARGS',
          `cursor ${what}`,
        );
      }
      assert.equal(
        expectValue(await call('mutation', 'hostile:touch', { id: hostile, how: 'get' }), `id ${what}`),
        null,
      );
      expectError(
        await call('mutation', 'hostile:touch', { id: hostile, how: 'delete' }),
        404,
        'NOT_FOUND',
        `delete id ${what}`,
      );
      if (hostile === '\ud800') expectError(await call('query', hostile, {}), 400, 'INVALID_ARGS', 'path');
      else expectError(await call('query', hostile, {}), 404, 'NOT_FOUND', `path ${what}`);
    }
    assert.equal(await snapshot(), before, 'nothing was written');

    // As values they are stored and read back exactly as sent.
    for (const hostile of HOSTILE.filter((text) => text !== '\ud800')) {
      const id = expectValue(await call('mutation', 'notes:add', { text: hostile, tags: [hostile] }), 'store');
      const stored = expectValue(await call('query', 'notes:get', { id }), 'read back');
      assert.equal(stored.text, hostile);
      assert.deepEqual(stored.tags, [hostile]);
      const found = expectValue(await call('query', 'hostile:filterBy', { field: 'text', value: hostile }), 'find');
      assert.ok(found.some((note: any) => note._id === id));
      await call('mutation', 'notes:remove', { id });
    }
    assert.equal(await snapshot(), before);
    await stillServing();
  });

  test('forged, tampered and foreign cursors are INVALID_ARGS', () =>
    unchanged('cursors', async () => {
      const first = expectValue(await call('query', 'hostile:pageFrom', { cursor: null }), 'page 1');
      const cursor: string = first.continueCursor;
      assert.equal(first.isDone, false);
      expectValue(await call('query', 'hostile:pageFrom', { cursor }), 'the real cursor works');

      const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString());
      const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const flipped = Buffer.from(cursor, 'base64url');
      const middle = flipped.length >> 1;
      flipped.writeUInt8(flipped.readUInt8(middle) ^ 0x01, middle);
      const counters = expectValue(await call('query', 'hostile:counterPage', { cursor: null }), 'counters');
      assert.equal(counters.isDone, false);
      const forged: Array<[string, string]> = [
        ['random base64', Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64url')],
        ['one bit flipped', flipped.toString('base64url')],
        ['another query', counters.continueCursor],
        ['a fingerprint of nothing', forge({ ...decoded, q: '0000000000000000' })],
        ['a key of the wrong type', forge({ ...decoded, k: "'; DROP TABLE notes; --" })],
        ['an id that is no uuid', forge({ ...decoded, id: "' OR 1=1 --" })],
        ['extra fields', forge({ ...decoded, sql: 'DROP TABLE notes' })],
        ['JSON that is not an object', forge([decoded])],
        ['huge', 'A'.repeat(512 * 1024)],
        ['not base64', '!!!***'],
      ];
      for (const [what, bad] of forged) {
        expectError(await call('query', 'hostile:pageFrom', { cursor: bad }), 400, 'INVALID_ARGS', what);
      }
    }));

  test('forged ids: unknown ones are NOT_FOUND, and an id of another table is no document of this one', () =>
    unchanged('ids', async () => {
      const unknown = '01900000-0000-7000-8000-000000000000';
      for (const how of ['patch', 'replace', 'delete'] as const) {
        expectError(
          await call('mutation', 'hostile:touchNote', { id: unknown, how }),
          404,
          'NOT_FOUND',
          `${how} unknown`,
        );
        // A counter's id where a note's is declared (defineRef('notes')): the counter is untouched.
        expectError(
          await call('mutation', 'hostile:touchNote', { id: counterId, how }),
          404,
          'NOT_FOUND',
          `${how} another table's id`,
        );
      }
      assert.equal(
        expectValue(await call('mutation', 'hostile:touchNote', { id: counterId, how: 'get' }), 'get'),
        null,
      );
      assert.equal(expectValue(await call('query', 'hostile:getNote', { id: counterId }), 'get in a query'), null);
      assert.equal(expectValue(await call('query', 'hostile:getNote', { id: noteId }), 'a note').text, 'keep me');
      for (const bad of ['not-a-uuid', "' OR 1=1 --", '00000000-0000-0000-0000-000000000000Z', 42, null]) {
        expectError(
          await call('mutation', 'hostile:touchNote', { id: bad, how: 'delete' }),
          400,
          'INVALID_ARGS',
          `id ${JSON.stringify(bad)}`,
        );
      }
    }));
});
