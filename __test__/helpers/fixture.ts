/** What the behaviour-app fixture expects of its database before it starts. */
import type { TestDatabase } from './postgres.js';

/** The existing relational table the fixture declares `.unmanaged()`. */
export async function createExistingTables(database: TestDatabase): Promise<void> {
  await database.query(
    'CREATE TABLE events (id serial PRIMARY KEY, event text NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  );
}
