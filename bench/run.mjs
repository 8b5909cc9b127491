/**
 * The `listProjects` benchmark (docs/benchmarks.md): Convoy's production server against a
 * hand-written node:http + `pg` server running the same SQL, in the same run, on loopback.
 *
 *   npm run bench                            # both servers; writes bench/results/latest.json
 *   node bench/run.mjs --only handwritten    # one server alone
 *   node bench/run.mjs --seconds 30 --connections 50  # seconds per server (default 16)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { assertSameAnswers, DOCUMENTS_PER_RESPONSE, isClean, load, spotCheck, summarize } from './measure.mjs';
import { PROJECTS_PER_USER, seed, USERS } from './seed.mjs';
import { SERVERS, startServer } from './servers.mjs';

const TARGET = { ratio: 1.3, p99Ms: 25 };
const USER_POOL = 200;
const SPOT_CHECKED_USERS = 5;
const WARM_UP_SECONDS = 3;
// Each server's time is cut into rounds run in A B B A order, so that drift (a warming cache, a
// busy neighbour) falls on both servers alike.
const ROUNDS = 2;

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '16' },
    connections: { type: 'string', default: '50' },
  },
});
const names = options.only ? [options.only] : ['handwritten', 'convoy'];
for (const name of names) {
  if (!SERVERS[name]) fail(`--only takes one of: ${Object.keys(SERVERS).join(', ')}`);
}
const connections = Number(options.connections);
const secondsPerRound = Number(options.seconds) / ROUNDS;
if (!Number.isInteger(connections) || connections < 1) fail('--connections takes a whole number of connections');
if (!(secondsPerRound >= 1)) fail(`--seconds takes at least ${ROUNDS} (seconds per server)`);

log(`seeding ${USERS.toLocaleString('en')} users × ${PROJECTS_PER_USER} projects`);
const databaseUrl = await seed();
const { userIds, postgresVersion } = await sampleDatabase(databaseUrl);

const servers = [];
try {
  for (const name of names) {
    log(`starting ${SERVERS[name].label}`);
    servers.push(await startServer(name, databaseUrl));
  }

  const answers = [];
  for (const server of servers) {
    answers.push({ server, documents: await spotCheck(server, userIds.slice(0, SPOT_CHECKED_USERS)) });
  }
  for (const other of answers.slice(1)) assertSameAnswers(answers[0], other);
  log(`spot check passed: ${SPOT_CHECKED_USERS} users, ${DOCUMENTS_PER_RESPONSE} documents each, same on every server`);

  for (const server of servers) {
    log(`warming up ${server.label} (${WARM_UP_SECONDS} s)`);
    await load(server, { userIds, connections, seconds: WARM_UP_SECONDS });
  }

  const rounds = new Map(servers.map((server) => [server, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      log(`round ${round + 1}/${ROUNDS}: ${server.label}, ${connections} connections, ${secondsPerRound} s`);
      rounds.get(server).push(await load(server, { userIds, connections, seconds: secondsPerRound }));
    }
  }

  const results = Object.fromEntries(servers.map((server) => [server.name, summarize(server, rounds.get(server))]));
  const report = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    workload: {
      query: 'projects:listProjects',
      documentsPerResponse: DOCUMENTS_PER_RESPONSE,
      users: USERS,
      projects: USERS * PROJECTS_PER_USER,
      userIdsRotated: userIds.length,
      connections,
      secondsPerServer: secondsPerRound * ROUNDS,
      rounds: ROUNDS,
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim(),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      postgres: postgresVersion,
    },
    target: TARGET,
    results,
    ...(results.convoy && results.handwritten && verdict(results.convoy, results.handwritten)),
  };
  writeReport(report);
  printSummary(report);
  if (!Object.values(results).every(isClean)) {
    console.error('bench: some responses were errors or had the wrong documents');
    process.exitCode = 1;
  }
} finally {
  for (const server of servers) await server.stop();
}

/** A pool of users to rotate requests over, and the server's version for the report. */
async function sampleDatabase(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const users = await client.query('SELECT id FROM "users" ORDER BY random() LIMIT $1', [USER_POOL]);
    const version = await client.query('SHOW server_version');
    return { userIds: users.rows.map((row) => row.id), postgresVersion: version.rows[0].server_version };
  } finally {
    await client.end();
  }
}

function verdict(convoy, handwritten) {
  const ratio = Math.round((convoy.requestsPerSecond / handwritten.requestsPerSecond) * 100) / 100;
  return { ratio, met: { ratio: ratio >= TARGET.ratio, p99: convoy.latencyMs.p99 < TARGET.p99Ms } };
}

function writeReport(report) {
  const directory = path.join(here, 'results');
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, 'latest.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

function printSummary({ machine, workload, results, ratio, met }) {
  const rows = servers.map((server) => {
    const result = results[server.name];
    return {
      server: server.label,
      'req/s': result.requestsPerSecond.toLocaleString('en'),
      'p50 ms': result.latencyMs.p50,
      'p97.5 ms': result.latencyMs.p97_5,
      'p99 ms': result.latencyMs.p99,
      errors: result.errors + result.timeouts,
      'non-2xx': result.non2xx,
      'wrong docs': result.wrongDocumentCount,
    };
  });
  console.log(
    `\nlistProjects, ${workload.connections} connections, ${workload.secondsPerServer} s per server` +
      ` — ${machine.cpus} CPUs, Node ${machine.node}, Postgres ${machine.postgres}`,
  );
  console.table(rows);
  if (ratio !== undefined) {
    const mark = (ok) => (ok ? 'met' : 'MISSED');
    console.log(`Convoy / hand-written throughput: ${ratio}× (target ≥ ${TARGET.ratio}×: ${mark(met.ratio)})`);
    console.log(`Convoy p99: ${results.convoy.latencyMs.p99} ms (target < ${TARGET.p99Ms} ms: ${mark(met.p99)})`);
  }
  console.log(`written to ${path.relative(process.cwd(), path.join(here, 'results', 'latest.json'))}`);
}

function gitCommit() {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' });
  return git.status === 0 ? git.stdout.trim() : null;
}

function log(message) {
  console.log(`bench: ${message}`);
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
