/**
 * Writes made outside Convoy (docs/benchmarks.md § Writes from outside Convoy, issue 14), against
 * the production server of bench/app on the seeded database, in one run:
 *
 *  1. latency: 1,000 live `listProjects` of 1,000 other users (10 streams × 100) and one of user
 *     X; then, in blocks ordered A B B A, (A) a plain `INSERT` of one of X's projects through `pg`,
 *     as another service writes, and (B) the same insert as a `createProject` mutation through
 *     Convoy; each timed from issuing the write to X's subscriber seeing the new row. The server's
 *     query runs (`/metrics`) around each block show whether the other 1,000 queries re-ran.
 *  2. the writer's cost: the external writer's own insert throughput (4 `pg` connections, one row
 *     per statement, as fast as they go) with the change triggers installed and dropped, and
 *     Convoy's own `createProject` throughput in the same rounds, in the order on, off, off, on.
 *
 *   node bench/external.mjs [--samples 400] [--others 1000] [--per-stream 100] [--seconds 8]
 *                           [--writers 4] [--connections 50] [--pace 25]
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConvoyClient } from '../dist/client/index.js';
import { readCpu } from './cpu.mjs';
import { describeMachine, gitCommit, isClean, loadMutations, summarize, writeResults } from './measure.mjs';
import { seed } from './seed.mjs';
import { benchApp, convoyCli, startServer } from './servers.mjs';

const RESULTS_FILE = 'external-latest.json';
const TRIGGERS = ['convoy_notify_insert', 'convoy_notify_update', 'convoy_notify_delete', 'convoy_notify_truncate'];
const TARGETS = { p50Ms: 13, p99Ms: 20, writerRatio: 0.8 };

const { values: options } = parseArgs({
  options: {
    samples: { type: 'string', default: '400' },
    others: { type: 'string', default: '1000' },
    'per-stream': { type: 'string', default: '100' },
    seconds: { type: 'string', default: '8' },
    writers: { type: 'string', default: '4' },
    connections: { type: 'string', default: '50' },
    pace: { type: 'string', default: '25' },
  },
});
const SAMPLES = Number(options.samples); // per kind of write
const OTHERS = Number(options.others);
const PER_STREAM = Number(options['per-stream']);
const SECONDS = Number(options.seconds);
const WRITERS = Number(options.writers);
const CONNECTIONS = Number(options.connections);
const PACE_MS = Number(options.pace);
const BLOCKS = 4; // A B B A
assert.ok(SAMPLES % 2 === 0 && SAMPLES >= 2, '--samples takes an even number');

const log = (message) => console.log(`bench: ${new Date().toISOString().slice(11, 19)} ${message}`);
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round2 = (value) => Math.round(value * 100) / 100;
const rssMiB = (pid) =>
  Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);
/**
 * The machine's busy CPU (all of /proc/stat) while a part of the run lasts, and how much of it was
 * neither the server, nor Postgres, nor this process: other work on the box, which spoils a
 * comparison. Calling what it returns gives both in cores.
 */
function watchMachine(serverPid) {
  const busy = () => {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) * 10_000;
  };
  const startedAt = performance.now();
  const busyBefore = busy();
  const selfBefore = process.cpuUsage();
  const spent = readCpu(serverPid);
  return () => {
    const elapsed = (performance.now() - startedAt) * 1000;
    const self = process.cpuUsage(selfBefore);
    const { server, postgres } = spent();
    const total = busy() - busyBefore;
    const other = total - (server ?? 0) - (postgres ?? 0) - self.user - self.system;
    return {
      busyCores: round2(total / elapsed),
      serverCores: round2((server ?? 0) / elapsed),
      postgresCores: round2((postgres ?? 0) / elapsed),
      benchCores: round2((self.user + self.system) / elapsed),
      otherCores: round2(Math.max(0, other) / elapsed),
    };
  };
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
function latencySummary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: round2(percentile(sorted, 50)),
    p90: round2(percentile(sorted, 90)),
    p99: round2(percentile(sorted, 99)),
    max: round2(sorted.at(-1)),
    mean: round2(sorted.reduce((sum, value) => sum + value, 0) / sorted.length),
  };
}
const listProjects = { path: 'projects:listProjects', kind: 'query' };
const projectData = (userId, name) => JSON.stringify({ name, userId, status: 'draft', createdAt: Date.now() });
const INSERT = 'INSERT INTO projects (id, data) VALUES ($1, $2::jsonb)';

