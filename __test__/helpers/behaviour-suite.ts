/**
 * The behaviour-app fixture served on a database of its own for one suite: call it inside
 * `describe`; the database and the server are made before the suite's tests and dropped after.
 */
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConvoyOptions } from '../../src/server/options.js';
import { type ConvoyServer, startConvoy } from '../../src/server/runtime.js';
import { createExistingTables } from './fixture.js';
import { createDatabase, type TestDatabase } from './postgres.js';

export const behaviourApp = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'behaviour-app');

export interface BehaviourSuite {
  readonly database: TestDatabase;
  readonly server: ConvoyServer;
}

/** `options` may depend on the database (a proxy in front of it, say). */
export function behaviourSuite(
  options: (database: TestDatabase) => Partial<ConvoyOptions> = () => ({}),
): BehaviourSuite {
  let database: TestDatabase | undefined;
  let server: ConvoyServer | undefined;
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({
      appDir: behaviourApp,
      databaseUrl: database.url,
      port: 0,
      log: () => {},
      ...options(database),
    });
  });
  after(async () => {
    await server?.stop();
    await database?.drop();
  });
  return {
    get database() {
      if (!database) throw new Error('the suite has not started');
      return database;
    },
    get server() {
      if (!server) throw new Error('the suite has not started');
      return server;
    },
  };
}
