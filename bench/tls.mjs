/**
 * What TLS to Postgres costs (docs/benchmarks.md): Convoy's production server serving
 * `listProjects` with `sslmode=disable` against the same server with `sslmode=require`, in one
 * run, on the same database, rounds in A B B A order. Target: TLS costs at most 10 % of the
 * throughput.
 *
 *   node bench/tls.mjs                    # writes bench/results/tls.json
 *   node bench/tls.mjs --seconds 30 --connections 50
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { assertSameAnswers, isClean, load, spotCheck, summarize } from './measure.mjs';
import { seed } from './seed.mjs';
import { startServer } from './servers.mjs';

const TARGET = { ratio: 0.9 };
const ROUNDS = 2;
const WARM_UP_SECONDS = 3;

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    seconds: { type: 'string', default: '16' },
    connections: { type: 'string', default: '50' },
  },
});
const connections = Number(options.connections);
const secondsPerRound = Number(options.seconds) / ROUNDS;

console.log('bench: seeding');
const databaseUrl = await seed();
const withSslMode = (mode) => {
  const url = new URL(databaseUrl);
  url.searchParams.set('sslmode', mode);
  return url.toString();
};
const userIds = await sampleUsers(databaseUrl);

const variants = [
  { name: 'plain', label: 'Convoy, sslmode=disable', url: withSslMode('disable') },
  { name: 'tls', label: 'Convoy, sslmode=require', url: withSslMode('require') },
];
const servers = [];
try {
  for (const variant of variants) {
    const server = await startServer('convoy', variant.url);
    servers.push(Object.assign(server, { name: variant.name, label: variant.label }));
  }
  const tlsUsed = await connectionsUseTls(databaseUrl);
  if (!tlsUsed.plain || !tlsUsed.tls)
    throw new Error(`expected plain and TLS connections, saw ${JSON.stringify(tlsUsed)}`);
  const answers = [];
  for (const server of servers) answers.push({ server, documents: await spotCheck(server, userIds.slice(0, 5)) });
  assertSameAnswers(answers[0], answers[1]);
  for (const server of servers) await load(server, { userIds, connections, seconds: WARM_UP_SECONDS });

  const rounds = new Map(servers.map((server) => [server, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      console.log(
        `bench: round ${round + 1}/${ROUNDS}: ${server.label}, ${connections} connections, ${secondsPerRound} s`,
      );
      rounds.get(server).push(await load(server, { userIds, connections, seconds: secondsPerRound }));
    }
  }
  const results = Object.fromEntries(servers.map((server) => [server.name, summarize(server, rounds.get(server))]));
  const ratio = Math.round((results.tls.requestsPerSecond / results.plain.requestsPerSecond) * 100) / 100;
  const report = {
    date: new Date().toISOString(),
    commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).stdout.trim() || null,
    workload: {
      query: 'projects:listProjects',
      connections,
      secondsPerServer: secondsPerRound * ROUNDS,
      rounds: ROUNDS,
    },
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim(), node: process.version },
    target: TARGET,
    results,
    ratio,
    met: ratio >= TARGET.ratio,
  };
  const directory = path.join(here, 'results');
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, 'tls.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  console.table(
    servers.map((server) => ({
      server: server.label,
      'req/s': results[server.name].requestsPerSecond.toLocaleString('en'),
      'p50 ms': results[server.name].latencyMs.p50,
      'p99 ms': results[server.name].latencyMs.p99,
      errors: results[server.name].errors + results[server.name].non2xx,
    })),
  );
  console.log(`TLS / plain throughput: ${ratio}× (target ≥ ${TARGET.ratio}×: ${report.met ? 'met' : 'MISSED'})`);
  console.log(`written to ${path.relative(process.cwd(), file)}`);
  if (!Object.values(results).every(isClean)) process.exitCode = 1;
} finally {
  for (const server of servers) await server.stop();
}

async function sampleUsers(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query('SELECT id FROM "users" ORDER BY random() LIMIT 200')).rows.map((row) => row.id);
  } finally {
    await client.end();
  }
}

/** Whether the bench database has plain and TLS client connections (both servers are up). */
async function connectionsUseTls(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT bool_or(s.ssl) AS tls, bool_or(NOT s.ssl) AS plain FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
       WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'`,
    );
    return rows[0];
  } finally {
    await client.end();
  }
}
