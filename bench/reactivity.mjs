/**
 * The live-query benchmarks (docs/benchmarks.md § Live queries), against the production server of
 * bench/app on the seeded database:
 *
 *  1. commit-to-event latency with 10,000 open subscriptions of distinct users on one process;
 *  2. fanout: one query subscribed by 1,000 clients (1,000 streams), one write;
 *  3. memory per idle subscription (the server's RSS before and after the 10,000);
 *  4. a query someone subscribes to, called over HTTP again and again: answered from the live
 *     result without touching Postgres, against pgbench running the same SELECT.
 *
 *   node bench/reactivity.mjs [--subscriptions 10000] [--fanout 1000] [--writes 300]
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { ConvoyClient } from '../dist/client/index.js';
import { seed } from './seed.mjs';
import { startServer } from './servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    subscriptions: { type: 'string', default: '10000' },
    fanout: { type: 'string', default: '1000' },
    writes: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '8' },
  },
});
const SUBSCRIPTIONS = Number(options.subscriptions);
const FANOUT = Number(options.fanout);
const WRITES = Number(options.writes);
const PER_STREAM = 1000; // the server's limit per stream
const log = (message) => console.log(`bench: ${message}`);
const listProjects = { path: 'projects:listProjects', kind: 'query' };

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const metric = async (server, name) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const summary = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (ms) => Math.round(ms * 10) / 10;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1)),
  };
};
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function createProject(server, userId, name) {
  const response = await fetch(`${server.url}/api/mutation`, {
    method: 'POST',
    body: JSON.stringify({ path: 'projects:createProject', args: { userId, name } }),
  });
  if (!response.ok) throw new Error(`createProject answered ${response.status}: ${await response.text()}`);
}

log('seeding');
const databaseUrl = await seed();
const server = await startServer('convoy-bench-app', databaseUrl);
const results = { date: new Date().toISOString(), machine: { cpus: os.cpus().length, node: process.version } };
try {
  // ---- 1 and 3: 10,000 subscriptions of distinct users, then single writes ----------------------
  await settle(500);
  const rssBefore = rssKiB(server.pid);
  log(`opening ${SUBSCRIPTIONS} subscriptions of distinct users on ${Math.ceil(SUBSCRIPTIONS / PER_STREAM)} streams`);
  const users = Array.from({ length: SUBSCRIPTIONS }, () => randomUUID());
  const waiting = new Map(); // userId → resolve, for the write under way
  const clients = [];
  let firstValues = 0;
  const opened = performance.now();
  for (let start = 0; start < users.length; start += PER_STREAM) {
    const client = new ConvoyClient(server.url);
    clients.push(client);
    for (const userId of users.slice(start, start + PER_STREAM)) {
      let seen = -1;
      client.subscribe(listProjects, { userId }, (projects) => {
        if (seen === -1) firstValues++;
        if (projects.length > seen && seen !== -1) waiting.get(userId)?.(performance.now());
        seen = projects.length;
      });
    }
  }
  while (firstValues < SUBSCRIPTIONS) await settle(50);
  const openSeconds = (performance.now() - opened) / 1000;
  await settle(1000);
  const rssAfter = rssKiB(server.pid);
  results.idleMemory = {
    subscriptions: SUBSCRIPTIONS,
    rssBeforeMiB: Math.round(rssBefore / 1024),
    rssAfterMiB: Math.round(rssAfter / 1024),
    perSubscriptionKiB: Math.round(((rssAfter - rssBefore) / SUBSCRIPTIONS) * 10) / 10,
    secondsToOpen: Math.round(openSeconds * 10) / 10,
  };
  log(`memory: ${JSON.stringify(results.idleMemory)}`);

  log(`${WRITES} writes, one at a time, each to a random subscribed user`);
  const executionsBefore = await metric(server, 'convoy_function_executions_total\\{kind="query"\\}');
  const latencies = [];
  for (let i = 0; i < WRITES; i++) {
    const userId = users[Math.floor(Math.random() * users.length)];
    const arrived = new Promise((resolve) => waiting.set(userId, resolve));
    const sent = performance.now();
    await createProject(server, userId, `live-${i}`);
    latencies.push((await arrived) - sent);
    waiting.delete(userId);
  }
  const executions = (await metric(server, 'convoy_function_executions_total\\{kind="query"\\}')) - executionsBefore;
  results.commitToEvent = {
    openSubscriptions: SUBSCRIPTIONS,
    latencyMs: summary(latencies),
    queryRunsPerWrite: Math.round((executions / WRITES) * 100) / 100,
    target: 'p99 < 20 ms',
  };
  log(`commit to event: ${JSON.stringify(results.commitToEvent)}`);
  for (const client of clients) client.close();
  await settle(1000);

  // ---- 2: one query, 1,000 streams, one write --------------------------------------------------
  log(`fanout: ${FANOUT} clients, each with its own stream, on one query`);
  const shared = randomUUID();
  const fans = Array.from({ length: FANOUT }, () => new ConvoyClient(server.url));
  const arrivals = [];
  let ready = 0;
  let sentAt = 0;
  for (const fan of fans) {
    let first = true;
    fan.subscribe(listProjects, { userId: shared }, (projects) => {
      if (first) {
        first = false;
        ready++;
      } else if (projects.length > 0) arrivals.push(performance.now() - sentAt);
    });
  }
  while (ready < FANOUT) await settle(50);
  await settle(500);
  const fanoutRunsBefore = await metric(server, 'convoy_function_executions_total\\{kind="query"\\}');
  sentAt = performance.now();
  await createProject(server, shared, 'for everyone');
  while (arrivals.length < FANOUT && performance.now() - sentAt < 10_000) await settle(5);
  const fanoutRuns = (await metric(server, 'convoy_function_executions_total\\{kind="query"\\}')) - fanoutRunsBefore;
  results.fanout = {
    clients: FANOUT,
    updated: arrivals.length,
    queryRuns: fanoutRuns,
    latencyMs: summary(arrivals),
    target: 'one run, all updated, p99 < 100 ms',
  };
  log(`fanout: ${JSON.stringify(results.fanout)}`);
  for (const fan of fans) fan.close();
  await settle(1000);

  // ---- 4: repeated identical queries from the live result, against pgbench ---------------------
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const [{ id: userId }] = (await db.query('SELECT id FROM users LIMIT 1')).rows;
  await db.end();
  const seconds = Number(options.seconds);
  log(`repeated listProjects of one subscribed user over HTTP, 50 connections, ${seconds} s`);
  const watcher = new ConvoyClient(server.url);
  await new Promise((resolve) => watcher.subscribe(listProjects, { userId }, resolve));
  await settle(500);
  const servedBefore = await metric(server, 'convoy_queries_served_live_total');
  const body = JSON.stringify({ path: 'projects:listProjects', args: { userId } });
  const load = await autocannon({
    url: `${server.url}/api/query`,
    method: 'POST',
    body,
    connections: 50,
    duration: seconds,
    verifyBody: (text) => text.startsWith('{"value":[{'),
  });
  const served = (await metric(server, 'convoy_queries_served_live_total')) - servedBefore;
  watcher.close();
  log(`pgbench: the same SELECT, prepared, 8 clients, ${seconds} s`);
  const script = path.join(mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-')), 'select.sql');
  writeFileSync(
    script,
    `SELECT id, data, created_at FROM "projects" WHERE (data->'userId') = '${JSON.stringify(userId)}'::jsonb ORDER BY (data->'createdAt') DESC, id DESC;\n`,
  );
  const pgbench = spawnSync(
    'pgbench',
    ['-n', '-M', 'prepared', '-c', '8', '-j', '2', '-T', String(seconds), '-f', script, databaseUrl],
    {
      encoding: 'utf8',
    },
  );
  const pgbenchTps = Number(/tps = ([\d.]+)/.exec(pgbench.stdout ?? '')?.[1] ?? Number.NaN);
  results.liveCache = {
    convoyRequestsPerSecond: Math.round(load.requests.average),
    latencyMs: { p50: load.latency.p50, p99: load.latency.p99 },
    non2xx: load.non2xx,
    answeredFromLiveResult: served,
    answered: load['2xx'],
    pgbenchTps: Math.round(pgbenchTps),
    ratio: Math.round((load.requests.average / pgbenchTps) * 100) / 100,
    target: 'above pgbench on the same SELECT',
    pgbenchError: pgbench.status === 0 ? undefined : `${pgbench.error?.message ?? ''}${pgbench.stderr ?? ''}`.trim(),
  };
  log(`live cache: ${JSON.stringify(results.liveCache)}`);
} finally {
  await server.stop();
}

const file = path.join(here, 'results', 'reactivity.json');
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`written to ${path.relative(process.cwd(), file)}`);
