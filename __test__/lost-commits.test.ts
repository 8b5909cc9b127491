/**
 * Issue 15, finding 4: a mutation whose COMMIT reached Postgres but whose answer was lost is
 * settled by its idempotency key — the caller gets the real outcome, it applies once, and its
 * writes reach live queries. A repeat of a key that committed is answered with the recorded
 * result, without running again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConvoyClient } from '../src/client/index.js';
import { behaviourSuite } from './helpers/behaviour-suite.js';
import { type CommitDroppingProxy, startCommitDroppingProxy } from './helpers/commit-dropping-proxy.js';
import { fieldText } from './helpers/storage.js';

let proxy: CommitDroppingProxy;
before(async () => {
  proxy = await startCommitDroppingProxy();
});

const suite = behaviourSuite((database) => ({ databaseUrl: proxy.url(database.url) }));
after(async () => {
  await proxy?.close();
});

const clients: ConvoyClient[] = [];

const count = async (text: string) =>
  (await suite.database.query(`SELECT count(*)::int AS n FROM notes WHERE ${fieldText('text')} = '${text}'`))[0].n;

async function mutation(args: object, key: string) {
  const response = await fetch(`${suite.server.url}/api/mutation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({ path: 'notes:add', args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

describe('finding 4: a commit whose answer was lost applies once, and the caller learns so', {
  timeout: 60_000,
}, () => {
  after(async () => {
    for (const client of clients) client.close();
  });

  test('through a proxy that drops the connection right after COMMIT: resolved, applied once, seen live', async () => {
    const client = new ConvoyClient(suite.server.url);
    clients.push(client);
    let seen: any[] | undefined;
    client.subscribe({ path: 'notes:list' } as never, {} as never, (value) => {
      seen = value as any[];
    });
    while (!seen) await new Promise((resolve) => setTimeout(resolve, 10));
    for (let i = 0; i < 5; i++) {
      const text = `lost answer ${i}`;
      proxy.arm();
      const id = await client.mutation({ path: 'notes:add' } as never, { text } as never);
      assert.equal(typeof id, 'string', `mutation ${i} resolved with its id`);
      assert.equal(await count(text), 1, `mutation ${i} applied once`);
      const deadline = Date.now() + 5_000;
      while (!seen?.some((note) => note.text === text)) {
        assert.ok(Date.now() < deadline, `the subscriber never saw mutation ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.equal(proxy.dropped(), 5, 'each mutation lost its COMMIT answer');
  });

  test('a key that committed is answered with its recorded result, and the mutation does not run again', async () => {
    const key = crypto.randomUUID();
    const first = await mutation({ text: 'keyed once' }, key);
    assert.equal(first.status, 200);
    const again = await mutation({ text: 'keyed once' }, key);
    assert.deepEqual(again, first);
    // Even with other arguments: the key names the mutation.
    const other = await mutation({ text: 'keyed twice' }, key);
    assert.deepEqual(other.body, first.body);
    assert.equal(await count('keyed once'), 1);
    assert.equal(await count('keyed twice'), 0);
    const metrics = await (await fetch(`${suite.server.url}/metrics`)).text();
    assert.match(metrics, /convoy_mutations_repeated_total [1-9]/);
  });

  test('concurrent requests with one key apply once and all get its answer', async () => {
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 6 }, () => mutation({ text: 'raced' }, key)));
    for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(new Set(answers.map((answer) => JSON.stringify(answer.body))).size, 1);
    assert.equal(await count('raced'), 1);
  });
});
