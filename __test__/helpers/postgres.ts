/**
 * A database of its own for each test, on the server at `CONVOY_TEST_DATABASE_URL` (default: the
 * local Postgres). Tests never depend on leftovers: `drop()` removes it.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const serverUrl = process.env.CONVOY_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  query<T extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function createDatabase(): Promise<TestDatabase> {
  const name = `convoy_test_${randomUUID().replaceAll('-', '')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = serverUrl.replace(/\/[^/]*$/, `/${name}`);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection that DROP DATABASE … WITH (FORCE) terminates is no test failure.
  pool.on('error', () => {});
  return {
    name,
    url,
    async query(text, values) {
      return (await pool.query(text, values as any[])).rows;
    },
    async drop() {
      await pool.end();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
