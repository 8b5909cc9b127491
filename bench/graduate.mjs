/**
 * The online graduation under load (issue 13, docs/benchmarks.md § Graduation): 1,000,000
 * PRODUCT.md projects served by bench/app's production server under a steady mix of queries,
 * inserts and a read-modify-write of projects, with live queries open, while
 * `convoy graduate projects` and then `--complete` run as a user runs them. It measures, against
 * GRADUATION.md § What it must measure:
 *
 * - the backfill's rows per second against the one-shot path on the same rows (one `UPDATE` of
 *   the whole table, no load, on an identical copy of the database made before the run);
 * - mutation latency during the run against the window before it, and every call kind's p50 and
 *   p99 in each window and each step of the graduation;
 * - the longest lock wait of any user call: `pg_locks.waitstart` sampled every 50 ms from a
 *   connection of its own, with the server's backends told apart by their application_name, and
 *   the longest user call during the run (which includes any lock wait too short to be sampled);
 * - zero failed calls, no lost write (each created project is there, each project's name has one
 *   `+` per acknowledged touch), every live query ending on a fresh query's answer.
 *
 *   npm run bench:graduate                     # writes bench/results/graduate-latest.json
 *   node bench/graduate.mjs --users 50000 --rate 300 --window 20 --subscriptions 20
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConvoyClient } from '../dist/client/index.js';
import { describeMachine, gitCommit, writeResults } from './measure.mjs';
import { databaseUrl, PROJECTS_PER_USER, postgresUrl, seed } from './seed.mjs';
import { benchApp, convoyCli, startServer } from './servers.mjs';

const TARGETS = { backfillToOneShot: 0.5, mutationP99DuringToBefore: 2, longestLockWaitMs: 500, failedCalls: 0 };
const DATABASE = 'convoy_bench_graduate';
// Copies of the seeded database, made before the run, for the one-shot path.
const ONE_SHOT = { bare: `${DATABASE}_oneshot`, expanded: `${DATABASE}_oneshot_expanded` };
const SERVER_APP = 'convoy-bench-server';
const GRADUATE_APP = 'convoy-bench-graduate';
const SAMPLER_APP = 'convoy-bench-sampler';
const SAMPLE_EVERY_MS = 50;
const WARM_UP_MS = 3_000;
const TOUCHED_PROJECTS = 2_000;
// The mix: listProjects queries, createProject inserts, touchProject read-modify-writes.
const MIX = { listProjects: 0.6, createProject: 0.2, touchProject: 0.2 };
/** Of the inserts, the share that goes to a user a live query watches. */
const WATCHED_SHARE = 0.25;
const RESULTS_FILE = 'graduate-latest.json';

const { values: options } = parseArgs({
  options: {
    users: { type: 'string', default: '50000' },
    rate: { type: 'string', default: '300' },
    window: { type: 'string', default: '20' },
    subscriptions: { type: 'string', default: '20' },
  },
});
const USERS = Number(options.users);
const RATE = Number(options.rate);
const WINDOW_MS = Number(options.window) * 1000;
const SUBSCRIPTIONS = Number(options.subscriptions);
for (const [name, value] of [
  ['users', USERS],
  ['rate', RATE],
  ['window', WINDOW_MS],
  ['subscriptions', SUBSCRIPTIONS],
]) {
  if (!Number.isInteger(value) || value < 1) fail(`--${name} takes a whole number above 0`);
}

const log = (message) => console.log(`bench: ${message}`);
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value, digits = 1) => (value === null || value === undefined ? null : Number(value.toFixed(digits)));
const withAppName = (url, name) => {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
};
const commit = gitCommit();

