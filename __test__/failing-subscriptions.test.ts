/**
 * Issue 15, finding 3: a subscription that fails costs nothing on unrelated commits. One whose
 * arguments its query refuses is refused as it subscribes (its error on the stream, nothing
 * registered); one whose run fails keeps what it read before failing, instead of reading
 * "everything", which made a thousand of them re-run on every insert anywhere.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ConvoyClient } from '../src/client/index.js';
import { behaviourSuite } from './helpers/behaviour-suite.js';
import { callOk, queryRuns } from './helpers/call.js';

const suite = behaviourSuite();

const clients: ConvoyClient[] = [];

describe('finding 3: failing subscriptions cost nothing on unrelated commits', { timeout: 60_000 }, () => {
  after(async () => {
    for (const client of clients) client.close();
  });

  test('1,000 subscriptions with invalid arguments run once each, and never again on an insert', async () => {
    let errors = 0;
    for (let stream = 0; stream < 2; stream++) {
      const client = new ConvoyClient(suite.server.url);
      clients.push(client);
      for (let i = 0; i < 500; i++) {
        client.subscribe(
          { path: 'limits:wait' } as never,
          { ms: `not a number ${stream}-${i}` } as never,
          () => assert.fail('an invalid subscription had a value'),
          (error) => {
            assert.equal(error.code, 'INVALID_ARGS');
            errors++;
          },
        );
      }
    }
    const deadline = Date.now() + 20_000;
    while (errors < 1_000) {
      assert.ok(Date.now() < deadline, `only ${errors} of 1000 subscriptions answered`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const before = await queryRuns(suite.server.url);
    for (let i = 0; i < 20; i++) await callOk(suite.server.url, 'mutation', 'notes:add', { text: `unrelated ${i}` });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await queryRuns(suite.server.url)) - before, 0, 'query runs caused by 20 unrelated inserts');
    assert.equal(errors, 1_000, 'no failing subscription was sent anything again');
    const metrics = await (await fetch(`${suite.server.url}/metrics`)).text();
    assert.match(metrics, /\nconvoy_live_queries 0\n/, 'none of them was registered');
  });

  test("a stream's subscriptions hold at most 1 MiB of args", async () => {
    const response = await fetch(`${suite.server.url}/api/sync`, { headers: { accept: 'text/event-stream' } });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/"session":"([^"]+)"/.test(text)) text += (await reader.read()).value ?? '';
    const session = /"session":"([^"]+)"/.exec(text)?.[1] as string;
    const add = (id: string) =>
      fetch(`${suite.server.url}/api/sync/${session}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ add: [{ id, path: 'notes:tagged', args: { text: 'x'.repeat(600_000) } }] }),
      });
    assert.equal((await add('first')).status, 200);
    const second = await add('second');
    assert.equal(second.status, 400);
    assert.match(((await second.json()) as any).error.message, /at most 1048576 bytes of args/);
    await reader.cancel();
  });
});
