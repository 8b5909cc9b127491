/**
 * Load and checks: autocannon runs of the `listProjects` query and of mutations, rounds in A B B A
 * order with the CPU they cost, their sum, a spot check, and the report's machine and file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { readCpu } from './cpu.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const DOCUMENTS_PER_RESPONSE = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function listProjectsBody(userId) {
  return JSON.stringify({ path: 'projects:listProjects', args: { userId } });
}

/**
 * One autocannon run against `server`, each request asking for the next user of `userIds` in turn.
 * Resolves with autocannon's raw result (its histograms still encoded) so rounds can be summed.
 */
export function load(server, { userIds, connections, seconds }) {
  const bodies = userIds.map(listProjectsBody);
  let next = 0;
  return autocannon({
    url: server.url,
    connections,
    duration: seconds,
    skipAggregateResult: true,
    requests: [
      {
        method: 'POST',
        path: '/api/query',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
      },
    ],
    // Every response is checked, cheaply: a body that does not hold 20 documents counts as a
    // mismatch. The spot check below looks at a few responses in depth.
    verifyBody: (body) => countDocuments(body) === DOCUMENTS_PER_RESPONSE,
  });
}

/**
 * One autocannon run of `POST /api/mutation` against `server`, the i-th request's body from
 * `body(i)`; an answer that is not `{"value":…}` counts as a mismatch.
 */
export function loadMutations(server, { body, connections, seconds }) {
  let next = 0;
  return autocannon({
    url: server.url,
    connections,
    duration: seconds,
    skipAggregateResult: true,
    requests: [
      {
        method: 'POST',
        path: '/api/mutation',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: body(next++) }),
      },
    ],
    verifyBody: (answer) => answer.startsWith('{"value":'),
  });
}

/**
 * Runs `run(server)` (one autocannon run) `rounds` times per server, in the order A B C, C B A, …
 * so that drift during the run falls on every server alike, reading the CPU each run costs the
 * server's process and Postgres (bench/cpu.mjs). Resolves with each server's runs and CPU µs per
 * answered request (null where /proc cannot be read).
 */
export async function measureInRounds(servers, { rounds, run, log = () => {} }) {
  const measured = new Map(servers.map((server) => [server, { rounds: [], server: 0, postgres: 0, requests: 0 }]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      log(`round ${round + 1}/${rounds}: ${server.label}`);
      const cpuSpent = readCpu(server.pid);
      const result = await run(server);
      const used = cpuSpent();
      const spent = measured.get(server);
      spent.server += used.server ?? Number.NaN;
      spent.postgres += used.postgres ?? Number.NaN;
      spent.requests += result['2xx'];
      spent.rounds.push(result);
    }
  }
  return new Map(
    [...measured].map(([server, spent]) => {
      const perRequest = (part) => {
        const micros = Math.round(spent[part] / spent.requests);
        return Number.isFinite(micros) ? micros : null;
      };
      return [
        server,
        {
          rounds: spent.rounds,
          cpuMicrosPerRequest: { server: perRequest('server'), postgres: perRequest('postgres') },
        },
      ];
    }),
  );
}

function countDocuments(body) {
  let count = 0;
  for (let at = body.indexOf('"_id":'); at !== -1; at = body.indexOf('"_id":', at + 6)) count++;
  return count;
}

/** Requests per second and latency over all of one server's rounds. */
export function summarize(server, rounds) {
  // aggregateResult merges the latency histograms exactly; it insists on the options' url.
  const aggregate = (results) => autocannon.aggregateResult(results, { url: server.url });
  const all = aggregate(rounds);
  const seconds = rounds.reduce((sum, round) => sum + round.duration, 0);
  const ok = rounds.reduce((sum, round) => sum + round['2xx'], 0);
  const round = (value) => Math.round(value * 100) / 100;
  return {
    requestsPerSecond: Math.round(ok / seconds),
    latencyMs: {
      p50: round(all.latency.p50),
      p97_5: round(all.latency.p97_5),
      p99: round(all.latency.p99),
      max: round(all.latency.max),
    },
    responses: all.latency.totalCount,
    seconds: round(seconds),
    errors: all.errors,
    timeouts: all.timeouts,
    non2xx: all.non2xx,
    wrongDocumentCount: all.mismatches,
    rounds: rounds.map((one) => ({
      requestsPerSecond: Math.round(one['2xx'] / one.duration),
      p99Ms: round(aggregate([one]).latency.p99),
    })),
  };
}

export function isClean(summary) {
  return summary.errors + summary.timeouts + summary.non2xx + summary.wrongDocumentCount === 0;
}

/**
 * Asks `server` for a few users' projects and checks them in depth: 200, that user's 20 documents,
 * Convoy's document shape, newest first. Resolves with the documents, by user.
 */
export async function spotCheck(server, userIds) {
  const seen = new Map();
  for (const userId of userIds) {
    const response = await fetch(`${server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: listProjectsBody(userId),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `${server.label}: listProjects(${userId}) answered ${response.status}: ${text}`);
    const documents = JSON.parse(text).value;
    assert.equal(documents.length, DOCUMENTS_PER_RESPONSE, `${server.label}: listProjects(${userId}) document count`);
    for (const [position, document] of documents.entries()) {
      assert.match(document._id, UUID, `${server.label}: _id`);
      assert.equal(typeof document._creationTime, 'number', `${server.label}: _creationTime`);
      assert.equal(document.userId, userId, `${server.label}: a document of another user`);
      const previous = documents[position - 1];
      if (previous) assert.ok(previous.createdAt >= document.createdAt, `${server.label}: not newest first`);
    }
    seen.set(userId, documents);
  }
  return seen;
}

/** Both servers must give the same answer; `_creationTime` may differ below the millisecond. */
export function assertSameAnswers(a, b) {
  const comparable = (documents) =>
    documents.map(({ _creationTime, ...fields }) => ({ ...fields, _creationTime: Math.floor(_creationTime) }));
  for (const [userId, documents] of a.documents) {
    assert.deepEqual(
      comparable(b.documents.get(userId)),
      comparable(documents),
      `${a.server.label} and ${b.server.label} disagree on listProjects(${userId})`,
    );
  }
}

/** The machine a report was measured on. */
export function describeMachine(postgresVersion) {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: postgresVersion,
  };
}

/** The short commit of the checkout the bench runs from, `+` when it has changes not committed. */
export function gitCommit() {
  const git = (...args) => spawnSync('git', args, { cwd: here, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return null;
  const dirty = git('status', '--porcelain', '--untracked-files=no').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? '+' : ''}`;
}

/** Writes `report` to bench/results/`name` whole (a temporary file renamed), and returns its path. */
export function writeResults(name, report) {
  const directory = path.join(here, 'results');
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, name);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}
