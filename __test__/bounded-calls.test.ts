/**
 * Issue 15, finding 1: every call is bounded end to end. A function's timeout reaches Postgres —
 * a cancel request when it passes, a `statement_timeout` behind it — so the connection is free at
 * the timeout, not when the statement would have ended; a filter too wide to plan is refused
 * before Postgres sees it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';

const suite = behaviourSuite();

async function call(kind: 'query' | 'mutation', name: string, args: object = {}) {
  const started = performance.now();
  const response = await fetch(`${suite.server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: name, args }),
  });
  return { status: response.status, body: (await response.json()) as any, ms: performance.now() - started };
}

/** Backends of this database still sleeping in `pg_sleep`. */
async function sleepers(): Promise<number> {
  const rows = await suite.database.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()",
  );
  return rows[0].n;
}

describe('finding 1: the function timeout bounds the time spent in Postgres', { timeout: 60_000 }, () => {
  test('a 2 s mutation sleeping 8 s in Postgres is answered at about 2 s, and its statement stops then', async () => {
    const slept = await call('mutation', 'limits:sleepInPostgres', { seconds: 8 });
    assert.equal(slept.status, 500);
    assert.equal(slept.body.error.code, 'INTERNAL');
    assert.ok(slept.ms >= 1_900 && slept.ms < 4_000, `answered after ${Math.round(slept.ms)} ms`);
    // Cancelled, not left to sleep out its 8 s on a connection nobody can use.
    const deadline = Date.now() + 1_000;
    while ((await sleepers()) > 0) {
      assert.ok(Date.now() < deadline, 'the statement still runs in Postgres a second after the timeout');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const next = await call('mutation', 'limits:readThenWait', { ms: 0 });
    assert.equal(next.status, 200);
  });

  test('a client that goes away stops its statement in Postgres too', async () => {
    const abort = new AbortController();
    const pending = fetch(`${suite.server.url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'limits:sleepInPostgres', args: { seconds: 8 } }),
      signal: abort.signal,
    }).catch(() => null);
    let deadline = Date.now() + 2_000;
    while ((await sleepers()) === 0) {
      assert.ok(Date.now() < deadline, 'the statement never started');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const gone = Date.now();
    abort.abort();
    await pending;
    deadline = Date.now() + 1_000;
    while ((await sleepers()) > 0) {
      assert.ok(Date.now() < deadline, 'the statement still runs a second after its client left');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(Date.now() - gone < 1_500);
  });

  test('eight of them, one per pooled connection, starve no other mutation', async () => {
    const sleeping = Array.from({ length: 8 }, () => call('mutation', 'limits:sleepInPostgres', { seconds: 8 }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const others = await Promise.all(
      Array.from({ length: 4 }, () => call('mutation', 'limits:readThenWait', { ms: 0 })),
    );
    for (const other of others) {
      assert.equal(other.status, 200, JSON.stringify(other.body));
      // At worst they wait for the sleepers' timeout, 2 s, not for their 8 s.
      assert.ok(other.ms < 4_000, `another mutation waited ${Math.round(other.ms)} ms`);
    }
    for (const slept of await Promise.all(sleeping)) assert.equal(slept.status, 500);
    assert.equal(await sleepers(), 0);
  });

  test('a filter past the width limit is refused naming the limit; one at the limit is answered', async () => {
    const wide = await call('query', 'limits:anyOfTexts', { width: 1_001 });
    assert.equal(wide.status, 400);
    assert.equal(wide.body.error.code, 'INVALID_ARGS');
    assert.match(wide.body.error.message, /1001 comparisons; at most 1000/);
    const atLimit = await call('query', 'limits:anyOfTexts', { width: 1_000 });
    assert.equal(atLimit.status, 200, JSON.stringify(atLimit.body));
    assert.equal(atLimit.body.value, 0);
    assert.ok(atLimit.ms < 5_000, `a filter of 1000 took ${Math.round(atLimit.ms)} ms`);
  });
});