// 1. The data, the schema Convoy's deploy step makes, and the copies for the one-shot path.
const seedStarted = performance.now();
log(`seeding ${USERS.toLocaleString('en')} users × ${PROJECTS_PER_USER} projects into ${DATABASE}`);
const url = await seed({ database: DATABASE, users: USERS });
for (const command of ['build', 'migrate']) convoyCli(benchApp, command, url);
const admin = new pg.Client({ connectionString: postgresUrl });
await admin.connect();
// FILE_COPY (Postgres 15+; older ones copy files anyway): a copy logged to the WAL would have
// its 600 MB written out by a checkpoint in the middle of the baseline window.
const fileCopy = Number((await admin.query('SHOW server_version_num')).rows[0].server_version_num) >= 150000;
for (const copy of Object.values(ONE_SHOT)) {
  await admin.query(`DROP DATABASE IF EXISTS "${copy}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${copy}" TEMPLATE "${DATABASE}"${fileCopy ? ' STRATEGY FILE_COPY' : ''}`);
}
// What the seed dirtied goes to disk now, not during the baseline.
await admin.query('CHECKPOINT');
const seedSeconds = (performance.now() - seedStarted) / 1000;
log(`seeded and copied in ${seedSeconds.toFixed(1)} s`);

const db = new pg.Client({ connectionString: withAppName(url, SAMPLER_APP) });
await db.connect();
const postgresVersion = (await db.query('SHOW server_version')).rows[0].server_version;
const projectsBefore = (await db.query('SELECT count(*)::int AS n FROM projects')).rows[0].n;
const allUsers = (await db.query('SELECT id::text FROM users ORDER BY id')).rows.map((row) => row.id);
const touched = (
  await db.query('SELECT id::text FROM projects ORDER BY md5(id::text) LIMIT $1', [TOUCHED_PROJECTS])
).rows.map((row) => row.id);
const watched = allUsers.filter((_, index) => index % Math.floor(allUsers.length / SUBSCRIPTIONS) === 0);
watched.length = SUBSCRIPTIONS;
const plansBefore = new Set(listPlans());

const server = await startServer('convoy-bench-app', withAppName(url, SERVER_APP));
const pick = (items) => items[Math.floor(Math.random() * items.length)];

// Every call: when it started (ms since the load began), what it was, how long it took, how it ended.
const calls = [];
const failures = [];
const created = [];
const touches = new Map();
const stream = { values: 0, errors: 0, reconnects: 0 };
const clients = [];
const live = [];
let stopping = false;
let loadStarted = 0;
const now = () => performance.now() - loadStarted;

// What the sampler sees: the graduation's row, lock waits, and what the server's backends wait on.
const progress = [];
const stepChanges = [];
const lockWaits = new Map();
const waitEvents = new Map();
let sampling = true;
let samples = 0;

