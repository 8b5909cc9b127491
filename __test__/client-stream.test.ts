/**
 * The client's stream, piece by piece and without a server: server-sent event framing, the
 * session a mutation waits on (read-your-writes), the subscription books, and the stream itself
 * against a stand-in `fetch` (docs/protocol.md § Sync). `sync.test.ts` runs the same against a
 * real server.
 */
import assert from 'node:assert/strict';
import { describe, mock, test } from 'node:test';
import { StreamSession } from '../src/client/session.js';
import { parseEvent, readEvents } from '../src/client/sse.js';
import { SubscriptionStream } from '../src/client/stream.js';
import { type Listener, Subscriptions } from '../src/client/subscriptions.js';
import { ConvoyError } from '../src/values/errors.js';

/** A response body the test writes to as the server would. */
function eventBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>;
  const body = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(started) {
      controller = started;
    },
  });
  const encoder = new TextEncoder();
  return {
    body,
    write: (text: string) => controller.enqueue(encoder.encode(text)),
    end: () => controller.close(),
  };
}

/** Lets the stream read what was written (not a timer, so that tests may mock those). */
const tick = async () => {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
};

describe('server-sent events', () => {
  test('an event has its name and data; a heartbeat (no data) is none', () => {
    assert.deepEqual(parseEvent('event: session\ndata: {"session":"s"}'), { name: 'session', data: '{"session":"s"}' });
    assert.deepEqual(parseEvent('data: {"id":"1"}'), { name: 'message', data: '{"id":"1"}' });
    assert.equal(parseEvent(': heartbeat'), null);
    assert.equal(parseEvent('event: sync'), null);
  });

  test('events are read as they arrive, however the body is cut into chunks', async () => {
    const { body, write, end } = eventBody();
    const events = (async () => {
      const seen = [];
      for await (const event of readEvents(body)) seen.push(event);
      return seen;
    })();
    write('event: session\nda');
    write('ta: {"session":"s"}\n\n: heart');
    write('beat\n\ndata: 1\n\ndata: 2\n\n');
    write('data: unfinished');
    end();
    assert.deepEqual(await events, [
      { name: 'session', data: '{"session":"s"}' },
      { name: 'message', data: '1' },
      { name: 'message', data: '2' },
    ]);
  });
});

describe('stream session (read-your-writes)', () => {
  test('a mutation of another session, or one already read past, waits for nothing', async () => {
    const session = new StreamSession();
    assert.equal(session.id, null);
    await session.caughtUp('s', 1);
    session.begin('s');
    session.advance(3);
    await session.caughtUp('s', 3);
    await session.caughtUp('other', 9);
  });

  test('waits until the stream has read that many events', async () => {
    const session = new StreamSession();
    session.begin('s');
    let done = false;
    const waiting = session.caughtUp('s', 2).then(() => {
      done = true;
    });
    session.advance(1);
    await tick();
    assert.equal(done, false);
    session.advance(2);
    await waiting;
    assert.equal(done, true);
  });

  test('the stream ending lets every waiter go', async () => {
    const session = new StreamSession();
    session.begin('s');
    const waiting = session.caughtUp('s', 5);
    session.end();
    await waiting;
    assert.equal(session.id, null);
  });

  test('waits five seconds at most', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const session = new StreamSession();
      session.begin('s');
      let done = false;
      const waiting = session.caughtUp('s', 5).then(() => {
        done = true;
      });
      mock.timers.tick(4_999);
      await Promise.resolve();
      assert.equal(done, false);
      mock.timers.tick(1);
      await waiting;
    } finally {
      mock.timers.reset();
    }
  });
});

describe('subscription books', () => {
  const listener = (values: unknown[] = [], errors: ConvoyError[] = []): Listener => ({
    onValue: (value) => values.push(value),
    onError: (error) => errors.push(error),
  });

  test('one subscription per function and equal args, with ids of its own', () => {
    const books = new Subscriptions();
    const first = books.add('p:list', { a: 1 }, listener());
    const again = books.add('p:list', { a: 1 }, listener());
    const other = books.add('p:list', { a: 2 }, listener());
    const none = books.add('p:list', undefined, listener());
    assert.equal(first.created, true);
    assert.equal(again.created, false);
    assert.equal(again.subscription, first.subscription);
    assert.notEqual(other.subscription.id, first.subscription.id);
    assert.deepEqual(none.subscription.args, {});
    assert.equal(books.size, 3);
    assert.equal(books.get(other.subscription.id), other.subscription);
  });

  test('every listener hears a result; one that joins later gets the last one, after add returns', async () => {
    const books = new Subscriptions();
    const [values, errors] = [[] as unknown[], [] as ConvoyError[]];
    const { subscription } = books.add('p:list', {}, listener(values, errors));
    books.publish(subscription, { value: 1 });
    const error = new ConvoyError('UNAUTHORIZED', 'no');
    books.publish(subscription, { error });
    assert.deepEqual(values, [1]);
    assert.deepEqual(errors, [error]);

    const late: unknown[] = [];
    books.add('p:list', {}, { onValue: (value) => late.push(value) });
    books.publish(subscription, { value: 2 });
    assert.deepEqual(late, [2]);
    const later: unknown[] = [];
    books.add('p:list', {}, { onValue: (value) => later.push(value) });
    assert.deepEqual(later, [], 'not yet');
    await Promise.resolve();
    assert.deepEqual(later, [2]);
  });

  test('the subscription is gone with its last listener; removing twice changes nothing', () => {
    const books = new Subscriptions();
    const [one, two] = [listener(), listener()];
    const { subscription } = books.add('p:list', {}, one);
    books.add('p:list', {}, two);
    assert.equal(books.remove(subscription, one), false);
    assert.equal(books.remove(subscription, two), true);
    assert.equal(books.size, 0);
    assert.equal(books.get(subscription.id), undefined);
    const renewed = books.add('p:list', {}, listener());
    assert.equal(books.remove(subscription, two), false, 'the old one cannot remove the new one');
    assert.equal(books.size, 1);
    assert.notEqual(renewed.subscription.id, subscription.id);
  });
});

