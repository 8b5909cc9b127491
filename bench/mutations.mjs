/**
 * The mutation benchmarks (docs/benchmarks.md): PRODUCT.md's `createProject` insert, and a
 * read-modify-write of one of 1,000 counters, each served by Convoy and by the hand-written
 * server in the same run. Every write is checked at the end: the rows and counter totals in
 * Postgres must equal the number of successful answers, so a lost or doubled write shows.
 *
 *   node bench/mutations.mjs [--seconds 16] [--connections 50]
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { readCpu } from './cpu.mjs';
import { loadMutations } from './measure.mjs';
import { seed } from './seed.mjs';
import { startServer } from './servers.mjs';

const TARGET_RATIO = 1.3;
const COUNTERS = 1000;
const WARM_UP_SECONDS = 2;
const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: { seconds: { type: 'string', default: '16' }, connections: { type: 'string', default: '50' } },
});
const connections = Number(options.connections);
const secondsPerRound = Number(options.seconds) / 2;

const log = (message) => console.log(`bench: ${message}`);

log('seeding');
const databaseUrl = await seed();
const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const userIds = (await db.query('SELECT id FROM users ORDER BY random() LIMIT 200')).rows.map((row) => row.id);

// Convoy first: its schema sync creates the counters table and its index.
log('starting Convoy and the hand-written server');
const convoy = await startServer('convoy-bench-app', databaseUrl);
const handwritten = await startServer('handwritten', databaseUrl);
// Each server gets counters and project names of its own, so each one's writes can be counted.
// The hand-written server's read-modify-write comes twice: as most people write it (SELECT … FOR
// UPDATE, which is right for this handler only), and with the guarantee Convoy gives every
// handler (serializable, re-run on conflict).
const servers = [
  { ...handwritten, name: 'handwritten', tag: 'hw', increment: 'counters:increment' },
  {
    ...handwritten,
    name: 'handwrittenSerializable',
    label: 'hand-written, serializable',
    tag: 'hs',
    increment: 'counters:incrementSerializable',
  },
  { ...convoy, name: 'convoy', tag: 'cv', increment: 'counters:increment' },
];
for (const server of servers) {
  await db.query(
    `INSERT INTO counters (id, data) SELECT gen_random_uuid(), jsonb_build_object('name', $1 || n, 'value', 0)
     FROM generate_series(0, ${COUNTERS - 1}) n`,
    [server.tag],
  );
}

const WORKLOADS = {
  insert: {
    label: 'insert (createProject)',
    servers: ['handwritten', 'convoy'],
    body: (server, i) =>
      JSON.stringify({
        path: 'projects:createProject',
        args: { userId: userIds[i % userIds.length], name: `bench-${server.tag}` },
      }),
    written: async (server) =>
      (await db.query("SELECT count(*)::int AS n FROM projects WHERE data->>'name' = $1", [`bench-${server.tag}`]))
        .rows[0].n,
  },
  rmw: {
    label: 'read-modify-write (increment)',
    servers: ['handwritten', 'handwrittenSerializable', 'convoy'],
    body: (server) =>
      JSON.stringify({
        path: server.increment,
        args: { name: `${server.tag}${Math.floor(Math.random() * COUNTERS)}` },
      }),
    written: async (server) =>
      (
        await db.query(
          "SELECT coalesce(sum((data->>'value')::int), 0)::int AS n FROM counters WHERE data->>'name' LIKE $1",
          [`${server.tag}%`],
        )
      ).rows[0].n,
  },
};

function load(server, workload, seconds) {
  return loadMutations(server, { body: (i) => workload.body(server, i), connections, seconds });
}

/** Convoy's count of mutations that conflicted in Postgres and ran again (GET /metrics). */
async function conflictsRetried() {
  const metrics = await (await fetch(`${convoy.url}/metrics`)).text();
  return Number(/^convoy_mutation_conflicts_retried_total (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
}

const results = {};
let clean = true;
try {
  for (const [key, workload] of Object.entries(WORKLOADS)) {
    const measured = servers.filter((server) => workload.servers.includes(server.name));
    const answered = new Map(measured.map((server) => [server, 0]));
    const runs = new Map(measured.map((server) => [server, 0]));
    const rounds = new Map(measured.map((server) => [server, []]));
    const cpu = new Map(measured.map((server) => [server, { server: 0, postgres: 0, requests: 0 }]));
    const count = (server, result) => {
      answered.set(server, answered.get(server) + result['2xx']);
      runs.set(server, runs.get(server) + 1);
    };
    const retriedBefore = await conflictsRetried();
    for (const server of measured) {
      log(`${workload.label}: warming up ${server.label}`);
      count(server, await load(server, workload, WARM_UP_SECONDS));
    }
    // A B C C B A, so drift during the run falls on every server alike.
    for (const server of [...measured, ...[...measured].reverse()]) {
      log(`${workload.label}: ${server.label}, ${connections} connections, ${secondsPerRound} s`);
      const cpuSpent = readCpu(server.pid);
      const result = await load(server, workload, secondsPerRound);
      const used = cpuSpent();
      const spent = cpu.get(server);
      spent.server += used.server ?? Number.NaN;
      spent.postgres += used.postgres ?? Number.NaN;
      spent.requests += result['2xx'];
      count(server, result);
      rounds.get(server).push(result);
    }
    results[key] = { convoyConflictsRetried: (await conflictsRetried()) - retriedBefore };
    for (const server of measured) {
      const all = autocannon.aggregateResult(rounds.get(server), { url: server.url });
      const seconds = rounds.get(server).reduce((sum, round) => sum + round.duration, 0);
      const ok = rounds.get(server).reduce((sum, round) => sum + round['2xx'], 0);
      const written = await workload.written(server);
      const summary = {
        requestsPerSecond: Math.round(ok / seconds),
        latencyMs: { p50: all.latency.p50, p97_5: all.latency.p97_5, p99: all.latency.p99, max: all.latency.max },
        // CPU time per answered request, in µs: the server's process and all of Postgres (null
        // where /proc cannot be read). The load generator takes the rest of the machine.
        cpuMicrosPerRequest: Object.fromEntries(
          ['server', 'postgres'].map((part) => {
            const spent = cpu.get(server);
            const micros = Math.round(spent[part] / spent.requests);
            return [part, Number.isFinite(micros) ? micros : null];
          }),
        ),
        errors: all.errors + all.timeouts,
        non2xx: all.non2xx,
        badBodies: all.mismatches,
        // Successful answers (warm-up included) against what Postgres holds. autocannon stops
        // counting at its deadline while the requests then in flight still commit, so Postgres
        // may hold up to one write per connection per run more; fewer would be a lost write.
        answered: answered.get(server),
        inFlightAtDeadlines: connections * runs.get(server),
        written,
      };
      const writesAddUp = written >= summary.answered && written <= summary.answered + summary.inFlightAtDeadlines;
      if (summary.errors + summary.non2xx + summary.badBodies > 0 || !writesAddUp) clean = false;
      results[key][server.name] = summary;
    }
    const ratio = (baseline) =>
      Math.round((results[key].convoy.requestsPerSecond / results[key][baseline].requestsPerSecond) * 100) / 100;
    results[key].ratio = ratio('handwritten');
    if (results[key].handwrittenSerializable) results[key].ratioToSerializable = ratio('handwrittenSerializable');
  }
} finally {
  await convoy.stop();
  await handwritten.stop();
  await db.end();
}

const report = {
  date: new Date().toISOString(),
  connections,
  secondsPerServer: secondsPerRound * 2,
  counters: COUNTERS,
  machine: { cpus: os.cpus().length, node: process.version },
  targetRatio: TARGET_RATIO,
  results,
};
mkdirSync(path.join(here, 'results'), { recursive: true });
const file = path.join(here, 'results', 'mutations.json');
writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
renameSync(`${file}.tmp`, file);

console.log(`\nmutations, ${connections} connections, ${secondsPerRound * 2} s per server`);
console.table(
  Object.entries(results).flatMap(([workload, byServer]) =>
    Object.keys(byServer)
      .filter((name) => typeof byServer[name] === 'object')
      .map((name) => ({
        workload,
        server: name,
        'req/s': byServer[name].requestsPerSecond.toLocaleString('en'),
        'p50 ms': byServer[name].latencyMs.p50,
        'p99 ms': byServer[name].latencyMs.p99,
        'CPU µs/req: server': byServer[name].cpuMicrosPerRequest.server,
        postgres: byServer[name].cpuMicrosPerRequest.postgres,
        'non-2xx': byServer[name].non2xx,
        'answered / written': `${byServer[name].answered} / ${byServer[name].written}`,
      })),
  ),
);
for (const [workload, byServer] of Object.entries(results)) {
  console.log(
    `${workload}: Convoy / hand-written ${byServer.ratio}× (target ≥ ${TARGET_RATIO}×: ${byServer.ratio >= TARGET_RATIO ? 'met' : 'MISSED'})${byServer.ratioToSerializable ? `, / hand-written serializable ${byServer.ratioToSerializable}×` : ''}; Convoy re-ran ${byServer.convoyConflictsRetried} conflicting mutations`,
  );
}
console.log(`written to ${path.relative(process.cwd(), file)}`);
if (!clean) {
  console.error('bench: errors, bad answers, or writes that do not match the answers');
  process.exitCode = 1;
}
