/**
 * What 1,000 failing subscriptions cost unrelated mutations (issue 15, finding 3): the p50 of
 * `notes:add` on the behaviour-app fixture, in blocks ordered A B B A, (A) with no subscriptions
 * and (B) with 1,000 subscriptions whose args their query refuses (10 streams × 100) open.
 *
 *   node bench/failing-subscriptions.mjs [--mutations 300]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConvoyClient } from '../dist/client/index.js';
import { startConvoy } from '../dist/server/runtime.js';
import { describeMachine, gitCommit, writeResults } from './measure.mjs';
import { postgresUrl } from './seed.mjs';

const { values: options } = parseArgs({ options: { mutations: { type: 'string', default: '300' } } });
const MUTATIONS = Number(options.mutations);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const appDir = path.join(root, '__test__', 'fixtures', 'behaviour-app');
const DATABASE = 'convoy_bench_failing_subscriptions';

const admin = new pg.Client({ connectionString: postgresUrl });
await admin.connect();
await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
await admin.query(`CREATE DATABASE ${DATABASE}`);
const databaseUrl = postgresUrl.replace(/\/[^/]*$/, `/${DATABASE}`);
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query(
  'CREATE TABLE events (id serial PRIMARY KEY, event text NOT NULL, at timestamptz NOT NULL DEFAULT now())',
);
const postgresVersion = (await db.query('SHOW server_version')).rows[0].server_version;
const server = await startConvoy({ appDir, databaseUrl, port: 0, log: () => {} });

const p50 = (samples) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)];
async function block(label) {
  const samples = [];
  for (let i = 0; i < MUTATIONS; i++) {
    const started = performance.now();
    const response = await fetch(`${server.url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'notes:add', args: { text: `${label} ${i}` } }),
    });
    await response.json();
    samples.push(performance.now() - started);
  }
  return Math.round(p50(samples) * 100) / 100;
}

const blocks = { without: [], with: [] };
let clients = [];
try {
  await block('warm-up');
  for (const failing of [false, true, true, false]) {
    if (failing && clients.length === 0) {
      let errors = 0;
      clients = Array.from({ length: 10 }, () => new ConvoyClient(server.url));
      clients.forEach((client, c) => {
        for (let i = 0; i < 100; i++) {
          client.subscribe(
            { path: 'limits:wait' },
            { ms: `not a number ${c}-${i}` },
            () => {},
            () => errors++,
          );
        }
      });
      while (errors < 1000) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (!failing && clients.length > 0) {
      for (const client of clients) client.close();
      clients = [];
    }
    blocks[failing ? 'with' : 'without'].push(await block(failing ? 'with' : 'without'));
    console.log(
      `bench: ${failing ? 'with' : 'without'} 1,000 failing subscriptions: p50 ${blocks[failing ? 'with' : 'without'].at(-1)} ms`,
    );
  }
} finally {
  for (const client of clients) client.close();
  await server.stop();
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin.end();
}
const mean = (list) => list.reduce((sum, value) => sum + value, 0) / list.length;
const report = {
  benchmark: 'unrelated mutations with and without 1,000 failing subscriptions (issue 15, finding 3)',
  date: new Date().toISOString(),
  commit: gitCommit(),
  machine: describeMachine(postgresVersion),
  workload: `${MUTATIONS} sequential notes:add per block, blocks A B B A, in-process server (dist/)`,
  target: 'p50 moves by less than 20 %',
  p50Ms: blocks,
  change: Math.round((mean(blocks.with) / mean(blocks.without) - 1) * 1000) / 10,
};
console.log(JSON.stringify(report.p50Ms), `change ${report.change} %`);
console.log(`written to ${writeResults('failing-subscriptions-latest.json', report)}`);
