/**
 * A server listening on every interface (`HOST=0.0.0.0` or `HOST=::`, as in a container) names
 * a loopback URL it can be reached on, so that the dashboard's own client of the app's server
 * works (`http://:::3737` was no URL at all).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Dashboard, prepareDashboard, type RunningDashboard } from '../src/dashboard/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { behaviourApp } from './helpers/behaviour-suite.js';
import { callOk } from './helpers/call.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

for (const [host, reached] of [
  ['::', 'http://[::1]:'],
  ['0.0.0.0', 'http://127.0.0.1:'],
] as const) {
  describe(`HOST=${host}`, { timeout: 60_000 }, () => {
    let database: TestDatabase;
    let server: ConvoyServer;
    let dashboard: Dashboard;
    let running: RunningDashboard;

    before(async () => {
      database = await createDatabase();
      await createExistingTables(database);
      dashboard = prepareDashboard({ dev: true });
      server = await startConvoy(
        { appDir: behaviourApp, databaseUrl: database.url, port: 0, host, dev: true, log: () => {} },
        dashboard.extensions,
      );
      running = await dashboard.start(server, { port: 0, host });
    });
    after(async () => {
      await running?.stop();
      await server?.stop();
      await database?.drop();
    });

    test('the server names a loopback URL it answers on, and the dashboard reaches the server through it', async () => {
      assert.equal(server.url, `${reached}${server.port}`);
      await callOk(server.url, 'mutation', 'notes:add', { text: `through ${host}` });
      assert.equal(running.url, `${reached}${running.port}/_dashboard/`);
      // Read through the dashboard's internal client of the app's server (server.url).
      const page = await fetch(`${running.url}api/tables/notes/documents`);
      const body = (await page.json()) as any;
      assert.equal(page.status, 200, JSON.stringify(body));
      assert.deepEqual(
        body.page.map((note: { text: string }) => note.text),
        [`through ${host}`],
      );
    });
  });
}