async function metrics(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    queryRuns: read('convoy_function_executions_total\\{kind="query"\\}'),
    mutationRuns: read('convoy_function_executions_total\\{kind="mutation"\\}'),
  };
}

const commit = gitCommit();
log(`seeding (commit ${commit})`);
const databaseUrl = await seed();
const db = new pg.Client({ connectionString: databaseUrl, application_name: 'bench external writer' });
await db.connect();
const postgresVersion = (await db.query('SHOW server_version')).rows[0].server_version;
const users = (await db.query('SELECT id::text AS id FROM users ORDER BY random() LIMIT $1', [OTHERS + 201])).rows.map(
  (row) => row.id,
);
const [userX, ...rest] = users;
const others = rest.slice(0, OTHERS);
const unwatched = rest.slice(OTHERS); // the writer-cost rounds write for users nobody watches

log('starting the production server (convoy build and convoy migrate first)');
const server = await startServer('convoy-bench-app', databaseUrl);

async function triggersOnProjects() {
  const { rows } = await db.query(
    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'projects'::regclass AND NOT tgisinternal ORDER BY tgname",
  );
  return rows.map((row) => row.tgname);
}
async function setTriggers(on) {
  if (on) {
    if ((await triggersOnProjects()).length === TRIGGERS.length) return;
    convoyCli(benchApp, 'migrate', databaseUrl);
  } else {
    for (const trigger of TRIGGERS) await db.query(`DROP TRIGGER IF EXISTS ${trigger} ON projects`);
  }
  const installed = await triggersOnProjects();
  assert.deepEqual(
    installed,
    on ? [...TRIGGERS].sort() : [],
    `triggers on projects after turning them ${on ? 'on' : 'off'}`,
  );
}

