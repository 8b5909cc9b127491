/**
 * The server's limits (SPEC §5, docs/security.md): function timeouts, the number of sync streams,
 * idle streams, polite closing on stop, and production mode's generic internal errors with a
 * request id that the structured request log carries too.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, start } from './helpers/process.js';
import { convoy } from './helpers/production.js';
import { fieldText } from './helpers/storage.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');

let database: TestDatabase;
let server: ConvoyServer;

async function call(url: string, kind: 'query' | 'mutation', name: string, args: object = {}) {
  const response = await fetch(`${url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: name, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** An event stream read bit by bit: `until(done)` reads until `done(all text so far)` or the end. */
function streamOf(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  let ended = false;
  return {
    async until(done: (text: string) => boolean, timeoutMs = 5_000): Promise<{ text: string; ended: boolean }> {
      const timer = setTimeout(() => void reader.cancel(), timeoutMs);
      try {
        while (!ended && !done(text)) {
          const chunk = await reader.read();
          if (chunk.done) ended = true;
          else text += chunk.value;
        }
      } finally {
        clearTimeout(timer);
      }
      return { text, ended };
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}

const openStream = (url: string) => fetch(`${url}/api/sync`, { headers: { accept: 'text/event-stream' } });

describe('limits', () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({
      appDir,
      databaseUrl: database.url,
      port: 0,
      functionTimeoutMs: 600,
      maxStreams: 3,
      streamIdleTimeoutMs: 500,
      log: () => {},
    });
  });

  after(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('a function past its timeout answers INTERNAL; a mutation keeps none of its writes', async () => {
    assert.deepEqual(await call(server.url, 'query', 'limits:wait', { ms: 100 }), {
      status: 200,
      body: { value: 100 },
    });

    const started = Date.now();
    const slow = await call(server.url, 'query', 'limits:wait', { ms: 3_000 });
    assert.equal(slow.status, 500);
    assert.equal(slow.body.error.code, 'INTERNAL');
    assert.ok(Date.now() - started < 2_000, 'answered at the timeout, not when the handler finished');

    // A function's own timeoutMs wins over the server's.
    const impatient = await call(server.url, 'query', 'limits:impatient', { ms: 400 });
    assert.equal(impatient.status, 500);
    assert.equal(impatient.body.error.code, 'INTERNAL');
    assert.equal((await call(server.url, 'query', 'limits:impatient', { ms: 10 })).status, 200);

    const count = async () =>
      (await database.query(`SELECT count(*)::int AS n FROM notes WHERE ${fieldText('text')} LIKE 'late%'`))[0].n;
    const late = await call(server.url, 'mutation', 'limits:writeThenWait', { text: 'late', ms: 1_500 });
    assert.equal(late.body.error.code, 'INTERNAL');
    // Let the abandoned handler finish its sleep and try its second write.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await count(), 0, 'neither the write before the timeout nor the one after it stayed');
    assert.deepEqual(await call(server.url, 'query', 'limits:wait', { ms: 1 }), { status: 200, body: { value: 1 } });
  });

  test('calls queue for a busy pool instead of failing at once', async () => {
    const small = await startConvoy({ appDir, databaseUrl: database.url, port: 0, poolSize: 1, log: () => {} });
    try {
      // Each holds the one connection for 150 ms; together they take their turns.
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => call(small.url, 'mutation', 'limits:readThenWait', { ms: 150 })),
      );
      assert.deepEqual(
        answers.map((answer) => answer.status),
        [200, 200, 200, 200, 200],
      );
    } finally {
      await small.stop();
    }
  });

  test('sync streams beyond maxStreams are refused with UNAVAILABLE until one closes', async () => {
    const open = await Promise.all([openStream(server.url), openStream(server.url), openStream(server.url)]);
    for (const response of open) assert.equal(response.status, 200);
    const refused = await openStream(server.url);
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, 'UNAVAILABLE');
    await open[0].body?.cancel();
    // The server notices the closed stream at once; give the socket a moment.
    let again: Response | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      again = await openStream(server.url);
      if (again.status === 200) break;
      await again.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(again?.status, 200);
    await Promise.all([again?.body?.cancel(), open[1].body?.cancel(), open[2].body?.cancel()]);
    // The server counts a stream until it notices the socket closed: wait for that, so that the
    // next test starts below the limit (under load it can take longer than this test's own wait).
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      if (/^convoy_sync_streams 0$/m.test(metrics)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  test('a stream that holds no subscription is closed once idle; one that holds some stays', async () => {
    const idle = streamOf(await openStream(server.url));
    const busy = streamOf(await openStream(server.url));
    const hello = await busy.until((text) => text.includes('"session"'));
    const session = /"session":"([^"]+)"/.exec(hello.text)![1];
    const added = await fetch(`${server.url}/api/sync/${session}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ add: [{ id: '1', path: 'notes:first', args: {} }] }),
    });
    assert.equal(added.status, 200);

    const started = Date.now();
    const closed = await idle.until(() => false);
    assert.ok(closed.ended, 'the idle stream ended');
    assert.match(closed.text, /event: close\ndata: \{"reason":"idle"\}/);
    assert.ok(Date.now() - started < 3_000);

    const kept = await busy.until(() => Date.now() - started > 1_500, 3_000);
    assert.equal(kept.ended, false, 'the stream with a subscription is still open');
    await busy.cancel();
  });

  test('stop ends every stream with a closing event, so clients know to reconnect', async () => {
    const other = await startConvoy({ appDir, databaseUrl: database.url, port: 0, log: () => {} });
    const stream = streamOf(await openStream(other.url));
    await stream.until((text) => text.includes('"session"'));
    const reading = stream.until(() => false);
    await other.stop();
    const { text, ended } = await reading;
    assert.ok(ended);
    assert.match(text, /event: close\ndata: \{"reason":"shutdown"\}/);
  });
});

describe('production mode', () => {
  let running: Running | undefined;
  let dir: string | undefined;
  let prodDatabase: TestDatabase | undefined;
  let url = '';

  after(async () => {
    await running?.stop('SIGTERM');
    await prodDatabase?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('internal errors are generic with a request id; the log has one JSON line per request', async () => {
    prodDatabase = await createDatabase();
    await createExistingTables(prodDatabase);
    dir = await mkdtemp(path.join(tmpdir(), 'convoy-prod-'));
    const script = path.join(dir, 'serve.mjs');
    // The production entry as `node convoy/_generated/http.js` runs it, for the fixture app.
    await writeFile(
      script,
      `import { runProduction } from ${JSON.stringify(path.join(here, '..', 'dist', 'server', 'index.js'))};
       await runProduction({ entry: ${JSON.stringify(path.join(appDir, 'convoy', '_generated', 'http.js'))} });`,
    );
    // `convoy codegen` writes the fixture's _generated/http.js, whose path tells the app's folder;
    // `convoy migrate` creates the schema, which the production server never does; `convoy build`
    // writes the bundle it loads.
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: prodDatabase.url, PORT: '0', HOST: '127.0.0.1' };
    delete env.CONVOY_LOG;
    for (const step of ['codegen', 'migrate', 'build']) {
      const result = await convoy([step, '--dir', appDir], appDir, env);
      assert.equal(result.code, 0, result.output);
    }
    running = start('node', [script], { cwd: dir, env });
    for (let waited = 0; waited < 20_000 && !url; waited += 50) {
      const match = /on port (\d+)/.exec(running.output());
      if (match) url = `http://127.0.0.1:${match[1]}`;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(url, `the production server started: ${running.output()}`);

    assert.equal((await call(url, 'mutation', 'notes:add', { text: 'logged' })).status, 200);
    const crash = await call(url, 'mutation', 'notes:addThenCrash', { text: 'never' });
    assert.equal(crash.status, 500);
    assert.equal(crash.body.error.code, 'INTERNAL');
    const { requestId } = crash.body.error.data;
    assert.match(requestId, /^[0-9a-f-]{36}$/);
    assert.equal(crash.body.error.message, `Internal error (request ${requestId})`);
    assert.doesNotMatch(JSON.stringify(crash.body), /kaboom|stack/, 'no detail reaches the client');

    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = running
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line));
    const ok = lines.find((line) => line.function === 'notes:add');
    assert.ok(ok, `a request line for notes:add in ${running.output()}`);
    assert.equal(ok.outcome, 'ok');
    assert.equal(ok.kind, 'mutation');
    assert.equal(typeof ok.duration_ms, 'number');
    const failed = lines.find((line) => line.function === 'notes:addThenCrash');
    assert.equal(failed.outcome, 'INTERNAL');
    assert.equal(failed.request_id, requestId);
    // The detail is in the server's output, under the same id.
    assert.match(running.output(), new RegExp(`${requestId}[^\\n]*kaboom`));
  });

  test('SIGTERM lets the calls in flight finish, closes streams politely, and exits 0', async () => {
    assert.ok(running && prodDatabase, 'the production server of the test before');
    const stream = streamOf(await openStream(url));
    await stream.until((text) => text.includes('"session"'));
    const reading = stream.until(() => false);
    // A mutation that writes, waits 800 ms, and writes again: SIGTERM arrives in the middle.
    const inFlight = call(url, 'mutation', 'limits:writeThenWait', { text: 'draining', ms: 800 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const exit = running.stop('SIGTERM');
    const answer = await inFlight;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const rows = await prodDatabase.query(
      `SELECT ${fieldText('text')} AS text FROM notes WHERE ${fieldText('text')} LIKE 'draining%'`,
    );
    assert.deepEqual(rows.map((row) => row.text).sort(), ['draining', 'draining (second)'], 'all of it committed');
    const { text, ended } = await reading;
    assert.ok(ended);
    assert.match(text, /event: close\ndata: \{"reason":"shutdown"\}/);
    assert.deepEqual(await exit, { code: 0, signal: null });
    await assert.rejects(fetch(`${url}/health`), 'nothing listens any more');
  });
});
