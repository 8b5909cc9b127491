/**
 * The call observer (the dashboard's log) is a tool's: when it throws, as it starts or as a call
 * ends, or rejects, the call is answered as without it, its afterCommit callbacks still run, and
 * the failure is logged; Node never sees an unhandled rejection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallObserver } from '../src/server/extensions.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { behaviourApp } from './helpers/behaviour-suite.js';
import { callOk } from './helpers/call.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

describe('a failing call observer changes no call', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let server: ConvoyServer;
  const logged: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let mode: 'observe throws' | 'ended throws' | 'ended rejects' = 'observe throws';

  const observe: CallObserver = () => {
    if (mode === 'observe throws') throw new Error('observe broke');
    if (mode === 'ended throws') {
      return () => {
        throw new Error('ended broke');
      };
    }
    return (async () => {
      throw new Error('ended rejected');
    }) as () => void;
  };

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy(
      { appDir: behaviourApp, databaseUrl: database.url, port: 0, log: (line) => logged.push(line) },
      { functions: new Map(), secret: 'observer-test-secret', observe },
    );
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.stop();
    await database?.drop();
  });

  for (const failing of ['observe throws', 'ended throws', 'ended rejects'] as const) {
    test(`${failing}: queries and mutations are answered, afterCommit runs, the failure is logged`, async () => {
      mode = failing;
      logged.length = 0;
      const text = `after ${failing}`;
      assert.equal(await callOk(server.url, 'mutation', 'notes:addWithEffect', { text, refuse: false }), text);
      const refused = await fetch(`${server.url}/api/mutation`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: 'notes:addWithEffect', args: { text: 'refused', refuse: true } }),
      });
      assert.equal(((await refused.json()) as any).error.code, 'REFUSED');
      // afterCommit callbacks run after the answer: wait for this one.
      const deadline = Date.now() + 5_000;
      while (!(await callOk(server.url, 'query', 'notes:effectsSeen', {})).includes(text)) {
        assert.ok(Date.now() < deadline, 'the afterCommit callback ran');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(
        logged.some((line) => line.includes('the call observer failed')),
        `logged: ${JSON.stringify(logged)}`,
      );
      assert.deepEqual(unhandled, []);
    });
  }
});
