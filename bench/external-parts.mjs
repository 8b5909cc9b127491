/**
 * Where the change triggers' cost to a writer outside Convoy goes (docs/benchmarks.md § Writes
 * from outside Convoy): pgbench inserting one project per statement into a copy of the database
 * bench/external.mjs leaves (`convoy_bench`, triggers installed by `convoy migrate`), with the
 * insert trigger taken apart step by step. No Convoy server runs; Postgres alone.
 *
 *   node bench/external-parts.mjs [--seconds 5] [--clients 4]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { describeMachine, gitCommit, writeResults } from './measure.mjs';
import { databaseUrl, postgresUrl } from './seed.mjs';

const { values: options } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, clients: { type: 'string', default: '4' } },
});
const SOURCE = 'convoy_bench';
const COPY = 'convoy_bench_external_parts';
const log = (message) => console.log(`bench: ${message}`);
const url = databaseUrl(COPY);

const admin = new pg.Client({ connectionString: postgresUrl });
await admin.connect();
await admin.query(`DROP DATABASE IF EXISTS "${COPY}" WITH (FORCE)`);
await admin.query(`CREATE DATABASE "${COPY}" TEMPLATE "${SOURCE}"`);
const db = new pg.Client({ connectionString: url });
await db.connect();
const postgresVersion = (await db.query('SHOW server_version')).rows[0].server_version;
// The function as `convoy migrate` installed it, its SECURITY DEFINER and search_path included.
const installed = (
  await db.query("SELECT pg_get_functiondef(oid) AS definition FROM pg_proc WHERE proname = 'notify_projects'")
).rows[0]?.definition;
if (!installed) throw new Error(`${SOURCE} has no convoy.notify_projects(): run bench/external.mjs first`);
if (!installed.includes('INSERT INTO convoy.changes')) {
  throw new Error(`${SOURCE}'s convoy.notify_projects() fills no queue: run bench/external.mjs on this commit first`);
}
const {
  rows: [{ id: userId }],
} = await db.query('SELECT id::text AS id FROM users ORDER BY id DESC LIMIT 1');

const INSERT_TRIGGER = `CREATE OR REPLACE TRIGGER convoy_notify_insert AFTER INSERT ON projects
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  WHEN (current_setting('convoy.writer', true) IS DISTINCT FROM 'convoy') EXECUTE FUNCTION convoy.notify_projects()`;
const setFunction = (body) =>
  db.query(`CREATE OR REPLACE FUNCTION convoy.notify_projects() RETURNS trigger LANGUAGE plpgsql AS $fn$${body}$fn$`);
/** Installs the function (`define` creates it) and the insert trigger over it. */
const withTrigger = (define) => async () => {
  await define();
  await db.query(INSERT_TRIGGER);
};
// Only INSERT triggers fire for an INSERT; the others stay as they are throughout.
const VARIANTS = {
  none: {
    label: 'no insert trigger',
    setup: () => db.query('DROP TRIGGER IF EXISTS convoy_notify_insert ON projects'),
  },
  skipped: {
    label: "the trigger, its WHEN false (as for Convoy's own transactions): the transition table alone",
    env: { PGOPTIONS: '-c convoy.writer=convoy' },
    setup: withTrigger(() => db.query(installed)),
  },
  empty: {
    label: 'the trigger calling a PL/pgSQL function that returns at once',
    setup: withTrigger(() => setFunction('BEGIN RETURN NULL; END')),
  },
  full: {
    label: 'the whole function (as installed): each row copied into convoy.changes, which nobody drains here',
    setup: withTrigger(() => db.query(installed)),
  },
  notifying: {
    label: 'the design before: a function that NOTIFYs each statement (one lock for the cluster at every commit)',
    setup: withTrigger(() => setFunction(`BEGIN PERFORM pg_notify('convoy_changes', TG_TABLE_NAME); RETURN NULL; END`)),
  },
};

const script = path.join(mkdtempSync(path.join(os.tmpdir(), 'convoy-bench-')), 'insert.sql');
writeFileSync(
  script,
  `INSERT INTO projects (id, data) VALUES (gen_random_uuid(), jsonb_build_object('name', 'pgbench', 'userId', '${userId}', 'status', 'draft', 'createdAt', 1));\n`,
);
function pgbench(env = {}) {
  const result = spawnSync(
    'pgbench',
    ['-n', '-M', 'prepared', '-c', options.clients, '-j', '2', '-T', options.seconds, '-f', script, url],
    { encoding: 'utf8', env: { ...process.env, ...env } },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(result.stdout ?? '')?.[1] ?? Number.NaN);
  if (!Number.isFinite(tps)) throw new Error(`pgbench failed: ${result.stderr}`);
  return Math.round(tps);
}

const names = Object.keys(VARIANTS);
const tps = Object.fromEntries(names.map((name) => [name, []]));
try {
  for (const order of [names, [...names].reverse()]) {
    for (const name of order) {
      const variant = VARIANTS[name];
      await variant.setup();
      await db.query('CHECKPOINT');
      let listener = null;
      if (variant.listen) {
        listener = new pg.Client({ connectionString: url });
        await listener.connect();
        await listener.query('LISTEN convoy_changes');
        listener.on('notification', () => {});
      }
      tps[name].push(pgbench(variant.env));
      await listener?.end();
      log(`${variant.label}: ${tps[name].at(-1)} inserts/s`);
    }
  }
} finally {
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS "${COPY}" WITH (FORCE)`);
  await admin.end();
}
const mean = (list) => Math.round(list.reduce((sum, value) => sum + value, 0) / list.length);
const base = mean(tps.none);
const report = {
  benchmark: "the change triggers' cost to an outside writer, by part (issue 14)",
  date: new Date().toISOString(),
  commit: gitCommit(),
  machine: describeMachine(postgresVersion),
  workload: `pgbench -M prepared -c ${options.clients} -j 2 -T ${options.seconds}, one INSERT of a project per transaction, on a copy of ${SOURCE}; each variant twice, in the order listed and then reversed`,
  variants: Object.fromEntries(
    names.map((name) => [
      name,
      {
        label: VARIANTS[name].label,
        insertsPerSecond: mean(tps[name]),
        rounds: tps[name],
        ratio: Math.round((mean(tps[name]) / base) * 100) / 100,
      },
    ]),
  ),
};
console.log(JSON.stringify(report.variants, null, 2));
console.log(`written to ${writeResults('external-parts-latest.json', report)}`);