async function call(kind, body) {
  const started = now();
  let status;
  let text = '';
  try {
    const response = await fetch(`${server.url}/api/${kind === 'listProjects' ? 'query' : 'mutation'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    text = await response.text();
    status = response.status;
  } catch (error) {
    status = 'no answer';
    text = error.message;
  }
  const ms = now() - started;
  calls.push({ kind, started, ms, ok: status === 200 });
  if (status !== 200) {
    if (failures.length < 20)
      failures.push(`${kind} at ${(started / 1000).toFixed(1)} s: ${status} ${text.slice(0, 300)}`);
    return undefined;
  }
  return JSON.parse(text).value;
}

async function send() {
  const dice = Math.random();
  if (dice < MIX.listProjects) {
    const value = await call('listProjects', { path: 'projects:listProjects', args: { userId: pick(allUsers) } });
    if (value !== undefined && !Array.isArray(value) && failures.length < 20) failures.push('listProjects: no list');
  } else if (dice < MIX.listProjects + MIX.createProject) {
    const userId = Math.random() < WATCHED_SHARE ? pick(watched) : pick(allUsers);
    const id = await call('createProject', {
      path: 'projects:createProject',
      args: { userId, name: `graduate load ${Math.round(now())}` },
    });
    if (id !== undefined) created.push(id);
  } else {
    const id = pick(touched);
    const answer = await call('touchProject', { path: 'projects:touchProject', args: { id } });
    if (answer !== undefined) touches.set(id, (touches.get(id) ?? 0) + 1);
  }
}

let graduationsExist = false;
const GRADUATION_SQL = `SELECT step, rows_done::float8 AS rows_done, rows_total::float8 AS rows_total, batch_size,
         (extract(epoch FROM updated_at) * 1000)::float8 AS updated_ms
    FROM convoy.graduations WHERE table_name = 'projects'`;
const LOCKS_SQL = `SELECT l.pid, a.application_name, l.locktype, l.mode, l.relation::regclass::text AS relation,
         extract(epoch FROM l.waitstart)::text AS waitstart, (extract(epoch FROM now() - l.waitstart) * 1000)::float8 AS waited_ms,
         left(a.query, 300) AS query,
         (SELECT string_agg(b.application_name || ' (' || b.pid || '): ' || left(b.query, 300), ' | ')
            FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(l.pid))) AS blocked_by
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted`;
// Backends of other databases on the same Postgres are named so: their work competes with the run.
const EVENTS_SQL = `SELECT CASE WHEN datname = current_database() THEN coalesce(nullif(application_name, ''), '(unnamed)')
                ELSE 'other database ' || datname END AS application_name,
         coalesce(wait_event_type || ':' || wait_event, 'CPU') AS event
    FROM pg_stat_activity
   WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`;

async function sample() {
  // convoy.graduations appears with the first graduation; until then it is looked for.
  if (!graduationsExist) {
    graduationsExist = (await db.query("SELECT to_regclass('convoy.graduations') IS NOT NULL AS yes")).rows[0].yes;
  }
  const results = await db.query([...(graduationsExist ? [GRADUATION_SQL] : []), LOCKS_SQL, EVENTS_SQL].join(';\n'));
  const [graduation, locks, events] = graduationsExist ? results : [{ rows: [] }, ...results];
  const at = now();
  samples++;
  const row = graduation.rows[0];
  const step = row?.step ?? null;
  if (step !== (stepChanges.at(-1)?.step ?? null)) stepChanges.push({ at, step });
  if (row) {
    const last = progress.at(-1);
    if (!last || last.rowsDone !== row.rows_done || last.step !== step) {
      progress.push({
        at,
        step,
        rowsDone: row.rows_done,
        rowsTotal: row.rows_total,
        batchSize: row.batch_size,
        updatedMs: row.updated_ms,
      });
    }
  }
  const phase = phaseAt(at);
  for (const wait of locks.rows) {
    // One wait is one backend waiting for one lock from one moment on.
    const key = `${wait.pid} ${wait.locktype} ${wait.relation} ${wait.waitstart}`;
    const seen = lockWaits.get(key) ?? {
      pid: wait.pid,
      applicationName: wait.application_name,
      phase,
      locktype: wait.locktype,
      mode: wait.mode,
      relation: wait.relation,
      firstSeenAtSeconds: round(at / 1000, 2),
      query: wait.query,
      blockedBy: wait.blocked_by,
      waitedMs: 0,
      samples: 0,
    };
    seen.waitedMs = Math.max(seen.waitedMs, wait.waited_ms ?? 0);
    seen.samples++;
    lockWaits.set(key, seen);
  }
  for (const { application_name: app, event } of events.rows) {
    const key = `${phase} ${app} ${event}`;
    waitEvents.set(key, (waitEvents.get(key) ?? 0) + 1);
  }
}

async function sampler() {
  while (sampling) {
    const started = performance.now();
    await sample();
    await settle(Math.max(0, SAMPLE_EVERY_MS - (performance.now() - started)));
  }
}

// The run's phases, in ms since the load began: filled in as it goes.
const marks = {};
function phaseAt(at) {
  if (marks.graduateStarted === undefined || at < marks.graduateStarted) return 'before';
  if (marks.graduateEnded === undefined || at < marks.graduateEnded) {
    let step = 'check';
    for (const change of stepChanges) if (change.at <= at && change.step) step = change.step;
    return step;
  }
  if (marks.completeStarted === undefined || at < marks.completeStarted) return 'columns';
  if (marks.completeEnded === undefined || at < marks.completeEnded) return 'complete';
  return 'after';
}

/** Runs `convoy graduate projects <flags>` as a user does; resolves with its exit code and timed output. */
function graduate(flags) {
  const cli = path.join(benchApp, '..', '..', 'dist', 'cli', 'bin.js');
  const child = spawn(process.execPath, [cli, 'graduate', 'projects', ...flags], {
    cwd: benchApp,
    env: { ...process.env, DATABASE_URL: withAppName(url, GRADUATE_APP) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  const collect = (chunk) => {
    for (const line of chunk.toString().split(/\r?\n|\r/)) {
      if (line.trim()) output.push(`${(now() / 1000).toFixed(1)} s  ${line.trimEnd()}`);
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

let clean = true;
let report;
try {
  log(`opening ${SUBSCRIPTIONS} live queries (listProjects of ${SUBSCRIPTIONS} users)`);
  let ready = 0;
  for (const userId of watched) {
    const client = new ConvoyClient(server.url);
    clients.push(client);
    const seen = { userId, value: undefined, errors: [] };
    live.push(seen);
    client.subscribe(
      { path: 'projects:listProjects', kind: 'query' },
      { userId },
      (value) => {
        if (seen.value === undefined) ready++;
        seen.value = value;
        stream.values++;
      },
      (error) => {
        stream.errors++;
        seen.errors.push(`${error.code}: ${error.message}`);
      },
    );
    client.onConnectionStateChange((state) => {
      if (state === 'reconnecting' && !stopping) stream.reconnects++;
    });
  }
  while (ready < SUBSCRIPTIONS) await settle(20);

  log(
    `load: ${RATE} calls/s (${Object.entries(MIX)
      .map(([kind, share]) => `${share * 100}% ${kind}`)
      .join(', ')})`,
  );
  loadStarted = performance.now();
  const inFlight = new Set();
  const loader = (async () => {
    // A fixed rate, ticked every 10 ms; a call that has not finished does not hold up the next.
    let due = 0;
    let last = now();
    while (!stopping) {
      const at = now();
      due += ((at - last) / 1000) * RATE;
      last = at;
      for (; due >= 1; due--) {
        const request = send();
        inFlight.add(request);
        void request.finally(() => inFlight.delete(request));
      }
      await settle(10);
    }
    await Promise.all(inFlight);
  })();
  const sampled = sampler();

  marks.beforeStarted = WARM_UP_MS;
  await settle(WARM_UP_MS + WINDOW_MS);
  log(`baseline window done (${WINDOW_MS / 1000} s); running \`convoy graduate projects\``);
  marks.graduateStarted = now();
  const graduation = await graduate([]);
  marks.graduateEnded = now();
  log(
    `\`convoy graduate projects\` exited ${graduation.code} after ${((marks.graduateEnded - marks.graduateStarted) / 1000).toFixed(1)} s`,
  );
  if (graduation.code !== 0) clean = false;
  await settle(1_000);
  marks.completeStarted = now();
  const completion = await graduate(['--complete']);
  marks.completeEnded = now();
  log(
    `\`convoy graduate projects --complete\` exited ${completion.code} after ${((marks.completeEnded - marks.completeStarted) / 1000).toFixed(1)} s`,
  );
  if (completion.code !== 0) clean = false;
  await settle(WINDOW_MS);
  marks.afterEnded = now();
  stopping = true;
  await loader;
  sampling = false;
  await sampled;
  log(`load stopped: ${calls.length.toLocaleString('en')} calls, ${samples.toLocaleString('en')} samples of pg_locks`);

  // 2. Nothing lost: every acknowledged write is there, every live query ends on a fresh answer.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const metric = (name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1] ?? Number.NaN);
  const servedRelational = /convoy_table_stage\{table="projects",stage="relational",step="",reads="columns"\} 1/.test(
    metrics,
  );
  const stored = (await db.query('SELECT count(*)::int AS n FROM projects WHERE id = ANY ($1::uuid[])', [created]))
    .rows[0].n;
  const names = (
    await db.query('SELECT id::text, name FROM projects WHERE id = ANY ($1::uuid[])', [[...touches.keys()]])
  ).rows;
  const touchesLost = names.filter(({ id, name }) => (name.match(/\+/g)?.length ?? 0) !== touches.get(id)).length;
  let liveStale = 0;
  for (const seen of live) {
    const fresh = await call('listProjects', { path: 'projects:listProjects', args: { userId: seen.userId } });
    const deadline = Date.now() + 5_000;
    while (JSON.stringify(seen.value) !== JSON.stringify(fresh) && Date.now() < deadline) await settle(50);
    if (JSON.stringify(seen.value) !== JSON.stringify(fresh)) liveStale++;
  }
  const writes = {
    created: created.length,
    createdStored: stored,
    touches: [...touches.values()].reduce((sum, n) => sum + n, 0),
    touchedProjects: touches.size,
    touchedProjectsWithWrongCount: touchesLost + (touches.size - names.length),
    servedFromColumnsAfterComplete: servedRelational,
    liveQueriesNotFresh: liveStale,
  };
  const columns = (
    await db.query(
      "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS columns FROM information_schema.columns WHERE table_name = 'projects'",
    )
  ).rows[0].columns;
  if (stored !== created.length || writes.touchedProjectsWithWrongCount > 0 || !servedRelational || liveStale > 0) {
    clean = false;
  }

  // 3. The one-shot path on the same rows, no load: the plan this run wrote, its backfill as one UPDATE.
  for (const client of clients) client.close();
  clients.length = 0;
  await server.stop();
  const planDirs = listPlans().filter((dir) => !plansBefore.has(dir));
  const plan = JSON.parse(
    readFileSync(path.join(benchApp, 'convoy', 'graduations', planDirs.at(-1), 'plan.json'), 'utf8'),
  );
  for (const dir of planDirs) rmSync(path.join(benchApp, 'convoy', 'graduations', dir), { recursive: true });
  const oneShot = {
    bare: await runOneShot(ONE_SHOT.bare, plan, plan.expand.slice(0, 1)),
    withExpand: await runOneShot(ONE_SHOT.expanded, plan, plan.expand),
  };

  report = summarize({ graduation, completion, writes, oneShot, plan, columns, metric });
} finally {
  stopping = true;
  sampling = false;
  for (const client of clients) client.close();
  await server.stop();
  await db.end().catch(() => {});
  for (const copy of Object.values(ONE_SHOT)) await admin.query(`DROP DATABASE IF EXISTS "${copy}" WITH (FORCE)`);
  await admin.end();
}

