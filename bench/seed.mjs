/**
 * A fresh `convoy_bench` database holding the PRODUCT.md example's data at scale: 5,000 users with
 * 20 projects each (or as many users as `users` says: bench/graduate.mjs seeds 50,000, 1M projects). The tables and the index are exactly what Convoy's schema sync creates, so the
 * Convoy server starts on them as on its own (SPEC.md §3). The rows are the same on every run and
 * in either storage: documents, or relational tables (bench/relational.mjs).
 *
 *   node bench/seed.mjs                 # seeds on BENCH_POSTGRES_URL (default: the local Postgres)
 *   node bench/seed.mjs --relational    # convoy_bench_relational, every table relational
 *   node bench/seed.mjs --users 50000   # 50,000 users × 20: 1,000,000 projects
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

export const USERS = 5_000;
export const PROJECTS_PER_USER = 20;

export const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
// Plain text unless BENCH_POSTGRES_URL says otherwise, as in every run recorded before TLS was
// built in (the hand-written servers' pg connects in plain text too); bench/tls.mjs measures TLS.
export function databaseUrl(database) {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  if (!url.searchParams.has('sslmode')) url.searchParams.set('sslmode', 'disable');
  return url.toString();
}
export const benchDatabaseUrl = databaseUrl('convoy_bench');

const managedTable = (name) => `CREATE TABLE "${name}" (
  id uuid PRIMARY KEY,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

// Every value is a function of the row's number (an md5 of it stands in for random()), so each
// seed holds the very same rows — ids included — whatever the storage: bench/relational.mjs
// compares a document database with a relational one answer for answer.
const DETERMINISTIC = [
  // A number in [0, 1) drawn from `key`: the first 52 bits of its md5.
  `CREATE FUNCTION pg_temp.fraction(key text) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT ('x' || substr(md5(key), 1, 13))::bit(52)::bigint / 4503599627370496.0
  $$`,
  // Convoy writes UUIDv7 ids, whose first 48 bits are the creation time in milliseconds; Postgres 15
  // has no uuidv7(), so this stamps that time onto the md5 of `key` and sets the version (7) and
  // variant bits.
  `CREATE FUNCTION pg_temp.uuid_v7(at timestamptz, key text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(set_byte(set_byte(
      overlay(decode(md5(key), 'hex')
              PLACING substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      6, (get_byte(decode(md5(key), 'hex'), 6) & 15) | 112),
      8, (get_byte(decode(md5(key), 'hex'), 8) & 63) | 128), 'hex')::uuid
  $$`,
];

// The rows, in creation order, as an app writes them, so one user's projects are spread over the
// table rather than stored side by side: users created over 30 days, each user's projects over
// the 300 days after it. `createdAt` is what the example's mutations store (`Date.now()`); refs
// are the user's id (in a document, a plain UUID string: SPEC.md §3).
const USER_ROWS = `
SELECT n, pg_temp.uuid_v7(at, 'user ' || n) AS id, at, 'User ' || n AS name, 'user' || n || '@example.com' AS email,
       floor(extract(epoch FROM at) * 1000) AS created_ms
FROM (SELECT n, timestamptz '2025-01-01' + pg_temp.fraction('user ' || n) * interval '30 days' AS at
      FROM generate_series(1, $1::int) AS n) AS users`;

const PROJECT_ROWS = `
SELECT pg_temp.uuid_v7(at, 'project ' || user_n || ' ' || k) AS id, at, 'Project ' || k AS name, user_id,
       (ARRAY['draft', 'active', 'archived'])[1 + k % 3] AS status, floor(extract(epoch FROM at) * 1000) AS created_ms
FROM (SELECT users.n AS user_n, users.id AS user_id, k,
             users.at + pg_temp.fraction('project ' || users.n || ' ' || k) * interval '300 days' AS at
      FROM (${USER_ROWS}) AS users, generate_series(1, $2::int) AS k) AS projects`;

// The same rows into each storage: `data` of a document table, or the columns `convoy migrate`
// creates for a relational one (docs/postgres.md § A relational table).
const INSERTS = {
  documents: [
    `INSERT INTO "users" (id, data, created_at)
     SELECT id, jsonb_build_object('name', name, 'email', email, 'createdAt', created_ms), at
     FROM (${USER_ROWS}) AS rows ORDER BY at, id`,
    `INSERT INTO "projects" (id, data, created_at)
     SELECT id, jsonb_build_object('name', name, 'userId', user_id::text, 'status', status, 'createdAt', created_ms), at
     FROM (${PROJECT_ROWS}) AS rows ORDER BY at, id`,
  ],
  relational: [
    `INSERT INTO "users" (id, created_at, name, email, created_at_field)
     SELECT id, at, name, email, created_ms FROM (${USER_ROWS}) AS rows ORDER BY at, id`,
    `INSERT INTO "projects" (id, created_at, name, user_id, status, created_at_field)
     SELECT id, at, name, user_id, status, created_ms FROM (${PROJECT_ROWS}) AS rows ORDER BY at, id`,
  ],
};

/**
 * Seeds a fresh database (dropped and created anew) and resolves with its URL. `storage`:
 * `documents` creates the tables as Convoy's schema sync would, by hand; `relational` has
 * `convoy migrate` create bench/app's tables with every table `.relational()`, then fills them.
 */
