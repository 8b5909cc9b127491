/**
 * Relational tables against document tables (issue 12, docs/benchmarks.md § Relational tables):
 * PRODUCT.md's `listProjects` query, its `createProject` insert and the read-modify-write of a
 * counter, each served in one run by Convoy on document tables, by Convoy on relational tables
 * (every table of bench/app declared `.relational()`, with `CONVOY_TEST_STORAGE=relational`) and
 * by the hand-written server (on the document database). The two databases hold the very same
 * rows, ids included, so the answers are compared exactly; every write is counted at the end.
 *
 *   npm run bench:relational                            # writes bench/results/relational-latest.json
 *   node bench/relational.mjs --seconds 32 --connections 50 [--only listProjects,insert,rmw]
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  assertSameAnswers,
  DOCUMENTS_PER_RESPONSE,
  describeMachine,
  gitCommit,
  isClean,
  load,
  loadMutations,
  measureInRounds,
  spotCheck,
  summarize,
  writeResults,
} from './measure.mjs';
import { PROJECTS_PER_USER, seed, USERS } from './seed.mjs';
import { startServer } from './servers.mjs';

// Relational at least as fast as documents, on each benchmark (issue 12).
const TARGET_RATIO = 1;
const USER_POOL = 200;
const SPOT_CHECKED_USERS = 10;
const COUNTERS = 1000;
// Eight short rounds rather than two long ones (A B C, C B A, … of 4 s at the default 32 s per
// server): this shared machine's speed swings by a quarter from one 8 s run to the next, and the
// finer the servers alternate, the more evenly the swings fall on each.
const ROUNDS = 8;
const WARM_UP_SECONDS = { listProjects: 3, insert: 2, rmw: 2 };
const RESULTS_FILE = 'relational-latest.json';

const { values: options } = parseArgs({
  options: {
    seconds: { type: 'string', default: '32' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string', default: 'listProjects,insert,rmw' },
  },
});
const connections = Number(options.connections);
const secondsPerRound = Number(options.seconds) / ROUNDS;
const benchmarks = options.only.split(',');
if (!Number.isInteger(connections) || connections < 1) fail('--connections takes a whole number of connections');
if (!(secondsPerRound >= 1)) fail(`--seconds takes at least ${ROUNDS} (seconds per server)`);
for (const name of benchmarks) {
  if (!(name in WARM_UP_SECONDS)) fail(`--only takes some of: ${Object.keys(WARM_UP_SECONDS).join(', ')}`);
}
const commit = gitCommit();

log(
  `seeding two databases: ${USERS.toLocaleString('en')} users × ${PROJECTS_PER_USER} projects, documents and relational`,
);
const documentsUrl = await seed();
const relationalUrl = await seed({ database: 'convoy_bench_relational', storage: 'relational' });
const documentsDb = new pg.Pool({ connectionString: documentsUrl, max: 2 });
const relationalDb = new pg.Pool({ connectionString: relationalUrl, max: 2 });
const postgresVersion = (await documentsDb.query('SHOW server_version')).rows[0].server_version;
await assertSameRows();
log('the two databases hold the same users and projects, row for row');
// The same users exist in both databases, with the same ids. The insert gives projects to users
// of its own, so that `listProjects`' users keep their 20 each whichever benchmark runs first.
const pickedUsers = (
  await documentsDb.query('SELECT id FROM users ORDER BY random() LIMIT $1', [2 * USER_POOL])
).rows.map((row) => row.id);
const userIds = pickedUsers.slice(0, USER_POOL);
const insertUserIds = pickedUsers.slice(USER_POOL);

const started = [];
let clean = true;
const results = {};
try {
  log('starting Convoy on documents, Convoy on relational tables, and the hand-written server');
  const convoyDocuments = await start('convoy-bench-app', documentsUrl);
  const convoyRelational = await start('convoy-bench-app-relational', relationalUrl);
  const handwritten = await start('handwritten', documentsUrl);
  await assertStages(documentsDb, 'documents');
  await assertStages(relationalDb, 'relational');
  log('convoy.tables: every table documents in one database, relational in the other');

  // Each server writes counters and project names of its own (its tag), so each one's writes can
  // be counted; both databases get all the counters, so their tables are alike.
  const servers = {
    handwritten: { ...handwritten, name: 'handwritten', tag: 'hw', db: documentsDb, storage: 'documents' },
    handwrittenSerializable: {
      ...handwritten,
      name: 'handwrittenSerializable',
      label: 'hand-written, serializable',
      tag: 'hs',
      increment: 'counters:incrementSerializable',
      db: documentsDb,
      storage: 'documents',
    },
    convoyDocuments: {
      ...convoyDocuments,
      name: 'convoyDocuments',
      label: 'Convoy, documents',
      tag: 'cd',
      db: documentsDb,
      storage: 'documents',
    },
    convoyRelational: {
      ...convoyRelational,
      name: 'convoyRelational',
      label: 'Convoy, relational',
      tag: 'cr',
      db: relationalDb,
      storage: 'relational',
    },
  };
  await seedCounters(Object.values(servers).map((server) => server.tag));

  const WORKLOADS = {
    listProjects: {
      label: 'listProjects',
      servers: [servers.handwritten, servers.convoyDocuments, servers.convoyRelational],
      async check(measured) {
        const answers = [];
        for (const server of measured) {
          answers.push({ server, documents: await spotCheck(server, userIds.slice(0, SPOT_CHECKED_USERS)) });
        }
        // Same rows, same ids: the answers must be the same documents, exactly.
        for (const other of answers.slice(1)) assertSameAnswers(answers[0], other);
        log(
          `spot check passed: ${SPOT_CHECKED_USERS} users, ${DOCUMENTS_PER_RESPONSE} documents each, same everywhere`,
        );
      },
      run: (server, seconds) => load(server, { userIds, connections, seconds }),
    },
    insert: {
      label: 'insert (createProject)',
      servers: [servers.handwritten, servers.convoyDocuments, servers.convoyRelational],
      run: (server, seconds) =>
        loadMutations(server, {
          connections,
          seconds,
          body: (i) =>
            JSON.stringify({
              path: 'projects:createProject',
              args: { userId: insertUserIds[i % insertUserIds.length], name: `bench-${server.tag}` },
            }),
        }),
      written: async (server) =>
        (
          await server.db.query(
            server.storage === 'relational'
              ? 'SELECT count(*)::int AS n FROM projects WHERE name = $1'
              : "SELECT count(*)::int AS n FROM projects WHERE data->>'name' = $1",
            [`bench-${server.tag}`],
          )
        ).rows[0].n,
      after: assertSameInsertedShape,
    },
    rmw: {
      label: 'read-modify-write (increment)',
      servers: [
        servers.handwritten,
        servers.handwrittenSerializable,
        servers.convoyDocuments,
        servers.convoyRelational,
      ],
      run: (server, seconds) =>
        loadMutations(server, {
          connections,
          seconds,
          body: () =>
            JSON.stringify({
              path: server.increment ?? 'counters:increment',
              args: { name: `${server.tag}${Math.floor(Math.random() * COUNTERS)}` },
            }),
        }),
      written: async (server) =>
        (
          await server.db.query(
            server.storage === 'relational'
              ? 'SELECT coalesce(sum(value), 0)::int AS n FROM counters WHERE name LIKE $1'
              : "SELECT coalesce(sum((data->>'value')::int), 0)::int AS n FROM counters WHERE data->>'name' LIKE $1",
            [`${server.tag}%`],
          )
        ).rows[0].n,
    },
  };

  for (const key of benchmarks) {
    const workload = WORKLOADS[key];
    const measured = workload.servers;
    await workload.check?.(measured);
    const retriedBefore = await conflictsRetried(measured);
    const answered = new Map(measured.map((server) => [server, 0]));
    const runs = new Map(measured.map((server) => [server, 0]));
    const count = (server, result) => {
      answered.set(server, answered.get(server) + result['2xx']);
      runs.set(server, runs.get(server) + 1);
      return result;
    };
    // No dirty pages left by the seed or the benchmark before: the checkpoint Postgres would start
    // by itself for them (when their WAL fills max_wal_size) would fall on whichever server runs
    // then. Once per benchmark, not per round: a checkpoint every few seconds would make every
    // page's first write after it a full-page image far more often than a real server sees.
    await documentsDb.query('CHECKPOINT');
    for (const server of measured) {
      log(`${workload.label}: warming up ${server.label} (${WARM_UP_SECONDS[key]} s)`);
      count(server, await workload.run(server, WARM_UP_SECONDS[key]));
    }
    const byServer = await measureInRounds(measured, {
      rounds: ROUNDS,
      run: async (server) => count(server, await workload.run(server, secondsPerRound)),
      log: (message) => log(`${workload.label}, ${message}, ${connections} connections, ${secondsPerRound} s`),
    });
    const retriedAfter = await conflictsRetried(measured);
    const result = {};
    for (const server of measured) {
      const { rounds, cpuMicrosPerRequest } = byServer.get(server);
      const summary = { ...summarize(server, rounds), cpuMicrosPerRequest };
      if (!isClean(summary)) clean = false;
      if (workload.written) {
        // Successful answers (warm-up included) against what Postgres holds. autocannon stops
        // counting at its deadline while the requests then in flight still commit, so Postgres
        // may hold up to one write per connection per run more; fewer would be a lost write.
        summary.answered = answered.get(server);
        summary.inFlightAtDeadlines = connections * runs.get(server);
        summary.written = await workload.written(server);
        summary.writesAddUp =
          summary.written >= summary.answered && summary.written <= summary.answered + summary.inFlightAtDeadlines;
        if (!summary.writesAddUp) clean = false;
      }
      if (server.name.startsWith('convoy') && retriedBefore.has(server.url)) {
        summary.conflictsRetried = retriedAfter.get(server.url) - retriedBefore.get(server.url);
      }
      result[server.name] = summary;
    }
    const ratio = (a, b) => Math.round((result[a].requestsPerSecond / result[b].requestsPerSecond) * 100) / 100;
    result.ratio = {
      relationalToDocuments: ratio('convoyRelational', 'convoyDocuments'),
      documentsToHandwritten: ratio('convoyDocuments', 'handwritten'),
      relationalToHandwritten: ratio('convoyRelational', 'handwritten'),
      ...(result.handwrittenSerializable && {
        relationalToHandwrittenSerializable: ratio('convoyRelational', 'handwrittenSerializable'),
      }),
    };
    result.met = result.ratio.relationalToDocuments >= TARGET_RATIO;
    results[key] = result;
    await workload.after?.(servers);
  }
} finally {
  for (const server of started) await server.stop();
  await documentsDb.end();
  await relationalDb.end();
}

const report = {
  date: new Date().toISOString(),
  commit,
  workload: {
    users: USERS,
    projects: USERS * PROJECTS_PER_USER,
    userIdsRotated: userIds.length,
    counters: COUNTERS,
    connections,
    secondsPerServer: secondsPerRound * ROUNDS,
    rounds: ROUNDS,
    order: 'A B C, C B A (servers in the order of each benchmark’s results)',
  },
  machine: describeMachine(postgresVersion),
  target: { relationalToDocuments: TARGET_RATIO },
  results,
};
const file = writeResults(RESULTS_FILE, report);
printSummary();
console.log(`written to ${path.relative(process.cwd(), file)}`);
if (!clean) {
  console.error('bench: errors, wrong answers, or writes that do not match the answers');
  process.exitCode = 1;
}

async function start(name, url) {
  const server = await startServer(name, url);
  started.push(server);
  return server;
}

/** Users and projects the same in both databases: ids, creation times and every field. */
async function assertSameRows() {
  const digest = async (db, sql) => (await db.query(sql)).rows[0];
  const documents = (table) =>
    `SELECT count(*)::int AS n, md5(string_agg(id::text || ' ' || created_at::text || ' ' || data::text, ',' ORDER BY id)) AS digest FROM "${table}"`;
  const relational = {
    users: `jsonb_build_object('name', name, 'email', email, 'createdAt', created_at_field)`,
    projects: `jsonb_build_object('name', name, 'userId', user_id, 'status', status, 'createdAt', created_at_field)`,
  };
  for (const table of ['users', 'projects']) {
    const a = await digest(documentsDb, documents(table));
    const b = await digest(
      relationalDb,
      `SELECT count(*)::int AS n, md5(string_agg(id::text || ' ' || created_at::text || ' ' || ${relational[table]}::text, ',' ORDER BY id)) AS digest FROM "${table}"`,
    );
    assert.deepEqual(b, a, `the two databases' ${table} differ`);
  }
}