const file = writeResults(RESULTS_FILE, report);
printSummary(report);
console.log(`written to ${path.relative(process.cwd(), file)}`);
if (!clean || report.failedCalls > 0) {
  console.error('bench: failed calls, a failed step, a lost write, or a live query that did not end fresh');
  process.exitCode = 1;
}

/** The plan folders `convoy graduate` has written into bench/app (it writes one per run). */
function listPlans() {
  try {
    return readdirSync(path.join(benchApp, 'convoy', 'graduations')).sort();
  } catch {
    return [];
  }
}

/**
 * The one-shot path on a copy of the seeded database: `expand` (the columns alone, or everything
 * the online run's expand adds: the trigger and the NOT VALID constraints, which every row's
 * update then pays for), then the backfill's statement without its batches, over every row.
 */
async function runOneShot(database, plan, expand) {
  const unbatched =
    /^WITH batch AS \(.*?\) UPDATE (.+?) AS t SET (.+) FROM batch WHERE t\.id = batch\.id RETURNING t\.id$/s.exec(
      plan.backfill,
    );
  if (!unbatched) throw new Error(`bench: the plan's backfill is not a keyset batch as expected: ${plan.backfill}`);
  const update = `UPDATE ${unbatched[1]} AS t SET ${unbatched[2]}`;
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  try {
    let started = performance.now();
    for (const statement of expand) await client.query(statement);
    const expandMs = performance.now() - started;
    log(`one-shot on ${database} (${expand.length} expand statements): ${update.slice(0, 80)}…`);
    started = performance.now();
    const { rowCount } = await client.query(update);
    const seconds = (performance.now() - started) / 1000;
    log(`one-shot: ${rowCount.toLocaleString('en')} rows in ${seconds.toFixed(1)} s`);
    return {
      expandStatements: expand.length,
      expandMs: round(expandMs),
      statement: update,
      rows: rowCount,
      seconds: round(seconds, 2),
      rowsPerSecond: Math.round(rowCount / seconds),
    };
  } finally {
    await client.end();
  }
}

