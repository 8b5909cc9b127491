/**
 * Faults against a real Postgres (docs/security.md): Postgres stopped and started again under a
 * load of mutations and live subscriptions, and the server killed with SIGKILL in the middle of a
 * load. Afterwards every acknowledged mutation is there, no mutation is there in part, nothing
 * that failed is there, and every subscriber converges on a fresh query's answer.
 *
 * Postgres is stopped only in a private cluster (the embedded one `convoy dev` uses, in a temp
 * folder), never the machine's.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type EmbeddedDatabase, startEmbedded } from '../src/cli/embedded.js';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';
import { type Running, start } from './helpers/process.js';
import { fieldText } from './helpers/storage.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.join(here, 'fixtures', 'behaviour-app');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  acknowledged: Set<string>;
  failed: Map<string, string>;
}

/** Mutations of `faults:addBatch` with unique tags from `workers` loops, until `running()` is false. */
function load(url: () => string, running: () => boolean, workers = 4): { done: Promise<void>; outcome: Outcome } {
  const outcome: Outcome = { acknowledged: new Set(), failed: new Map() };
  let next = 0;
  const worker = async (index: number) => {
    while (running()) {
      const tag = `batch-${index}-${next++}`;
      try {
        const response = await fetch(`${url()}/api/mutation`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ path: 'faults:addBatch', args: { tag } }),
        });
        const body = (await response.json()) as any;
        if (response.status === 200) outcome.acknowledged.add(tag);
        else outcome.failed.set(tag, body.error?.code ?? `status ${response.status}`);
      } catch {
        // No answer at all (the server is gone): neither acknowledged nor known to have failed.
        await sleep(20);
      }
    }
  };
  return { done: Promise.all(Array.from({ length: workers }, (_, index) => worker(index))).then(() => {}), outcome };
}

