/**
 * The runtime over real HTTP and a real Postgres: every ctx.db path the fixture app uses, and
 * every bad input a client can send. After each failure the server keeps serving and the
 * database holds exactly what committed.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../dist/server/index.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { fieldText, relational } from './helpers/storage.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let database: TestDatabase;
let server: ConvoyServer;
const logged: string[] = [];

async function post(kind: 'query' | 'mutation', body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const call = (kind: 'query' | 'mutation', name: string, args: Record<string, unknown> = {}) =>
  post(kind, { path: `notes:${name}`, args });

async function noteCount(): Promise<number> {
  return (await database.query('SELECT count(*)::int AS n FROM notes'))[0].n;
}

describe('the runtime over HTTP', () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({
      appDir,
      databaseUrl: database.url,
      port: 0,
      dev: true,
      log: (line) => logged.push(line),
    });
  });

  after(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('insert answers a UUIDv7 id; queries read by index, range, filter and order', async () => {
    for (const [text, n] of [
      ['ten', 10],
      ['two', 2],
      ['thirty-three', 33],
      ['one', 1],
    ] as const) {
      const { status, body } = await call('mutation', 'add', { text, n, tags: ["it's", 'ünï', '"quoted"'] });
      assert.equal(status, 200);
      assert.match(body.value, UUID_V7);
    }
    const listed = (await call('query', 'list')).body.value;
    assert.deepEqual(
      listed.map((note: any) => note.n),
      [1, 2, 10, 33],
      'numbers order as numbers',
    );
    assert.deepEqual(listed[0].tags, ["it's", 'ünï', '"quoted"']);
    const range = (await call('query', 'between', { low: 2, high: 33 })).body.value;
    assert.deepEqual(
      range.map((note: any) => note.n),
      [10, 2],
    );
    const filtered = (await call('query', 'tagged', { text: 'two' })).body.value;
    assert.deepEqual(
      filtered.map((note: any) => note.text),
      ['two'],
    );
    assert.equal((await call('query', 'first')).body.value.n, 1);
    assert.equal((await call('query', 'unique', { text: 'ten' })).body.value.n, 10);
    assert.equal((await call('query', 'unique', { text: 'nobody' })).body.value, null);
  });

  test('paginate walks a query page by page with opaque cursors', async () => {
    const all = (await call('query', 'list')).body.value.map((note: any) => note._id).reverse();
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const { body } = await call('query', 'page', { cursor, numItems: 3 });
      seen.push(...body.value.page.map((note: any) => note._id));
      if (body.value.isDone) break;
      cursor = body.value.continueCursor;
    }
    assert.deepEqual(seen, all);
    const forged = await call('query', 'page', { cursor: 'forged', numItems: 3 });
    assert.equal(forged.body.error.code, 'INVALID_ARGS');
  });

  test('raw SQL binds values, runs in the mutation, and cannot write from a query', async () => {
    const hostile = "ten' OR '1'='1";
    assert.deepEqual((await call('query', 'countByText', { text: 'ten' })).body, { value: [{ count: 1 }] });
    assert.deepEqual((await call('query', 'countByText', { text: hostile })).body, { value: [{ count: 0 }] });
    const before = await noteCount();
    const refused = await call('mutation', 'rawInsertThenRefuse');
    assert.equal(refused.body.error.code, 'NOPE');
    assert.equal(await noteCount(), before, 'the raw insert rolled back with the mutation');
    const write = await call('query', 'rawWriteInQuery');
    assert.equal(write.status, 500);
    assert.match(write.body.error.message, /read-only/);
    assert.equal(await noteCount(), before);
    const hint = await call('query', 'rawFieldAsColumn');
    if (relational) {
      // A relational table's fields are its columns: the raw SQL works as written.
      assert.equal(hint.status, 200, JSON.stringify(hint.body));
    } else {
      assert.match(hint.body.error.message, /data->>'text'/);
    }
  });

  test('sql.identifier splices a quoted name: a hostile one is only a table that does not exist', async () => {
    const before = await noteCount();
    assert.deepEqual((await call('query', 'countIn', { table: 'notes' })).body, { value: [{ count: before }] });
    const hostile = await call('query', 'countIn', { table: 'notes"; DROP TABLE notes; --' });
    assert.equal(hostile.body.error.code, 'INTERNAL');
    assert.equal(await noteCount(), before, 'notes is still there');
  });

  test('a mutation reads back its own writes, which commit together', async () => {
    const text = `read-back-${Date.now()}`;
    const { body } = await call('mutation', 'addThenReadBack', { text });
    assert.equal(body.value.n, 2, 'get sees the patch');
    assert.deepEqual(body.value.listed, [2], 'a query sees the insert and the patch');
    assert.equal(body.value.afterDelete, null, 'get sees the delete');
    const listed = (await call('query', 'list')).body.value.filter((note: any) => note.text === text);
    assert.deepEqual(
      listed.map((note: any) => [note._id, note.n]),
      [[body.value.second, 3]],
    );
  });

  test('an unmanaged table is read and written through the same API, columns as fields', async () => {
    assert.deepEqual((await post('mutation', { path: 'events:log', args: { event: 'signup' } })).body, { value: '1' });
    assert.deepEqual((await post('mutation', { path: 'events:log', args: { event: 'login' } })).body, { value: '2' });
    const recent = (await post('query', { path: 'events:recent', args: {} })).body.value;
    assert.deepEqual(
      recent.map((row: any) => [row._id, row.id, row.event]),
      [
        [2, 2, 'login'],
        [1, 1, 'signup'],
      ],
    );
    assert.equal(typeof recent[0].at, 'string', 'other columns come along as they are');
    const refused = await post('mutation', { path: 'events:log', args: { event: 42 } });
    assert.equal(refused.body.error.code, 'INVALID_ARGS');

    // Pages too, in the column's order, with the primary key keeping the place.
    await post('mutation', { path: 'events:log', args: { event: 'logout' } });
    const page = (cursor: string | null) =>
      post('query', { path: 'events:pages', args: { paginationOpts: { numItems: 2, cursor } } });
    const first = (await page(null)).body.value;
    assert.deepEqual(
      first.page.map((row: any) => row.event),
      ['signup', 'logout'],
    );
    assert.equal(first.isDone, false);
    const second = (await page(first.continueCursor)).body.value;
    assert.deepEqual(
      second.page.map((row: any) => row.event),
      ['login'],
    );
    assert.equal(second.isDone, true);
    const forged = await page(Buffer.from('{"q":"0","k":null,"p":1}').toString('base64url'));
    assert.equal(forged.body.error.code, 'INVALID_ARGS');
  });

  test("an unmanaged table's row by its primary key: get, patch, replace, delete with the table first", async () => {
    const id = Number((await post('mutation', { path: 'events:log', args: { event: 'draft' } })).body.value);
    const one = async (key: unknown) => (await post('query', { path: 'events:one', args: { id: key } })).body;
    assert.equal((await one(id)).value.event, 'draft');
    assert.equal((await one(String(id))).value.event, 'draft', 'the key in its text form too');
    assert.deepEqual(await one(999_999), { value: null });

    assert.equal((await post('mutation', { path: 'events:rename', args: { id, event: 'renamed' } })).status, 200);
    const renamed = (await one(id)).value;
    assert.equal(renamed.event, 'renamed');
    const refused = await post('mutation', { path: 'events:rename', args: { id, event: 42 } });
    assert.equal(refused.body.error.code, 'INVALID_ARGS', 'each column is checked against its field');
    assert.deepEqual((await one(id)).value, renamed, 'a refused patch changed nothing');

    assert.equal((await post('mutation', { path: 'events:rewrite', args: { id, event: 'rewritten' } })).status, 200);
    assert.equal((await one(id)).value.event, 'rewritten');
    assert.equal((await one(id)).value.at, renamed.at, 'columns the schema does not declare are left alone');

    for (const [path, args] of [
      ['events:rename', { id: 999_999, event: 'x' }],
      ['events:remove', { id: 999_999 }],
      ['events:remove', { id: '1; DROP TABLE events; --' }],
    ] as const) {
      const missing = await post('mutation', { path, args });
      assert.ok([400, 404].includes(missing.status), JSON.stringify(missing.body));
      assert.ok(['NOT_FOUND', 'INVALID_ARGS'].includes(missing.body.error.code), JSON.stringify(missing.body));
    }
    assert.equal((await post('mutation', { path: 'events:remove', args: { id } })).status, 200);
    assert.deepEqual(await one(id), { value: null });
    assert.equal(
      (await database.query('SELECT count(*)::int AS n FROM events'))[0].n > 0,
      true,
      'the table is still there',
    );

    // A managed table named first: the id must be of that table.
    const note = (await call('mutation', 'add', { text: 'named' })).body.value;
    assert.equal(
      (await post('query', { path: 'events:noteIn', args: { table: 'notes', id: note } })).body.value.text,
      'named',
    );
    assert.deepEqual((await post('query', { path: 'events:noteIn', args: { table: 'counters', id: note } })).body, {
      value: null,
    });
  });

  test('afterCommit runs once after a commit, and never after a rollback', async () => {
    assert.equal((await call('mutation', 'addWithEffect', { text: 'sent', refuse: false })).status, 200);
    assert.equal((await call('mutation', 'addWithEffect', { text: 'never', refuse: true })).status, 400);
    let seen: string[] = [];
    for (let tries = 0; tries < 50 && seen.length === 0; tries++) {
      seen = (await call('query', 'effectsSeen')).body.value;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(seen, ['sent']);
  });

  test("createContext in convoy/server.ts sees the request's headers and shapes ctx", async () => {
    const ask = (authorization?: string) =>
      fetch(`${server.url}/api/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ path: 'auth:whoami', args: {} }),
      });
    assert.deepEqual(await (await ask('Bearer ada')).json(), { value: { userId: 'user-ada' } });
    assert.deepEqual(await (await ask()).json(), { value: { userId: null } });
    const refused = await ask('Bearer bad');
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { error: { code: 'UNAUTHORIZED', message: 'That token is not valid' } });
  });

  test("the app's own CONFLICT reaches the client as thrown, and its handler is not run again", async () => {
    const before = (await post('query', { path: 'counters:claimAttemptsSeen', args: {} })).body.value;
    const claimed = await post('mutation', { path: 'counters:claimName', args: { name: 'ada' } });
    assert.equal(claimed.status, 409);
    assert.deepEqual(claimed.body, { error: { code: 'CONFLICT', message: 'The name ada is taken' } });
    const after = (await post('query', { path: 'counters:claimAttemptsSeen', args: {} })).body.value;
    assert.equal(after - before, 1, 'one run: only conflicts of the database are retried');
  });

  test('browsers: allowed origins get CORS, other sites are refused before anything runs', async () => {
    const preflight = await fetch(`${server.url}/api/mutation`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);

    const fromVite = await fetch(`${server.url}/api/query`, {
      method: 'POST',
      headers: { origin: 'http://localhost:5173', 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'notes:first', args: {} }),
    });
    assert.equal(fromVite.status, 200);
    assert.equal(fromVite.headers.get('access-control-allow-origin'), 'http://localhost:5173');

    const before = await noteCount();
    const fromElsewhere = await fetch(`${server.url}/api/mutation`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      body: JSON.stringify({ path: 'notes:add', args: { text: 'csrf' } }),
    });
    assert.equal(fromElsewhere.status, 403);
    assert.equal((await fromElsewhere.json()).error.code, 'FORBIDDEN');
    assert.equal(fromElsewhere.headers.get('access-control-allow-origin'), null);
    assert.equal(await noteCount(), before, 'the cross-site mutation did not run');
  });

  test('/metrics counts calls, executions, restarts and the pool in Prometheus text', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
      return Number(line?.split(' ')[1]);
    };
    const queries = 'convoy_function_executions_total{kind="query"}';
    const okQueries = 'convoy_calls_total{kind="query",outcome="ok"}';
    const [runsBefore, okBefore] = [await metric(queries), await metric(okQueries)];
    await call('query', 'first');
    await call('query', 'first');
    assert.equal(await metric(queries), runsBefore + 2);
    assert.equal(await metric(okQueries), okBefore + 2);
    assert.ok((await metric('convoy_pool_max_connections')) >= 1);
    const response = await fetch(`${server.url}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  });

  test('when Postgres drops the connections, calls fail UNAVAILABLE (never 500) and the pool heals', async () => {
    await call('query', 'first');
    // What a Postgres restart does to the server's connections.
    await database.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const { status, body } = await call('query', 'first');
      statuses.push(status);
      if (status === 200) break;
      assert.equal(status, 503, JSON.stringify(body));
      assert.equal(body.error.code, 'UNAVAILABLE');
    }
    assert.equal(statuses.at(-1), 200, `never recovered: ${statuses}`);
    const before = await noteCount();
    assert.equal((await call('mutation', 'add', { text: 'after the restart' })).status, 200);
    assert.equal(await noteCount(), before + 1);
  });

  test('a query that reads twice sees one snapshot (it restarts into a transaction)', async () => {
    const count = await noteCount();
    for (let run = 0; run < 2; run++) {
      assert.deepEqual((await call('query', 'countTwice')).body, { value: [count, count] });
    }
  });

  test('get, patch (shallow, undefined removes), replace and delete', async () => {
    const id = (await call('mutation', 'add', { text: 'draft', n: 7 })).body.value;
    const got = (await call('query', 'get', { id })).body.value;
    assert.equal(got._id, id);
    assert.equal(typeof got._creationTime, 'number');
    const edited = (await call('mutation', 'edit', { id, text: 'final' })).body.value;
    assert.deepEqual([edited.text, edited.n, edited._creationTime], ['final', 7, got._creationTime]);
    const cleared = (await call('mutation', 'clearN', { id })).body.value;
    assert.equal('n' in cleared, false);
    const replaced = (await call('mutation', 'overwrite', { id, text: 'new' })).body.value;
    assert.deepEqual(Object.keys(replaced).sort(), ['_creationTime', '_id', 'text']);
    assert.deepEqual((await call('mutation', 'remove', { id })).body, { value: null });
    assert.deepEqual((await call('query', 'get', { id })).body, { value: null });
    const again = await call('mutation', 'remove', { id });
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'NOT_FOUND');
    assert.equal((await call('query', 'get', { id: 'not-an-id' })).body.value, null);
  });

  test("an app's own error reaches the client as thrown, and the mutation rolls back", async () => {
    const before = await noteCount();
    const { status, body } = await call('mutation', 'addThenRefuse', { text: 'over the limit' });
    assert.equal(status, 400);
    assert.deepEqual(body, {
      error: { code: 'NOTE_LIMIT', message: 'No more notes on the free plan', data: { limit: 3 } },
    });
    assert.equal(await noteCount(), before);
  });

  test('a crash rolls back and answers INTERNAL with the message in dev mode', async () => {
    const before = await noteCount();
    const { status, body } = await call('mutation', 'addThenCrash', { text: 'doomed' });
    assert.equal(status, 500);
    assert.equal(body.error.code, 'INTERNAL');
    assert.equal(body.error.message, 'kaboom');
    assert.match(body.error.data.stack, /kaboom[\s\S]*\n\s+at /, 'dev mode shows the stack to the client');
    assert.equal(await noteCount(), before);
    const requestId = body.error.data.requestId;
    assert.ok(
      logged.some((line) => line.includes('kaboom') && line.includes(requestId) && /\n\s+at /.test(line)),
      'the detail and its stack go to the terminal, under the id the client got',
    );
  });

  test('handlers that throw synchronously or reject with a non-Error do not take the server down', async () => {
    const sync = await call('query', 'throwsSynchronously');
    assert.equal(sync.status, 500);
    assert.equal(sync.body.error.message, 'thrown before any await');
    const rejected = await call('query', 'rejectsWithString');
    assert.equal(rejected.status, 500);
    assert.equal(rejected.body.error.code, 'INTERNAL');
    assert.deepEqual((await call('mutation', 'returnsNothing')).body, { value: null });
  });

  test('writes that fail validation are INVALID_ARGS and change nothing', async () => {
    const before = await noteCount();
    for (const name of ['addInvalid', 'addSystemField', 'addHuge', 'addDeep']) {
      const { status, body } = await call('mutation', name);
      assert.equal(status, 400, name);
      assert.equal(body.error.code, 'INVALID_ARGS', name);
    }
    assert.equal(await noteCount(), before);
  });

  test('a database error the handler swallows still rolls the whole mutation back', async () => {
    const before = await noteCount();
    const { status, body } = await call('mutation', 'swallowDatabaseError');
    assert.equal(status, 400);
    assert.equal(body.error.code, 'INVALID_ARGS', 'NUL cannot be stored in JSONB');
    assert.equal(await noteCount(), before);
  });

  test('bad requests get their documented codes', async () => {
    const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, string]> = [
      ['malformed JSON', () => post('query', '{"path": '), 400, 'INVALID_ARGS'],
      ['no path', () => post('query', { args: {} }), 400, 'INVALID_ARGS'],
      ['path of the wrong type', () => post('query', { path: 42 }), 400, 'INVALID_ARGS'],
      ['unknown function', () => post('query', { path: 'notes:nope', args: {} }), 404, 'NOT_FOUND'],
      ['hostile path', () => post('query', { path: "notes:list'; DROP TABLE notes; --" }), 404, 'NOT_FOUND'],
      ['mutation on /api/query', () => call('query', 'add', { text: 'x' }), 400, 'INVALID_ARGS'],
      ['args of the wrong type', () => call('mutation', 'add', { text: 42 }), 400, 'INVALID_ARGS'],
      ['unknown arg', () => call('mutation', 'add', { text: 'x', admin: true }), 400, 'INVALID_ARGS'],
      ['args not an object', () => post('mutation', { path: 'notes:add', args: [1, 2] }), 400, 'INVALID_ARGS'],
      ['NUL in a string', () => call('mutation', 'add', { text: 'a\u0000b' }), 400, 'INVALID_ARGS'],
      [
        'a body over 1 MiB',
        () => call('mutation', 'add', { text: 'x'.repeat(2 * 1024 * 1024) }),
        413,
        'PAYLOAD_TOO_LARGE',
      ],
    ];
    const before = await noteCount();
    for (const [name, send, status, code] of cases) {
      const response = await send();
      assert.equal(response.status, status, name);
      assert.equal(response.body.error.code, code, name);
      assert.equal(typeof response.body.error.message, 'string', name);
    }
    assert.equal(await noteCount(), before, 'nothing was written');

    const wrongMethod = await fetch(`${server.url}/api/query`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    const unknownRoute = await fetch(`${server.url}/nope`);
    assert.equal(unknownRoute.status, 404);
    assert.equal((await fetch(`${server.url}/health`)).status, 200, 'still serving');
  });

  test('mutations of one insert each, sent at once, commit together and each gets its own answer', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(
        text
          .split('\n')
          .find((line) => line.startsWith(`${name} `))
          ?.split(' ')[1],
      );
    };
    // A rule of the app's own, added with psql: Convoy learns of it only when Postgres says no.
    await database.query(`ALTER TABLE notes ADD CONSTRAINT short_text CHECK (length(${fieldText('text')}) < 30)`);
    try {
      const [rowsBefore, statementsBefore, notesBefore] = [
        await metric('convoy_group_commit_rows_total'),
        await metric('convoy_group_commit_statements_total'),
        await noteCount(),
      ];
      const texts = Array.from({ length: 60 }, (_, i) =>
        i % 20 === 7 ? `a text far too long for the rule ${i}` : `batch ${i}`,
      );
      const answers = await Promise.all(
        texts.map(async (text) => ({ text, answer: await call('mutation', 'add', { text }) })),
      );

      const committed = new Map<string, string>();
      for (const { text, answer } of answers) {
        if (text.startsWith('a text far too long')) {
          assert.notEqual(answer.status, 200, text);
          assert.match(answer.body.error.message, /short_text/);
        } else {
          assert.equal(answer.status, 200, JSON.stringify(answer.body));
          assert.match(answer.body.value, UUID_V7);
          committed.set(answer.body.value, text);
        }
      }
      assert.equal(committed.size, 57);
      const stored = await database.query(
        `SELECT id::text AS id, ${fieldText('text')} AS text FROM notes WHERE ${fieldText('text')} LIKE 'batch %' OR ${fieldText('text')} LIKE 'a text far%'`,
      );
      assert.deepEqual(new Map(stored.map((row: { id: string; text: string }) => [row.id, row.text])), committed);
      assert.equal(await noteCount(), notesBefore + 57);
      // Every one went through group commit, in fewer statements than rows.
      const rows = (await metric('convoy_group_commit_rows_total')) - rowsBefore;
      const statements = (await metric('convoy_group_commit_statements_total')) - statementsBefore;
      assert.equal(rows, 60);
      assert.ok(statements < rows, `${statements} statements for ${rows} rows`);
    } finally {
      await database.query('ALTER TABLE notes DROP CONSTRAINT short_text');
    }
  });

  test('reload swaps the functions in without dropping the server', async () => {
    await server.reload();
    assert.equal((await call('query', 'first')).status, 200);
  });

  // Last: it stops the server.
  test('stop lets requests in flight finish, then refuses new ones', async () => {
    const inFlight = call('query', 'slow');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopping = performance.now();
    await server.stop();
    // The handler sleeps 400 ms: stop cannot have returned before it answered (production exits
    // the process right after stop, so anything still running then would be cut off).
    assert.ok(performance.now() - stopping >= 250, 'stop returned before the request in flight finished');
    assert.deepEqual((await inFlight).body, { value: 'finished' });
    await assert.rejects(fetch(`${server.url}/health`));
  });
});