function latencies(selected) {
  const sorted = selected.map((one) => one.ms).sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return {
    calls: sorted.length,
    p50Ms: round(at(50)),
    p99Ms: round(at(99)),
    maxMs: round(sorted.at(-1)),
  };
}

/** Calls that started in [from, to): req/s, and per kind p50, p99, max and failures. */
function window(from, to) {
  const inWindow = calls.filter((one) => one.started >= from && one.started < to);
  const byKind = { all: inWindow, mutations: inWindow.filter((one) => one.kind !== 'listProjects') };
  for (const kind of Object.keys(MIX)) byKind[kind] = inWindow.filter((one) => one.kind === kind);
  return {
    fromSeconds: round(from / 1000, 2),
    seconds: round((to - from) / 1000, 2),
    callsPerSecond: Math.round(inWindow.length / ((to - from) / 1000)),
    failed: inWindow.filter((one) => !one.ok).length,
    ...Object.fromEntries(Object.entries(byKind).map(([kind, selected]) => [kind, latencies(selected)])),
  };
}

/** Second by second: calls, failures, p99 and the slowest call, and the phase the second began in. */
function timeline() {
  const seconds = [];
  for (const one of calls) {
    const second = Math.floor(one.started / 1000);
    if (one.started > marks.afterEnded) continue;
    seconds[second] ??= [];
    seconds[second].push(one);
  }
  return [...seconds.entries()].map(([second, inSecond = []]) => ({
    second,
    phase: phaseAt(second * 1000),
    calls: inSecond.length,
    failed: inSecond.filter((one) => !one.ok).length,
    p99Ms: latencies(inSecond).p99Ms,
    maxMs: latencies(inSecond).maxMs,
  }));
}