/** Every batch in the database, by tag, with how many of its three notes are there. */
async function batchesIn(url: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT ${fieldText('text')} AS tag, count(*)::int AS notes FROM notes WHERE ${fieldText('text')} LIKE 'batch-%' GROUP BY 1`,
    );
    return new Map(rows.map((row) => [row.tag, row.notes]));
  } finally {
    await client.end();
  }
}

function checkBatches(stored: Map<string, number>, outcome: Outcome) {
  const partial = [...stored].filter(([, notes]) => notes !== 3);
  assert.deepEqual(partial, [], 'no mutation is there in part');
  const lost = [...outcome.acknowledged].filter((tag) => !stored.has(tag));
  assert.deepEqual(lost, [], 'every acknowledged mutation is there');
  const ghosts = [...outcome.failed.keys()].filter((tag) => stored.has(tag));
  assert.deepEqual(ghosts, [], 'no mutation that failed is there');
}

describe('faults', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  test('Postgres stopped and restarted under load: UNAVAILABLE meanwhile, then everything heals', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'convoy-faults-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const quiet = () => {};
    let postgres: EmbeddedDatabase = await startEmbedded(dir, quiet);
    cleanups.push(() => postgres.stop());
    const setup = new pg.Client({ connectionString: postgres.url });
    await setup.connect();
    await createExistingTables({ query: (text: string) => setup.query(text).then((result) => result.rows) } as any);
    await setup.end();

    const server: ConvoyServer = await startConvoy({ appDir, databaseUrl: postgres.url, port: 0, log: quiet });
    cleanups.push(() => server.stop());
    const subscribers = Array.from({ length: 3 }, () => new ConvoyClient(server.url));
    cleanups.push(async () => {
      for (const subscriber of subscribers) subscriber.close();
    });
    const seen = subscribers.map(() => ({ value: -1 }));
    subscribers.forEach((subscriber, index) => {
      subscriber.subscribe({ path: 'faults:batches' } as any, {}, (value) => {
        seen[index]!.value = value as number;
      });
    });

    let loading = true;
    const { done, outcome } = load(
      () => server.url,
      () => loading,
    );
    await sleep(1_500);
    const beforeOutage = outcome.acknowledged.size;
    await postgres.stop();
    const failedBefore = outcome.failed.size;
    await sleep(2_000);
    const failedDuringOutage = outcome.failed.size - failedBefore;
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 503, '/health says the database is away');
    // The caller learns it may retry, not where the database lives (the server log has that).
    const during = await fetch(`${server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'notes:list', args: {} }),
    });
    const refusal = (await during.json()) as any;
    assert.equal(refusal.error?.code, 'UNAVAILABLE', JSON.stringify(refusal));
    assert.doesNotMatch(refusal.error.message, new RegExp(`:${new URL(postgres.url).port}\\b`));
    postgres = await startEmbedded(dir, quiet);
    const restartedAt = Date.now();
    // The load goes on until the pool has healed and mutations succeed again.
    while (Date.now() - restartedAt < 15_000) {
      const count = outcome.acknowledged.size;
      await sleep(500);
      if (outcome.acknowledged.size > count + 5) break;
    }
    loading = false;
    await done;

    const codes = new Set(outcome.failed.values());
    assert.deepEqual([...codes], ['UNAVAILABLE'], `failures are UNAVAILABLE only, never INTERNAL (${[...codes]})`);
    assert.ok(beforeOutage > 0, 'mutations succeeded before the outage');
    assert.ok(failedDuringOutage > 0, 'mutations failed while Postgres was down');
    assert.ok(outcome.acknowledged.size > beforeOutage, 'mutations succeed again after the restart');
    checkBatches(await batchesIn(postgres.url), outcome);

    // Every subscriber converges on what a fresh query says.
    const fresh = await fetch(`${server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'faults:batches', args: {} }),
    });
    const expected = ((await fresh.json()) as any).value;
    assert.equal(expected, outcome.acknowledged.size);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && seen.some((each) => each.value !== expected)) await sleep(100);
    assert.deepEqual(
      seen.map((each) => each.value),
      seen.map(() => expected),
      'every subscriber shows the fresh value',
    );
    console.log(
      `faults: ${outcome.acknowledged.size} acknowledged, ${outcome.failed.size} failed (UNAVAILABLE), ` +
        `subscribers converged ${Date.now() - restartedAt} ms after the restart`,
    );
  });

  test('the server killed with SIGKILL mid-load leaves every mutation whole or absent', async () => {
    const database: TestDatabase = await createDatabase();
    cleanups.push(() => database.drop());
    await createExistingTables(database);
    const serve = (): Running =>
      start('node', [path.join(here, 'fixtures', 'serve.mjs'), appDir, database.url], { cwd: here, env: process.env });
    const waitForUrl = async (running: Running) => {
      for (let waited = 0; waited < 30_000; waited += 50) {
        const match = /listening (\S+)/.exec(running.output());
        if (match) return match[1]!;
        await sleep(50);
      }
      throw new Error(`the server did not start: ${running.output()}`);
    };

    let server = serve();
    cleanups.push(() => server.stop('SIGKILL'));
    let url = await waitForUrl(server);
    let loading = true;
    const { done, outcome } = load(
      () => url,
      () => loading,
      6,
    );
    while (outcome.acknowledged.size < 30) await sleep(20);
    // Mid-load: some mutations are in flight, inside their transactions.
    server.child.kill('SIGKILL');
    await server.stop('SIGKILL');
    loading = false;
    await done;

    checkBatches(await batchesIn(database.url), outcome);
    // On the same database a new process serves at once.
    server = serve();
    url = await waitForUrl(server);
    const answer = await fetch(`${url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'faults:addBatch', args: { tag: 'batch-after-restart' } }),
    });
    assert.equal(answer.status, 200);
    assert.equal((await batchesIn(database.url)).get('batch-after-restart'), 3);
    console.log(`faults: SIGKILL after ${outcome.acknowledged.size} acknowledged mutations; none partial`);
  });
});
