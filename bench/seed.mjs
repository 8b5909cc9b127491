/**
 * A fresh `convoy_bench` database holding the PRODUCT.md example's data at scale: 5,000 users with
 * 20 projects each. The tables and the index are exactly what Convoy's schema sync creates, so the
 * Convoy server starts on them as on its own (SPEC.md §3).
 *
 *   node bench/seed.mjs            # seeds on BENCH_POSTGRES_URL (default: the local Postgres)
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';

export const USERS = 5_000;
export const PROJECTS_PER_USER = 20;

export const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
// Plain text unless BENCH_POSTGRES_URL says otherwise, as in every run recorded before TLS was
// built in (the hand-written servers' pg connects in plain text too); bench/tls.mjs measures TLS.
const benchUrl = new URL(postgresUrl);
benchUrl.pathname = '/convoy_bench';
if (!benchUrl.searchParams.has('sslmode')) benchUrl.searchParams.set('sslmode', 'disable');
export const benchDatabaseUrl = benchUrl.toString();

const managedTable = (name) => `CREATE TABLE "${name}" (
  id uuid PRIMARY KEY,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

// Convoy writes UUIDv7 ids, whose first 48 bits are the creation time in milliseconds; Postgres 15
// has no uuidv7(), so this stamps that time onto a random UUID and sets the version nibble to 7.
const UUID_V7 = `CREATE FUNCTION pg_temp.uuid_v7(at timestamptz) RETURNS uuid LANGUAGE sql AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM at) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$`;

// Rows go in in creation order, as an app writes them, so one user's projects are spread over the
// table rather than stored side by side. `createdAt` is what the example's mutations store
// (`Date.now()`); refs are plain UUID strings (SPEC.md §3).
const INSERT_USERS = `
INSERT INTO "users" (id, data, created_at)
SELECT pg_temp.uuid_v7(at),
       jsonb_build_object('name', 'User ' || n, 'email', 'user' || n || '@example.com',
                          'createdAt', floor(extract(epoch FROM at) * 1000)),
       at
FROM (SELECT n, timestamptz '2025-01-01' + random() * interval '30 days' AS at
      FROM generate_series(1, $1::int) AS n) AS users
ORDER BY at`;

const INSERT_PROJECTS = `
INSERT INTO "projects" (id, data, created_at)
SELECT pg_temp.uuid_v7(at),
       jsonb_build_object('name', 'Project ' || n, 'userId', user_id::text,
                          'status', (ARRAY['draft', 'active', 'archived'])[1 + n % 3],
                          'createdAt', floor(extract(epoch FROM at) * 1000)),
       at
FROM (SELECT u.id AS user_id, n, u.created_at + random() * interval '300 days' AS at
      FROM "users" AS u, generate_series(1, $1::int) AS n) AS projects
ORDER BY at`;

export async function seed() {
  await withClient(postgresUrl, async (admin) => {
    await admin.query('DROP DATABASE IF EXISTS convoy_bench WITH (FORCE)');
    await admin.query('CREATE DATABASE convoy_bench');
  });
  await withClient(benchDatabaseUrl, async (db) => {
    await db.query(managedTable('users'));
    await db.query(managedTable('projects'));
    await db.query(UUID_V7);
    await db.query(INSERT_USERS, [USERS]);
    await db.query(INSERT_PROJECTS, [PROJECTS_PER_USER]);
    // Built after the rows are in: faster than keeping it up to date row by row.
    await db.query(
      `CREATE INDEX "${convoyIndexName('projects', 'by_userId', ['userId'])}" ON "projects" ((data->'userId'))`,
    );
    // Done now rather than by autovacuum in the middle of a measurement: hint bits, the
    // visibility map, and the planner's statistics.
    await db.query('VACUUM (FREEZE, ANALYZE)');
  });
  return benchDatabaseUrl;
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
  const started = performance.now();
  const url = await seed();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`seeded ${USERS} users and ${USERS * PROJECTS_PER_USER} projects into ${url} in ${seconds} s`);
}
