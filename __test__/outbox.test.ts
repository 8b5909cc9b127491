/**
 * The outbox's rules, on its own (a connection whose state the test sets): a mutation whose first
 * attempt goes unanswered keeps its place before mutations called after it; while the stream
 * says the server is gone a held mutation waits however long, and while it says the server is
 * there but the server answers UNAVAILABLE (its database is down) it gives up after a few tries
 * instead of holding every later mutation forever. With the real server: optimistic-and-offline.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Outbox } from '../src/client/outbox.js';
import type { ConnectionState } from '../src/client/stream.js';
import { ConvoyError } from '../src/values/errors.js';

class TestConnection {
  connectionState: ConnectionState = 'open';
  private readonly listeners = new Set<(state: ConnectionState) => void>();
  onStateChange(listener: (state: ConnectionState) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  resubscribed() {
    return Promise.resolve();
  }
  set(state: ConnectionState) {
    this.connectionState = state;
    for (const listener of [...this.listeners]) listener(state);
  }
}

const unavailable = () => new ConvoyError('UNAVAILABLE', 'could not reach the server');
const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the outbox', { timeout: 30_000 }, () => {
  test('a mutation in flight when the server went away keeps its place before one called after it', async () => {
    const connection = new TestConnection();
    const outbox = new Outbox(connection);
    const applied: string[] = [];
    let serverUp = true;
    const sender = (name: string) => async () => {
      if (!serverUp) throw unavailable();
      applied.push(name);
      return name;
    };
    // A is called first and is on its way when the server goes; X is called while it is gone.
    const placeA = outbox.place();
    serverUp = false;
    connection.set('reconnecting');
    assert.ok(outbox.mustWait, 'offline: a new mutation waits');
    const x = outbox.hold(outbox.place(), sender('X'));
    // A's first attempt comes back unanswered only now.
    const a = outbox.hold(placeA, sender('A'), true);
    await tick(200);
    assert.deepEqual(applied, [], 'nothing is sent while the stream says the server is gone');
    serverUp = true;
    connection.set('open');
    assert.deepEqual(await Promise.all([a, x]), ['A', 'X']);
    assert.deepEqual(applied, ['A', 'X'], 'in the order they were called');
  });

  test('while the stream says the server is gone, a held mutation waits without giving up', async () => {
    const connection = new TestConnection();
    const outbox = new Outbox(connection);
    connection.set('reconnecting');
    let attempts = 0;
    const held = outbox.hold(outbox.place(), async () => {
      attempts++;
      if (connection.connectionState !== 'open') throw unavailable();
      return 'sent';
    });
    // Up and down again several times: unanswered attempts while it is down do not count.
    for (let i = 0; i < 6; i++) {
      connection.set('open');
      connection.set('reconnecting');
      await tick(50);
    }
    connection.set('open');
    assert.equal(await held, 'sent');
    assert.ok(attempts >= 1);
  });

  test('a server that answers UNAVAILABLE while the stream is open is given up on after a few tries', async () => {
    const connection = new TestConnection();
    const outbox = new Outbox(connection);
    const started = Date.now();
    const stuck = outbox.hold(outbox.place(), async () => {
      throw unavailable();
    });
    const next = outbox.hold(outbox.place(), async () => 'next');
    await assert.rejects(stuck, (error) => error instanceof ConvoyError && error.code === 'UNAVAILABLE');
    assert.ok(Date.now() - started < 10_000, 'within seconds');
    assert.equal(await next, 'next', 'the one after it is not held forever');
    assert.ok(!outbox.mustWait);
  });

  test('an answer that is an error is the caller’s at once, not retried', async () => {
    const connection = new TestConnection();
    const outbox = new Outbox(connection);
    let attempts = 0;
    const refused = outbox.hold(outbox.place(), async () => {
      attempts++;
      throw new ConvoyError('INVALID_ARGS', 'no');
    });
    await assert.rejects(refused, /no/);
    assert.equal(attempts, 1);
  });
});