describe('subscription stream', () => {
  /** A stand-in server: the test answers `/api/sync` with a body it writes to; POSTs are recorded. */
  function fakeServer() {
    const streams: { body: ReturnType<typeof eventBody>; signal: AbortSignal; headers: Record<string, string> }[] = [];
    const posts: { url: string; body: any }[] = [];
    const fetch = (async (url: string, init: RequestInit = {}) => {
      if (init.method === 'POST') {
        posts.push({ url, body: JSON.parse(String(init.body)) });
        return new Response('{}', { status: 200 });
      }
      const body = eventBody();
      streams.push({ body, signal: init.signal!, headers: init.headers as Record<string, string> });
      return new Response(body.body, { status: 200 });
    }) as typeof globalThis.fetch;
    return { fetch, streams, posts };
  }

  test('subscribes on the stream, delivers values, and closes with the last subscription', async () => {
    const server = fakeServer();
    const stream = new SubscriptionStream({
      url: 'http://convoy',
      headers: async () => ({ authorization: 'Bearer t' }),
      fetch: server.fetch,
    });
    const states: string[] = [];
    stream.onStateChange((state) => states.push(state));
    const values: unknown[] = [];
    const stop = stream.subscribe('p:list', { a: 1 }, { onValue: (value) => values.push(value) });
    assert.equal(stream.connectionState, 'connecting');
    await tick();
    const [open] = server.streams;
    assert.equal(open?.headers.authorization, 'Bearer t');
    assert.equal(open?.headers.accept, 'text/event-stream');

    open!.body.write('event: session\ndata: {"session":"s1"}\n\n');
    await tick();
    assert.equal(stream.connectionState, 'open');
    assert.equal(stream.sessionId, 's1');
    assert.deepEqual(server.posts, [
      { url: 'http://convoy/api/sync/s1', body: { add: [{ id: '1', path: 'p:list', args: { a: 1 } }] } },
    ]);

    open!.body.write('data: {"id":"1","value":[1]}\n\n');
    await tick();
    assert.deepEqual(values, [[1]]);

    const caughtUp = stream.caughtUp('s1', 1);
    open!.body.write('event: sync\ndata: {"seq":1}\n\n');
    await caughtUp;

    stop();
    assert.deepEqual(server.posts[1], { url: 'http://convoy/api/sync/s1', body: { remove: ['1'] } });
    assert.equal(stream.connectionState, 'closed');
    assert.equal(open!.signal.aborted, true);
    assert.equal(stream.sessionId, null);
    assert.deepEqual(states, ['connecting', 'open', 'closed']);
  });

  test('a lost stream reconnects by itself and subscribes everything again', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const server = fakeServer();
      const stream = new SubscriptionStream({ url: 'http://convoy', headers: async () => ({}), fetch: server.fetch });
      stream.subscribe('p:list', {}, { onValue: () => {} });
      stream.subscribe('p:other', { b: 2 }, { onValue: () => {} });
      await tick();
      server.streams[0]!.body.write('event: session\ndata: {"session":"s1"}\n\n');
      await tick();
      server.streams[0]!.body.end();
      await tick();
      assert.equal(stream.connectionState, 'reconnecting');
      assert.equal(stream.sessionId, null);

      mock.timers.tick(5_000);
      await tick();
      assert.equal(server.streams.length, 2, 'a new stream');
      server.streams[1]!.body.write('event: session\ndata: {"session":"s2"}\n\n');
      await tick();
      assert.equal(stream.connectionState, 'open');
      assert.deepEqual(server.posts.at(-1), {
        url: 'http://convoy/api/sync/s2',
        body: {
          add: [
            { id: '1', path: 'p:list', args: {} },
            { id: '2', path: 'p:other', args: { b: 2 } },
          ],
        },
      });
      stream.close();
    } finally {
      mock.timers.reset();
    }
  });

  test('a refused stream is an error for every subscription', async () => {
    const fetch = (async () =>
      Response.json(
        { error: { code: 'UNAUTHORIZED', message: 'no token' } },
        { status: 401 },
      )) as typeof globalThis.fetch;
    const stream = new SubscriptionStream({ url: 'http://convoy', headers: async () => ({}), fetch });
    const errors: ConvoyError[] = [];
    stream.subscribe('p:list', {}, { onValue: () => {}, onError: (error) => errors.push(error) });
    await tick();
    await tick();
    assert.equal(errors[0]?.code, 'UNAUTHORIZED');
    assert.equal(stream.connectionState, 'reconnecting');
    stream.close();
  });
});
