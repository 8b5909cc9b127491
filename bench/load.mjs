/**
 * The load test (docs/benchmarks.md § Load): the production server of bench/app on the seeded
 * database, for five minutes, under a steady mix of queries and mutations over HTTP while 1,000
 * sync streams stay open and receive the updates. It reports every error (there must be none),
 * latencies, and the server's RSS sampled every 10 s: memory must stay flat.
 *
 *   npm run bench:load                          # 300 s
 *   node bench/load.mjs --seconds 60 --rate 300 --streams 1000
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConvoyClient } from '../dist/client/index.js';
import { seed } from './seed.mjs';
import { startServer } from './servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    rate: { type: 'string', default: '300' },
    streams: { type: 'string', default: '1000' },
    'watched-users': { type: 'string', default: '100' },
  },
});
const SECONDS = Number(options.seconds);
const RATE = Number(options.rate); // requests per second, queries and mutations together
const STREAMS = Number(options.streams);
const WATCHED_USERS = Number(options['watched-users']);
const MUTATION_SHARE = 0.3;
/** Of the mutations, the share that goes to a user some stream watches (the rest: anyone). */
const WATCHED_SHARE = 0.2;
const SAMPLE_EVERY_MS = 10_000;
const WARM_UP_MS = 5_000;

const log = (message) => console.log(`bench: ${message}`);
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const listProjects = { path: 'projects:listProjects', kind: 'query' };

async function metrics(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { streams: value('convoy_sync_streams'), liveQueries: value('convoy_live_queries') };
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
  const round = (ms) => Math.round(ms * 10) / 10;
  return { n: sorted.length, p50: round(at(50)), p99: round(at(99)), max: round(sorted.at(-1) ?? Number.NaN) };
}

/** Least-squares slope of `points` ([seconds, MiB]), in MiB per minute. */
function slopePerMinute(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mean = (values) => values.reduce((sum, value) => sum + value, 0) / n;
  const mx = mean(points.map(([x]) => x));
  const my = mean(points.map(([, y]) => y));
  const sxy = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0);
  const sxx = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0);
  return Math.round((sxy / sxx) * 60 * 100) / 100;
}

log('seeding');
const databaseUrl = await seed();
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
const allUsers = (await db.query('SELECT id FROM users')).rows.map((row) => row.id);
await db.end();
const watched = allUsers.slice(0, WATCHED_USERS);
const server = await startServer('convoy-bench-app', databaseUrl);
const pick = (items) => items[Math.floor(Math.random() * items.length)];

const statuses = new Map();
const failures = [];
const latency = { query: [], mutation: [] };
const streamStats = { values: 0, errors: 0, disconnects: 0 };
const samples = [];
const clients = [];
let stopping = false;

try {
  log(`opening ${STREAMS} streams on ${WATCHED_USERS} users' projects`);
  let ready = 0;
  for (let index = 0; index < STREAMS; index++) {
    const client = new ConvoyClient(server.url);
    clients.push(client);
    let first = true;
    client.subscribe(
      listProjects,
      { userId: watched[index % watched.length] },
      () => {
        streamStats.values++;
        if (first) {
          first = false;
          ready++;
        }
      },
      (error) => {
        streamStats.errors++;
        if (failures.length < 20) failures.push(`stream: ${error.code} ${error.message}`);
      },
    );
    client.onConnectionStateChange((state) => {
      if (state === 'reconnecting' && !stopping) streamStats.disconnects++;
    });
  }
  while (ready < STREAMS) await settle(50);
  log(`${STREAMS} streams open; ${SECONDS} s of ${RATE} requests/s (${MUTATION_SHARE * 100}% mutations)`);

  const send = async (kind) => {
    const mutation = kind === 'mutation';
    const userId = mutation && Math.random() >= WATCHED_SHARE ? pick(allUsers) : pick(watched);
    const body = mutation
      ? { path: 'projects:createProject', args: { userId, name: `load ${Date.now()}` } }
      : { path: 'projects:listProjects', args: { userId: pick(allUsers) } };
    const started = performance.now();
    try {
      const response = await fetch(`${server.url}/api/${kind}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      latency[kind].push(performance.now() - started);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status !== 200 && failures.length < 20) failures.push(`${kind}: ${response.status}`);
    } catch (error) {
      statuses.set('no answer', (statuses.get('no answer') ?? 0) + 1);
      if (failures.length < 20) failures.push(`${kind}: ${error.message}`);
    }
  };

  const startedAt = performance.now();
  const inFlight = new Set();
  const sampler = setInterval(async () => {
    const at = (performance.now() - startedAt) / 1000;
    const sample = {
      seconds: Math.round(at),
      rssMiB: Math.round(rssMiB(server.pid) * 10) / 10,
      ...(await metrics(server)),
    };
    samples.push(sample);
    log(`t=${sample.seconds}s rss=${sample.rssMiB} MiB streams=${sample.streams} liveQueries=${sample.liveQueries}`);
  }, SAMPLE_EVERY_MS);
  // A fixed rate, ticked every 10 ms; a request that has not finished does not hold up the next.
  let due = 0;
  while (performance.now() - startedAt < SECONDS * 1000) {
    due += RATE / 100;
    for (; due >= 1; due--) {
      const request = send(Math.random() < MUTATION_SHARE ? 'mutation' : 'query');
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    await settle(10);
  }
  await Promise.all(inFlight);
  clearInterval(sampler);
  stopping = true;
  await settle(1000);

  const steady = samples.filter((sample) => sample.seconds * 1000 >= WARM_UP_MS);
  const first = steady[0] ?? samples[0];
  const last = samples.at(-1);
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version },
    workload: {
      seconds: SECONDS,
      ratePerSecond: RATE,
      mutationShare: MUTATION_SHARE,
      streams: STREAMS,
      watchedUsers: WATCHED_USERS,
    },
    requests: Object.fromEntries(statuses),
    achievedPerSecond: Math.round((latency.query.length + latency.mutation.length) / SECONDS),
    latencyMs: { query: summary(latency.query), mutation: summary(latency.mutation) },
    streams: streamStats,
    rss: {
      startMiB: first?.rssMiB,
      endMiB: last?.rssMiB,
      maxMiB: Math.max(...samples.map((sample) => sample.rssMiB)),
      slopeMiBPerMinute: slopePerMinute(steady.map((sample) => [sample.seconds, sample.rssMiB])),
    },
    samples,
    failures,
  };
  const file = path.join(here, 'results', 'load.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`requests: ${JSON.stringify(results.requests)}; latency ${JSON.stringify(results.latencyMs)}`);
  log(`streams: ${JSON.stringify(streamStats)}; rss ${JSON.stringify(results.rss)}`);
  console.log(`written to ${path.relative(process.cwd(), file)}`);
  const errors = failures.length + streamStats.errors + streamStats.disconnects;
  if (errors > 0) {
    console.error(`bench: ${errors} errors:\n${failures.join('\n')}`);
    process.exitCode = 1;
  }
} finally {
  for (const client of clients) client.close();
  await server.stop();
}