/** What Convoy serves each table as, in each database (convoy.tables records each one's stage). */
async function assertStages(db, stage) {
  const { rows } = await db.query('SELECT name, stage FROM convoy.tables ORDER BY name');
  assert.deepEqual(
    rows.map((row) => `${row.name}: ${row.stage}`),
    ['counters', 'projects', 'users'].map((name) => `${name}: ${stage}`),
  );
}

/** `COUNTERS` counters named `<tag><n>` with value 0 per tag, in both databases alike. */
async function seedCounters(tags) {
  const documents = `INSERT INTO counters (id, data)
    SELECT gen_random_uuid(), jsonb_build_object('name', tag || n, 'value', 0)
    FROM unnest($1::text[]) AS tag, generate_series(0, ${COUNTERS - 1}) AS n`;
  const relational = `INSERT INTO counters (id, name, value)
    SELECT gen_random_uuid(), tag || n, 0 FROM unnest($1::text[]) AS tag, generate_series(0, ${COUNTERS - 1}) AS n`;
  await documentsDb.query(documents, [tags]);
  await relationalDb.query(relational, [tags]);
  for (const db of [documentsDb, relationalDb]) await db.query('VACUUM ANALYZE counters');
}

/** A project inserted through each Convoy server reads back alike: the same fields, of the same types. */
async function assertSameInsertedShape(servers) {
  const shape = async (server) => {
    for (const userId of insertUserIds) {
      const answer = await fetch(`${server.url}/api/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: 'projects:listProjects', args: { userId } }),
      });
      const inserted = (await answer.json()).value.find((document) => document.name === `bench-${server.tag}`);
      if (!inserted) continue;
      assert.equal(inserted.userId, userId, `${server.label}: an inserted project's userId`);
      assert.equal(inserted.status, 'draft', `${server.label}: an inserted project's status`);
      return Object.entries(inserted)
        .map(([field, value]) => `${field}: ${typeof value}`)
        .sort();
    }
    throw new Error(`${server.label}: no inserted project found`);
  };
  const documents = await shape(servers.convoyDocuments);
  const relational = await shape(servers.convoyRelational);
  assert.deepEqual(
    relational,
    documents,
    'projects inserted on documents and on relational tables read back differently',
  );
  log(`inserted projects read back alike from both storages: ${documents.join(', ')}`);
}

/** Each Convoy server's count of mutations that conflicted in Postgres and ran again, by URL. */
async function conflictsRetried(measured) {
  const counts = new Map();
  for (const server of measured) {
    if (!server.name.startsWith('convoy') || counts.has(server.url)) continue;
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const count = Number(/^convoy_mutation_conflicts_retried_total (\d+)/m.exec(metrics)?.[1]);
    if (Number.isFinite(count)) counts.set(server.url, count);
  }
  return counts;
}

function printSummary() {
  const { machine } = report;
  console.log(
    `\nrelational against documents, ${connections} connections, ${secondsPerRound * ROUNDS} s per server` +
      ` — ${machine.cpus} CPUs, Node ${machine.node}, Postgres ${machine.postgres}`,
  );
  console.table(
    Object.entries(results).flatMap(([benchmark, byServer]) =>
      Object.entries(byServer)
        .filter(([, summary]) => typeof summary === 'object' && 'requestsPerSecond' in summary)
        .map(([name, summary]) => ({
          benchmark,
          server: name,
          'req/s': summary.requestsPerSecond.toLocaleString('en'),
          'p50 ms': summary.latencyMs.p50,
          'p99 ms': summary.latencyMs.p99,
          'CPU µs/req: server': summary.cpuMicrosPerRequest.server,
          postgres: summary.cpuMicrosPerRequest.postgres,
          'errors, non-2xx, bad': `${summary.errors + summary.timeouts}, ${summary.non2xx}, ${summary.wrongDocumentCount}`,
          'answered / written': summary.written === undefined ? '' : `${summary.answered} / ${summary.written}`,
        })),
    ),
  );
  for (const [benchmark, { ratio, met }] of Object.entries(results)) {
    console.log(
      `${benchmark}: relational / documents ${ratio.relationalToDocuments}× (target ≥ ${TARGET_RATIO}×: ${met ? 'met' : 'MISSED'}); ` +
        `documents / hand-written ${ratio.documentsToHandwritten}×, relational / hand-written ${ratio.relationalToHandwritten}×` +
        (ratio.relationalToHandwrittenSerializable
          ? `, relational / hand-written serializable ${ratio.relationalToHandwrittenSerializable}×`
          : ''),
    );
  }
}

function log(message) {
  console.log(`bench: ${message}`);
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