export async function seed({
  database = 'convoy_bench',
  storage = 'documents',
  users = USERS,
  projectsPerUser = PROJECTS_PER_USER,
} = {}) {
  const url = databaseUrl(database);
  await withClient(postgresUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${database}"`);
  });
  if (storage === 'relational') {
    // Imported here: servers.mjs stops its children when the process exits.
    const { benchApp, convoyCli, SERVERS } = await import('./servers.mjs');
    const { env } = SERVERS['convoy-bench-app-relational'];
    convoyCli(benchApp, 'build', url, env);
    convoyCli(benchApp, 'migrate', url, env);
  } else if (storage !== 'documents') {
    throw new Error(`seed: storage is documents or relational, not ${storage}`);
  }
  await withClient(url, async (db) => {
    if (storage === 'documents') {
      await db.query(managedTable('users'));
      await db.query(managedTable('projects'));
    }
    for (const statement of DETERMINISTIC) await db.query(statement);
    const [insertUsers, insertProjects] = INSERTS[storage];
    await db.query(insertUsers, [users]);
    await db.query(insertProjects, [users, projectsPerUser]);
    if (storage === 'documents') {
      // Built after the rows are in: faster than keeping it up to date row by row.
      await db.query(
        `CREATE INDEX "${convoyIndexName('projects', 'by_userId', ['userId'])}" ON "projects" ((data->'userId'))`,
      );
    }
    // Done now rather than by autovacuum in the middle of a measurement: hint bits, the
    // visibility map, and the planner's statistics.
    await db.query('VACUUM (FREEZE, ANALYZE)');
  });
  return url;
}

/**
 * The name Convoy's schema sync gives an index (`Index::postgres_name` in
 * crates/convoy_core/src/schema.rs): table, index and a 32-bit FNV-1a of the definition. With the
 * same name, sync finds the index already built; were the two to drift apart, sync would build a
 * second, identical index at the server's start, which changes nothing the benchmark measures.
 */
function convoyIndexName(table, index, fields) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(`${table}:${fields.join(',')}`)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const suffix = (hash & 0xffffffffn).toString(16).padStart(8, '0');
  return `${`${table}_${index}`.slice(0, 54)}_${suffix}`;
}

async function withClient(url, use) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { relational: { type: 'boolean', default: false }, users: { type: 'string', default: String(USERS) } },
  });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 1) throw new Error('--users takes a whole number of users');
  const started = performance.now();
  const url = await (values.relational
    ? seed({ database: 'convoy_bench_relational', storage: 'relational', users })
    : seed({ users }));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`seeded ${users} users and ${users * PROJECTS_PER_USER} projects into ${url} in ${seconds} s`);
}