function summarize({ graduation, completion, writes, oneShot, plan, columns, metric }) {
  const windows = {
    before: window(marks.beforeStarted, marks.graduateStarted),
    during: window(marks.graduateStarted, marks.completeEnded),
    graduate: window(marks.graduateStarted, marks.graduateEnded),
    complete: window(marks.completeStarted, marks.completeEnded),
    after: window(marks.completeEnded, marks.afterEnded),
  };
  // Each step of the graduation, as the sampler saw convoy.graduations change.
  const bounds = [{ at: marks.graduateStarted, step: 'check' }, ...stepChanges.filter((change) => change.step)];
  // A step the sampler saw begin only after the command had exited (the last, `columns`, can
  // take less than a sample's 50 ms) had no calls of its own.
  const steps = bounds
    .map((change, index) => ({
      change,
      end: Math.min(bounds[index + 1]?.at ?? marks.graduateEnded, marks.graduateEnded),
    }))
    .filter(({ change, end }) => end > change.at)
    .map(({ change, end }) => ({ step: change.step, ...window(change.at, end) }));
  // The backfill: rows per second over the whole step, and between the first and the last batch
  // as convoy.graduations timed them (its updated_at is each batch's transaction start).
  const backfill = progress.filter((one) => one.step === 'backfill' && one.rowsDone > 0);
  const entered = stepChanges.find((change) => change.step === 'backfill')?.at;
  const left = stepChanges.find((change) => change.at > (entered ?? Infinity) && change.step !== 'backfill')?.at;
  const first = backfill[0];
  // The step after the backfill: its row holds every row done, and its updated_at is when the
  // backfill's last batch had committed.
  const last = progress.find((one) => one.step !== 'backfill' && one.step !== 'expand' && one.at > (first?.at ?? 0));
  const stepSeconds = entered !== undefined && left !== undefined ? (left - entered) / 1000 : null;
  const batchSeconds = first && last ? (last.updatedMs - first.updatedMs) / 1000 : null;
  const backfillRows = last?.rowsDone ?? 0;
  const rowsPerSecond = stepSeconds ? Math.round(backfillRows / stepSeconds) : null;
  const batchRowsPerSecond = batchSeconds ? Math.round((last.rowsDone - first.rowsDone) / batchSeconds) : null;
  const sizes = backfill.map((one) => one.batchSize);

  const waits = [...lockWaits.values()].sort((a, b) => b.waitedMs - a.waitedMs);
  const userWaits = waits.filter((wait) => wait.applicationName === SERVER_APP);
  const longestUserWait = userWaits[0] ?? null;
  const behindGraduation = userWaits.filter((wait) => wait.blockedBy?.includes(GRADUATE_APP));
  const events = {};
  const otherDatabases = {};
  for (const [key, count] of waitEvents) {
    const [phase, ...rest] = key.split(' ');
    const event = rest.pop();
    const app = rest.join(' ');
    if (app.startsWith('other database ')) otherDatabases[phase] = (otherDatabases[phase] ?? 0) + count;
    events[phase] ??= {};
    events[phase][app] ??= {};
    events[phase][app][event] = count;
  }

  const failedCalls = calls.filter((one) => !one.ok).length + stream.errors + stream.reconnects;
  const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
  const results = {
    backfillRowsPerSecond: rowsPerSecond,
    oneShotRowsPerSecond: oneShot.bare.rowsPerSecond,
    backfillToOneShot: ratio(rowsPerSecond, oneShot.bare.rowsPerSecond),
    backfillToOneShotWithExpand: ratio(rowsPerSecond, oneShot.withExpand.rowsPerSecond),
    mutationP99BeforeMs: windows.before.mutations.p99Ms,
    mutationP99DuringMs: windows.during.mutations.p99Ms,
    mutationP99DuringToBefore: ratio(windows.during.mutations.p99Ms, windows.before.mutations.p99Ms),
    longestLockWaitMs: round(longestUserWait?.waitedMs ?? 0),
    longestUserCallDuringMs: windows.during.all.maxMs,
    failedCalls,
  };
  const met = {
    backfillToOneShot: results.backfillToOneShot >= TARGETS.backfillToOneShot,
    mutationP99DuringToBefore: results.mutationP99DuringToBefore <= TARGETS.mutationP99DuringToBefore,
    longestLockWaitMs: results.longestLockWaitMs < TARGETS.longestLockWaitMs,
    failedCalls: failedCalls === TARGETS.failedCalls,
  };
  return {
    date: new Date().toISOString(),
    commit,
    machine: describeMachine(postgresVersion),
    workload: {
      users: USERS,
      projects: projectsBefore,
      callsPerSecond: RATE,
      mix: MIX,
      touchedProjects: TOUCHED_PROJECTS,
      liveQueries: SUBSCRIPTIONS,
      windowSeconds: WINDOW_MS / 1000,
      warmUpSeconds: WARM_UP_MS / 1000,
      sampleEveryMs: SAMPLE_EVERY_MS,
      seedSeconds: round(seedSeconds),
    },
    targets: TARGETS,
    results,
    met,
    windows,
    steps,
    graduation: {
      exitCode: graduation.code,
      seconds: round((marks.graduateEnded - marks.graduateStarted) / 1000, 2),
      completeExitCode: completion.code,
      completeSeconds: round((marks.completeEnded - marks.completeStarted) / 1000, 2),
      backfill: {
        rows: backfillRows,
        stepSeconds: round(stepSeconds, 2),
        rowsPerSecond,
        betweenFirstAndLastBatch: { seconds: round(batchSeconds, 2), rowsPerSecond: batchRowsPerSecond },
        batchSize: { first: sizes[0], min: Math.min(...sizes), max: Math.max(...sizes), last: sizes.at(-1) },
      },
      output: graduation.output,
      completeOutput: completion.output,
      columnsAfter: columns,
      plan,
    },
    oneShot,
    locks: {
      samples,
      longestUserWait,
      longestUserWaitBehindGraduation: behindGraduation[0] ?? null,
      userWaitsSeen: userWaits.length,
      userWaitsSeenBehindGraduation: behindGraduation.length,
      userWaitsSeenByPhase: Object.fromEntries(
        [...new Set(userWaits.map((wait) => wait.phase))].map((phase) => [
          phase,
          userWaits.filter((wait) => wait.phase === phase).length,
        ]),
      ),
      longestWaits: waits.slice(0, 10),
      waitEventSamples: events,
      // Active backends of other databases seen by the sampler, by phase (0 on a quiet machine).
      otherDatabasesActive: otherDatabases,
    },
    writes,
    liveQueries: stream,
    server: {
      conflictsRetried: metric('convoy_mutation_conflicts_retried_total'),
      callsRunAgainAfterTableMoved: metric('convoy_storage_changes_retried_total'),
    },
    failures,
    timeline: timeline(),
  };
}