const report = {
  benchmark: 'writes from outside Convoy (issue 14)',
  date: new Date().toISOString(),
  commit,
  machine: describeMachine(postgresVersion),
  targets: {
    externalToSubscriber: `p50 <= ${TARGETS.p50Ms} ms and p99 < ${TARGETS.p99Ms} ms with ${OTHERS} other subscriptions`,
    writerThroughput: `>= ${TARGETS.writerRatio}x with the triggers off`,
  },
};
const clients = [];
try {
  assert.deepEqual(await triggersOnProjects(), [...TRIGGERS].sort(), 'convoy migrate installed the change triggers');
  const rssStart = rssMiB(server.pid);

  // ---- 1: latency, external writes against Convoy's own ------------------------------------------
  log(`opening ${OTHERS} subscriptions of other users on ${Math.ceil(OTHERS / PER_STREAM)} streams, and one of X`);
  const otherCalls = new Map(); // userId → callbacks seen
  let firstValues = 0;
  for (let start = 0; start < others.length; start += PER_STREAM) {
    const client = new ConvoyClient(server.url);
    clients.push(client);
    for (const userId of others.slice(start, start + PER_STREAM)) {
      otherCalls.set(userId, 0);
      client.subscribe(listProjects, { userId }, () => {
        if (otherCalls.get(userId) === 0) firstValues++;
        otherCalls.set(userId, otherCalls.get(userId) + 1);
      });
    }
  }
  const subscriber = new ConvoyClient(server.url);
  clients.push(subscriber);
  let expecting = null; // { name, resolve }
  let latestX = null;
  let xCalls = 0;
  subscriber.subscribe(listProjects, { userId: userX }, (projects) => {
    xCalls++;
    latestX = projects;
    if (expecting && projects.some((project) => project.name === expecting.name)) {
      const { resolve } = expecting;
      expecting = null;
      resolve(performance.now());
    }
  });
  const openedAt = performance.now();
  while (firstValues < OTHERS || latestX === null) {
    if (performance.now() - openedAt > 120_000)
      throw new Error(`only ${firstValues} of ${OTHERS} subscriptions answered`);
    await settle(50);
  }
  await settle(1000);
  const rssOpen = rssMiB(server.pid);
  log(`open: ${firstValues + 1} subscriptions, RSS ${rssStart} → ${rssOpen} MiB`);

  const KINDS = {
    external: {
      label: 'INSERT through pg',
      write: (name) => db.query(INSERT, [randomUUID(), projectData(userX, name)]),
    },
    convoy: {
      label: 'createProject through Convoy',
      write: async (name) => {
        const response = await fetch(`${server.url}/api/mutation`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ path: 'projects:createProject', args: { userId: userX, name } }),
        });
        if (!response.ok) throw new Error(`createProject answered ${response.status}: ${await response.text()}`);
        await response.arrayBuffer();
      },
    },
  };
  const samples = { external: [], convoy: [] };
  const runs = { external: { writes: 0, queryRuns: 0 }, convoy: { writes: 0, queryRuns: 0 } };
  const perBlock = SAMPLES / 2;
  // A warm-up of each kind, not counted.
  for (const kind of ['external', 'convoy']) {
    for (let i = 0; i < 5; i++) {
      const name = `warm-${kind}-${i}`;
      const seen = new Promise((resolve) => {
        expecting = { name, resolve };
      });
      await KINDS[kind].write(name);
      await seen;
      await settle(PACE_MS);
    }
  }
  await settle(500);
  const otherCallsBefore = [...otherCalls.values()].reduce((sum, calls) => sum + calls, 0);
  const blockResults = [];
  for (const [block, kind] of ['external', 'convoy', 'convoy', 'external'].entries()) {
    log(`block ${block + 1}/${BLOCKS}: ${perBlock} × ${KINDS[kind].label}`);
    const before = await metrics(server);
    const machine = watchMachine(server.pid);
    const latencies = [];
    for (let i = 0; i < perBlock; i++) {
      const name = `live-${kind}-${block}-${i}`;
      let timeout;
      const seen = new Promise((resolve, reject) => {
        expecting = { name, resolve };
        timeout = setTimeout(() => reject(new Error(`${name}: the subscriber did not see it within 10 s`)), 10_000);
      });
      const sent = performance.now();
      await KINDS[kind].write(name);
      const arrived = await seen;
      clearTimeout(timeout);
      latencies.push(arrived - sent);
      // Paced, with a little jitter, so that one write's re-run is done before the next is issued.
      await settle(PACE_MS + Math.random() * PACE_MS);
    }
    await settle(300);
    const after = await metrics(server);
    const queryRuns = after.queryRuns - before.queryRuns;
    samples[kind].push(...latencies);
    runs[kind].writes += perBlock;
    runs[kind].queryRuns += queryRuns;
    blockResults.push({ kind, writes: perBlock, queryRuns, latencyMs: latencySummary(latencies), cpu: machine() });
    log(`  ${JSON.stringify(blockResults.at(-1))}`);
  }
  const otherCallsAfter = [...otherCalls.values()].reduce((sum, calls) => sum + calls, 0);
  const rssAfter = rssMiB(server.pid);
  // The subscriber's last answer must be the database's.
  await settle(300);
  const fresh = await (
    await fetch(`${server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'projects:listProjects', args: { userId: userX } }),
    })
  ).json();
  const liveMatchesFresh =
    JSON.stringify(latestX.map((project) => project._id)) === JSON.stringify(fresh.value.map((project) => project._id));
  const inTable = Number(
    (await db.query("SELECT count(*) AS n FROM projects WHERE data->>'userId' = $1", [userX])).rows[0].n,
  );

  report.latency = {
    workload: `${OTHERS} listProjects subscriptions of ${OTHERS} other users (${Math.ceil(OTHERS / PER_STREAM)} streams × ${PER_STREAM}) and one of user X; ${SAMPLES} inserts of X's projects per kind, one at a time, paced ${PACE_MS}–${2 * PACE_MS} ms apart, in blocks of ${perBlock} ordered A B B A`,
    external: {
      label: KINDS.external.label,
      latencyMs: latencySummary(samples.external),
      queryRunsPerWrite: round2(runs.external.queryRuns / runs.external.writes),
      meets: {
        p50: latencySummary(samples.external).p50 <= TARGETS.p50Ms,
        p99: latencySummary(samples.external).p99 < TARGETS.p99Ms,
      },
    },
    convoy: {
      label: KINDS.convoy.label,
      latencyMs: latencySummary(samples.convoy),
      queryRunsPerWrite: round2(runs.convoy.queryRuns / runs.convoy.writes),
    },
    blocks: blockResults,
    otherSubscriptions: {
      count: OTHERS,
      callbacksDuringSamples: otherCallsAfter - otherCallsBefore,
      queryRunsBeyondOnePerWrite:
        runs.external.queryRuns + runs.convoy.queryRuns - runs.external.writes - runs.convoy.writes,
    },
    subscriber: { callbacks: xCalls, rows: latestX.length, rowsInTable: inTable, liveMatchesFresh },
    serverRssMiB: { start: rssStart, subscriptionsOpen: rssOpen, afterSamples: rssAfter },
  };
  log(`latency: ${JSON.stringify({ external: report.latency.external, convoy: report.latency.convoy })}`);

  // ---- 2: the writer's cost -------------------------------------------------------------------
  const writers = [];
  for (let i = 0; i < WRITERS; i++) {
    const writer = new pg.Client({ connectionString: databaseUrl, application_name: `bench external writer ${i}` });
    await writer.connect();
    writers.push(writer);
  }
  let writeCount = 0;
  let externalInserted = 0;
  async function externalWriter(seconds) {
    const stopAt = performance.now() + seconds * 1000;
    const latencies = [];
    let errors = 0;
    const startedAt = performance.now();
    await Promise.all(
      writers.map(async (writer) => {
        while (performance.now() < stopAt) {
          const userId = unwatched[writeCount++ % unwatched.length];
          const sent = performance.now();
          try {
            await writer.query({
              name: 'bench-insert',
              text: INSERT,
              values: [randomUUID(), projectData(userId, 'ext-writer')],
            });
            latencies.push(performance.now() - sent);
            externalInserted++;
          } catch (error) {
            errors++;
            if (errors === 1) log(`  writer error: ${error.message}`);
          }
        }
      }),
    );
    const elapsed = (performance.now() - startedAt) / 1000;
    return {
      inserts: latencies.length,
      seconds: round2(elapsed),
      insertsPerSecond: Math.round(latencies.length / elapsed),
      latencyMs: latencySummary(latencies),
      errors,
      latencies,
    };
  }
  let mutationCount = 0;
  let convoyInserted = 0;
  const convoyWriter = async (seconds) => {
    const result = await loadMutations(server, {
      connections: CONNECTIONS,
      seconds,
      body: () =>
        JSON.stringify({
          path: 'projects:createProject',
          args: { userId: unwatched[mutationCount++ % unwatched.length], name: 'convoy-writer' },
        }),
    });
    convoyInserted += result['2xx'];
    return result;
  };

  log('writer cost: warming up both writers with the triggers on');
  await externalWriter(2);
  await convoyWriter(2);
  const order = [true, false, false, true];
  const rounds = { on: { external: [], convoy: [] }, off: { external: [], convoy: [] } };
  const cpu = { on: { external: [], convoy: [] }, off: { external: [], convoy: [] } };
  const writerQueryRuns = { on: 0, off: 0 };
  const roundsCpu = [];
  for (const [index, on] of order.entries()) {
    const state = on ? 'on' : 'off';
    await setTriggers(on);
    await db.query('CHECKPOINT');
    await settle(1000);
    const before = await metrics(server);
    log(`writer round ${index + 1}/${order.length}, triggers ${state}: pg, ${WRITERS} connections, ${SECONDS} s`);
    let spent = readCpu(server.pid);
    let machine = watchMachine(server.pid);
    const external = await externalWriter(SECONDS);
    cpu[state].external.push({ ...spent(), inserts: external.inserts });
    external.cpu = machine();
    rounds[state].external.push(external);
    log(`  ${JSON.stringify({ ...external, latencies: undefined })}`);
    await settle(1000);
    log(
      `writer round ${index + 1}/${order.length}, triggers ${state}: createProject, ${CONNECTIONS} connections, ${SECONDS} s`,
    );
    spent = readCpu(server.pid);
    machine = watchMachine(server.pid);
    const convoy = await convoyWriter(SECONDS);
    cpu[state].convoy.push({ ...spent(), inserts: convoy['2xx'] });
    const convoyCpu = machine();
    rounds[state].convoy.push(convoy);
    log(`  createProject ${Math.round(convoy['2xx'] / convoy.duration)}/s ${JSON.stringify(convoyCpu)}`);
    roundsCpu.push({ triggers: state, writer: 'createProject', ...convoyCpu });
    roundsCpu.push({ triggers: state, writer: 'pg', ...external.cpu });
    await settle(500);
    writerQueryRuns[state] += (await metrics(server)).queryRuns - before.queryRuns;
  }
  await setTriggers(true);
  for (const writer of writers) await writer.end();

  const perInsertCpu = (list) => {
    const inserts = list.reduce((sum, one) => sum + one.inserts, 0);
    const part = (key) => {
      const micros = Math.round(list.reduce((sum, one) => sum + (one[key] ?? Number.NaN), 0) / inserts);
      return Number.isFinite(micros) ? micros : null;
    };
    return { server: part('server'), postgres: part('postgres') };
  };
  const externalSummary = (list) => {
    const inserts = list.reduce((sum, one) => sum + one.inserts, 0);
    const seconds = list.reduce((sum, one) => sum + one.seconds, 0);
    return {
      insertsPerSecond: Math.round(inserts / seconds),
      rounds: list.map((one) => one.insertsPerSecond),
      cpu: list.map((one) => one.cpu),
      latencyMs: latencySummary(list.flatMap((one) => one.latencies)),
      errors: list.reduce((sum, one) => sum + one.errors, 0),
    };
  };
  const external = { on: externalSummary(rounds.on.external), off: externalSummary(rounds.off.external) };
  const convoy = { on: summarize(server, rounds.on.convoy), off: summarize(server, rounds.off.convoy) };
  const written = await db.query(
    "SELECT data->>'name' AS name, count(*)::int AS n FROM projects WHERE data->>'name' IN ('ext-writer', 'convoy-writer') GROUP BY 1",
  );
  const writtenBy = Object.fromEntries(written.rows.map((row) => [row.name, row.n]));
  report.writerCost = {
    workload: `rounds of ${SECONDS} s in the order triggers on, off, off, on (dropped with DROP TRIGGER, reinstalled by convoy migrate); each round: ${WRITERS} pg connections inserting one project per statement (a prepared INSERT, autocommit) for users nobody watches, then createProject through Convoy with autocannon, ${CONNECTIONS} connections; the ${OTHERS + 1} subscriptions stay open`,
    external: {
      ...external,
      ratio: round2(external.on.insertsPerSecond / external.off.insertsPerSecond),
      meets: external.on.insertsPerSecond / external.off.insertsPerSecond >= TARGETS.writerRatio,
      cpuMicrosPerInsert: { on: perInsertCpu(cpu.on.external), off: perInsertCpu(cpu.off.external) },
    },
    convoy: {
      on: { ...convoy.on, clean: isClean(convoy.on) },
      off: { ...convoy.off, clean: isClean(convoy.off) },
      ratio: round2(convoy.on.requestsPerSecond / convoy.off.requestsPerSecond),
      cpuMicrosPerInsert: { on: perInsertCpu(cpu.on.convoy), off: perInsertCpu(cpu.off.convoy) },
    },
    queryRunsDuringRounds: writerQueryRuns,
    cpuByRound: roundsCpu,
    rowsWritten: {
      pg: { acknowledged: externalInserted, inTable: writtenBy['ext-writer'] ?? 0 },
      // autocannon stops counting when a round's time is up: a call still in flight then may
      // have written its row unacknowledged, at most one per connection and run.
      createProject: {
        acknowledged: convoyInserted,
        inTable: writtenBy['convoy-writer'] ?? 0,
        inFlightAtMost: CONNECTIONS * (order.length + 1),
      },
    },
  };
  log(
    `writer cost: pg ${external.on.insertsPerSecond}/s on vs ${external.off.insertsPerSecond}/s off (${report.writerCost.external.ratio}x); createProject ${convoy.on.requestsPerSecond}/s on vs ${convoy.off.requestsPerSecond}/s off (${report.writerCost.convoy.ratio}x)`,
  );
  report.serverRssMiBAtEnd = rssMiB(server.pid);
} finally {
  for (const client of clients) client.close();
  await server.stop();
  await db.end();
}

const file = writeResults(RESULTS_FILE, report);
console.log(`written to ${file}`);
