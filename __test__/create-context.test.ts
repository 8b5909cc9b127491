/**
 * Issue 16: `createContext` refusing a request with a plain `Error` — what JWT libraries throw for
 * a bad token — answers 401 `UNAUTHORIZED`, on calls and on sync streams, not 500.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';

const suite = behaviourSuite();

describe('createContext that throws a plain Error', () => {
  test('is 401 UNAUTHORIZED for a call and for a stream, naming what it said', async () => {
    const called = await fetch(`${suite.server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer forged' },
      body: JSON.stringify({ path: 'notes:list', args: {} }),
    });
    assert.equal(called.status, 401);
    const body = (await called.json()) as any;
    assert.equal(body.error.code, 'UNAUTHORIZED');
    assert.match(body.error.message, /invalid signature/);
    const stream = await fetch(`${suite.server.url}/api/sync`, {
      headers: { accept: 'text/event-stream', authorization: 'Bearer forged' },
    });
    assert.equal(stream.status, 401);
    await stream.body?.cancel();
  });
});