function printSummary(report) {
  const { machine, windows, results, met, graduation } = report;
  console.log(
    `\nconvoy graduate projects, ${report.workload.projects.toLocaleString('en')} projects, ${RATE} calls/s` +
      ` — ${machine.cpus} CPUs, Node ${machine.node}, Postgres ${machine.postgres}`,
  );
  console.table(
    Object.fromEntries(
      [...Object.entries(windows), ...report.steps.map((step) => [`  step ${step.step}`, step])].map(([name, w]) => [
        name,
        {
          s: w.seconds,
          'calls/s': w.callsPerSecond,
          failed: w.failed,
          'list p50/p99': `${w.listProjects.p50Ms} / ${w.listProjects.p99Ms}`,
          'create p50/p99': `${w.createProject.p50Ms} / ${w.createProject.p99Ms}`,
          'touch p50/p99': `${w.touchProject.p50Ms} / ${w.touchProject.p99Ms}`,
          'mutation p99': w.mutations.p99Ms,
          'max ms': w.all.maxMs,
        },
      ]),
    ),
  );
  const mark = (ok) => (ok ? 'met' : 'MISSED');
  console.log(
    `backfill ${results.backfillRowsPerSecond?.toLocaleString('en')} rows/s (${graduation.backfill.rows.toLocaleString('en')} rows in ${graduation.backfill.stepSeconds} s) ` +
      `against one-shot ${results.oneShotRowsPerSecond.toLocaleString('en')} rows/s: ${results.backfillToOneShot}× ` +
      `(target ≥ ${TARGETS.backfillToOneShot}×: ${mark(met.backfillToOneShot)}); against the one-shot with expand's trigger and constraints ` +
      `${report.oneShot.withExpand.rowsPerSecond.toLocaleString('en')} rows/s: ${results.backfillToOneShotWithExpand}×`,
  );
  console.log(
    `mutation p99 ${results.mutationP99DuringMs} ms during against ${results.mutationP99BeforeMs} ms before: ${results.mutationP99DuringToBefore}× ` +
      `(target ≤ ${TARGETS.mutationP99DuringToBefore}×: ${mark(met.mutationP99DuringToBefore)})`,
  );
  const wait = report.locks.longestUserWait;
  console.log(
    `longest lock wait of a user call ${results.longestLockWaitMs} ms (target < ${TARGETS.longestLockWaitMs} ms: ${mark(met.longestLockWaitMs)})` +
      (wait ? `: ${wait.locktype} ${wait.mode} on ${wait.relation ?? '-'}, behind ${wait.blockedBy}` : '') +
      `; longest user call during the run ${results.longestUserCallDuringMs} ms`,
  );
  console.log(
    `failed calls ${results.failedCalls} (target 0: ${mark(met.failedCalls)}); writes ${JSON.stringify(report.writes)}`,
  );
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}
