/**
 * The framework-free stores of `src/client/` that the React hooks render from, against a
 * stand-in client (no server, no React): the live query store, the paginated query store, and
 * structural sharing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConnectionState } from '../src/client/index.js';
import { LiveQuery, type LiveSource, liveQueryKey, sharedLiveQuery } from '../src/client/liveQuery.js';
import { PaginatedQuery } from '../src/client/paginatedQuery.js';
import { shareStructure } from '../src/client/structuralSharing.js';
import type { FunctionReference } from '../src/functions.js';
import { ConvoyError } from '../src/values/errors.js';

const ref = (path: string) => ({ path, kind: 'query' }) as FunctionReference<'query'>;

interface FakeSubscription {
  path: string;
  args: any;
  onValue: (value: unknown) => void;
  onError?: (error: ConvoyError) => void;
  open: boolean;
}

/** What the stores see of a `ConvoyClient`: subscriptions the test answers, and a stream state. */
class FakeClient {
  connectionState: ConnectionState = 'closed';
  readonly subscriptions: FakeSubscription[] = [];
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();

  subscribe(
    query: FunctionReference<'query'>,
    args: unknown,
    onValue: (value: any) => void,
    onError?: (error: ConvoyError) => void,
  ): () => void {
    const subscription: FakeSubscription = {
      path: query.path,
      args,
      onValue,
      open: true,
      ...(onError ? { onError } : {}),
    };
    this.subscriptions.push(subscription);
    if (this.connectionState === 'closed') this.setState('connecting');
    return () => {
      subscription.open = false;
    };
  }

  onConnectionStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  setState(state: ConnectionState) {
    this.connectionState = state;
    for (const listener of this.stateListeners) listener(state);
  }

  open(): FakeSubscription[] {
    return this.subscriptions.filter((subscription) => subscription.open);
  }

  /** The one open subscription whose args match `test`. */
  find(test: (args: any) => boolean): FakeSubscription {
    const found = this.open().filter((subscription) => test(subscription.args));
    assert.equal(found.length, 1, `one open subscription matches, of ${JSON.stringify(this.open())}`);
    return found[0]!;
  }

  get source(): LiveSource {
    return this as unknown as LiveSource;
  }
}

/** Counts a store's notifications. */
function listen(store: { subscribe: (listener: () => void) => () => void }) {
  const heard = { count: 0, stop: () => {} };
  heard.stop = store.subscribe(() => heard.count++);
  return heard;
}

describe('live query store', () => {
  test('pending until the first value, then success; nothing is subscribed until someone listens', () => {
    const client = new FakeClient();
    const store = new LiveQuery(client.source, ref('p:list'), { userId: 'u' });
    assert.equal(client.subscriptions.length, 0);
    assert.deepEqual(store.getSnapshot(), {
      status: 'pending',
      data: undefined,
      error: undefined,
      isLoading: true,
      isStale: false,
      connectionState: 'closed',
    });

    const heard = listen(store);
    const [subscription] = client.open();
    assert.deepEqual(subscription?.args, { userId: 'u' });
    assert.equal(store.getSnapshot().connectionState, 'connecting');
    client.setState('open');
    subscription!.onValue([{ name: 'Rocket' }]);
    assert.deepEqual(store.getSnapshot(), {
      status: 'success',
      data: [{ name: 'Rocket' }],
      error: undefined,
      isLoading: false,
      isStale: false,
      connectionState: 'open',
    });
    assert.equal(heard.count, 3, 'connecting, open, the value');
  });

  test('stale while the stream is down after a result, with the last data kept', () => {
    const client = new FakeClient();
    const store = new LiveQuery(client.source, ref('p:list'), {});
    listen(store);
    client.setState('reconnecting');
    assert.equal(store.getSnapshot().isStale, false, 'nothing to be stale yet');
    client.setState('open');
    client.open()[0]!.onValue(['a']);
    client.setState('reconnecting');
    assert.equal(store.getSnapshot().isStale, true);
    assert.deepEqual(store.getSnapshot().data, ['a']);
    assert.equal(store.getSnapshot().connectionState, 'reconnecting');
    client.setState('open');
    assert.equal(store.getSnapshot().isStale, false);
  });

  test('an error keeps the last data; the next value clears the error', () => {
    const client = new FakeClient();
    const store = new LiveQuery(client.source, ref('p:list'), {});
    listen(store);
    const [subscription] = client.open();
    const error = new ConvoyError('UNAUTHORIZED', 'no');
    subscription!.onError!(error);
    assert.equal(store.getSnapshot().status, 'error');
    assert.equal(store.getSnapshot().data, undefined);
    assert.equal(store.getSnapshot().isLoading, false);
    subscription!.onValue(['a']);
    subscription!.onError!(error);
    const failed = store.getSnapshot();
    assert.equal(failed.status, 'error');
    assert.equal(failed.error, error);
    assert.deepEqual(failed.data, ['a']);
    subscription!.onValue(['b']);
    assert.equal(store.getSnapshot().status, 'success');
    assert.equal(store.getSnapshot().error, undefined);
  });

  test('an equal value changes nothing: same snapshot, no notification, unchanged rows kept', () => {
    const client = new FakeClient();
    const store = new LiveQuery<{ id: number }[]>(client.source, ref('p:list'), {});
    const heard = listen(store);
    const [subscription] = client.open();
    subscription!.onValue([{ id: 1 }, { id: 2 }]);
    const first = store.getSnapshot();
    const count = heard.count;
    subscription!.onValue([{ id: 1 }, { id: 2 }]);
    assert.equal(store.getSnapshot(), first);
    assert.equal(heard.count, count);
    subscription!.onValue([{ id: 1 }, { id: 3 }]);
    const second = store.getSnapshot();
    assert.notEqual(second, first);
    assert.equal(second.data?.[0], first.data?.[0], 'the unchanged row is the same object');
  });

  test('the last listener leaving unsubscribes; listening again subscribes again', () => {
    const client = new FakeClient();
    const store = new LiveQuery(client.source, ref('p:list'), {});
    const one = listen(store);
    const two = listen(store);
    assert.equal(client.subscriptions.length, 1, 'one subscription for both');
    one.stop();
    one.stop();
    assert.equal(client.open().length, 1, 'stopping twice takes nothing from the other listener');
    two.stop();
    assert.equal(client.open().length, 0);
    listen(store);
    assert.equal(client.open().length, 1);
  });

  test('shared: the same store for the same query and equal args on one client', () => {
    const client = new FakeClient();
    const other = new FakeClient();
    const store = sharedLiveQuery(client.source, ref('p:list'), { userId: 'u' });
    assert.equal(sharedLiveQuery(client.source, ref('p:list'), { userId: 'u' }), store);
    assert.notEqual(sharedLiveQuery(client.source, ref('p:list'), { userId: 'v' }), store);
    assert.notEqual(sharedLiveQuery(client.source, ref('p:other'), { userId: 'u' }), store);
    assert.notEqual(sharedLiveQuery(other.source, ref('p:list'), { userId: 'u' }), store);
    assert.equal(liveQueryKey(ref('p:list'), undefined), liveQueryKey(ref('p:list'), {}), 'no args are {}');
  });

  test('shared: a store nobody listens to any longer is forgotten, and comes back if listened to again', () => {
    const client = new FakeClient();
    const store = sharedLiveQuery(client.source, ref('p:list'), {});
    const heard = listen(store);
    heard.stop();
    const fresh = sharedLiveQuery(client.source, ref('p:list'), {});
    assert.notEqual(fresh, store, 'a new store after the last listener left');

    // React's StrictMode listens, stops and listens again to the store it rendered with.
    const client2 = new FakeClient();
    const rendered = sharedLiveQuery(client2.source, ref('p:list'), {});
    listen(rendered).stop();
    listen(rendered);
    assert.equal(sharedLiveQuery(client2.source, ref('p:list'), {}), rendered);
  });
});

/** A page as the server answers it: items `from` to `to`, and where the next page starts. */
function page(items: string[], isDone = false) {
  return { page: items, isDone, continueCursor: `after:${items.at(-1) ?? ''}` };
}

const opts = (args: any) => args.paginationOpts as { numItems: number; cursor: string | null };

describe('paginated query store', () => {
  test('skipped (null args): nothing subscribed, the first page loading', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery(client.source, ref('p:page'), null, 3);
    listen(store);
    assert.equal(client.subscriptions.length, 0);
    assert.equal(store.getSnapshot().status, 'LoadingFirstPage');
    assert.equal(store.getSnapshot().isLoading, true);
    assert.deepEqual(store.getSnapshot().results, []);
  });

  test('pages load one at a time, each starting where the one before ends', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery<string>(client.source, ref('p:page'), { owner: 'u' }, 3);
    assert.equal(client.subscriptions.length, 0, 'nothing until someone listens');
    listen(store);
    const first = client.find((args) => opts(args).cursor === null);
    assert.deepEqual(first.args, { owner: 'u', paginationOpts: { numItems: 3, cursor: null } });
    assert.equal(store.getSnapshot().status, 'LoadingFirstPage');

    first.onValue(page(['a', 'b', 'c']));
    assert.equal(store.getSnapshot().status, 'CanLoadMore');
    assert.equal(store.getSnapshot().isLoading, false);
    assert.deepEqual(store.getSnapshot().results, ['a', 'b', 'c']);

    store.getSnapshot().loadMore(2);
    const second = client.find((args) => opts(args).cursor === 'after:c');
    assert.equal(opts(second.args).numItems, 2);
    assert.equal(store.getSnapshot().status, 'LoadingMore');
    assert.deepEqual(store.getSnapshot().results, ['a', 'b', 'c'], 'the loaded page stays shown');

    second.onValue(page(['d'], true));
    assert.equal(store.getSnapshot().status, 'Exhausted');
    assert.deepEqual(store.getSnapshot().results, ['a', 'b', 'c', 'd']);
  });

  test('loadMore does nothing unless more can be loaded', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery(client.source, ref('p:page'), {}, 3);
    listen(store);
    store.loadMore(3);
    assert.equal(client.subscriptions.length, 1, 'not while the first page loads');
    client.open()[0]!.onValue(page(['a']));
    store.loadMore(3);
    store.loadMore(3);
    assert.equal(client.open().length, 2, 'one more page, however often it is asked while loading');
    client.find((args) => opts(args).cursor === 'after:a').onValue(page(['b'], true));
    store.loadMore(3);
    assert.equal(client.open().length, 2, 'not when exhausted');
  });

  test("a write that moves a page's end moves the pages after it, none twice, none lost", () => {
    const client = new FakeClient();
    const store = new PaginatedQuery<string>(client.source, ref('p:page'), {}, 2);
    listen(store);
    client.find((args) => opts(args).cursor === null).onValue(page(['c', 'b']));
    store.loadMore(2);
    const old = client.find((args) => opts(args).cursor === 'after:b');
    old.onValue(page(['a'], true));
    assert.deepEqual(store.getSnapshot().results, ['c', 'b', 'a']);

    // 'd' is written at the top: the first page now ends at 'c'.
    client.find((args) => opts(args).cursor === null).onValue(page(['d', 'c']));
    assert.equal(old.open, false, 'the page that started after b is gone');
    const moved = client.find((args) => opts(args).cursor === 'after:c');
    assert.equal(store.getSnapshot().status, 'LoadingMore');
    assert.deepEqual(store.getSnapshot().results, ['d', 'c'], 'no item shown twice meanwhile');
    moved.onValue(page(['b', 'a'], true));
    assert.deepEqual(store.getSnapshot().results, ['d', 'c', 'b', 'a']);
    assert.equal(store.getSnapshot().status, 'Exhausted');
  });

  test('new args start over from the first page; equal args in a new object change nothing', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery<string>(client.source, ref('p:page'), { owner: 'u' }, 2);
    listen(store);
    client.open()[0]!.onValue(page(['a', 'b']));
    store.loadMore(5);
    client.find((args) => opts(args).cursor === 'after:b').onValue(page(['c']));
    const before = store.getSnapshot();

    store.setArgs({ owner: 'u' }, 2);
    assert.equal(store.getSnapshot(), before);
    assert.equal(client.open().length, 2);

    store.setArgs({ owner: 'v' }, 4);
    const [only, ...rest] = client.open();
    assert.equal(rest.length, 0, 'the old pages are unsubscribed');
    assert.deepEqual(only?.args, { owner: 'v', paginationOpts: { numItems: 4, cursor: null } });
    assert.equal(store.getSnapshot().status, 'LoadingFirstPage');
    assert.deepEqual(store.getSnapshot().results, []);

    store.setArgs(null, 4);
    assert.equal(client.open().length, 0, 'skipped again: nothing subscribed');
    assert.equal(store.getSnapshot().status, 'LoadingFirstPage');
  });

  test('an error of a page is the error of the whole', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery(client.source, ref('p:page'), {}, 2);
    listen(store);
    const error = new ConvoyError('UNAUTHORIZED', 'no');
    client.open()[0]!.onError!(error);
    assert.equal(store.getSnapshot().error, error);
    assert.equal(store.getSnapshot().status, 'LoadingFirstPage');
    client.open()[0]!.onValue(page(['a']));
    assert.equal(store.getSnapshot().error, undefined);
  });

  test('the last listener leaving stops every page; listening again brings the same pages back', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery(client.source, ref('p:page'), {}, 2);
    const heard = listen(store);
    client.open()[0]!.onValue(page(['a', 'b']));
    store.loadMore(2);
    client.find((args) => opts(args).cursor === 'after:b').onValue(page(['c'], true));
    heard.stop();
    assert.equal(client.open().length, 0, 'all pages unsubscribed');

    listen(store);
    const first = client.find((args) => opts(args).cursor === null);
    assert.equal(opts(first.args).numItems, 2);
    first.onValue(page(['a', 'b']));
    assert.equal(opts(client.find((args) => opts(args).cursor === 'after:b').args).numItems, 2, 'the loaded size kept');
  });

  test('an equal page changes nothing: same snapshot, no notification', () => {
    const client = new FakeClient();
    const store = new PaginatedQuery(client.source, ref('p:page'), {}, 2);
    const heard = listen(store);
    client.open()[0]!.onValue(page(['a', 'b']));
    const before = store.getSnapshot();
    const count = heard.count;
    client.open()[0]!.onValue(page(['a', 'b']));
    assert.equal(store.getSnapshot(), before);
    assert.equal(heard.count, count);
  });
});

describe('structural sharing', () => {
  test('returns the previous value when it is deeply equal', () => {
    const previous = { rows: [{ id: 1, tags: ['a'] }, { id: 2 }], count: 2 };
    assert.equal(shareStructure(previous, structuredClone(previous)), previous);
    assert.equal(shareStructure(1, 1), 1);
    assert.equal(shareStructure(null, null), null);
  });

  test('keeps every unchanged part and replaces the changed ones along their path', () => {
    const previous = { rows: [{ id: 1 }, { id: 2, tags: ['a'] }], meta: { page: 1 } };
    const next = { rows: [{ id: 1 }, { id: 2, tags: ['b'] }], meta: { page: 1 } };
    const shared = shareStructure(previous, next);
    assert.deepEqual(shared, next);
    assert.notEqual(shared, previous);
    assert.notEqual(shared.rows, previous.rows);
    assert.equal(shared.rows[0], previous.rows[0]);
    assert.notEqual(shared.rows[1], previous.rows[1]);
    assert.equal(shared.meta, previous.meta);
  });

  test('an array that grows or shrinks is new, its equal items kept', () => {
    const previous = [{ id: 1 }, { id: 2 }];
    const longer = shareStructure(previous, [{ id: 1 }, { id: 2 }, { id: 3 }]);
    assert.notEqual(longer, previous);
    assert.equal(longer[1], previous[1]);
    const shorter = shareStructure(previous, [{ id: 1 }]);
    assert.notEqual(shorter, previous);
    assert.equal(shorter[0], previous[0]);
  });

  test('an added, removed or renamed key makes the object new', () => {
    const previous: Record<string, unknown> = { a: 1, b: undefined };
    for (const next of [{ a: 1, b: undefined, c: 2 }, { a: 1 }, { a: 1, c: undefined }]) {
      const shared = shareStructure(previous, next);
      assert.notEqual(shared, previous);
      assert.deepEqual(shared, next);
    }
  });

  test('only plain objects and arrays are shared; anything else is taken as it is', () => {
    const date = new Date(0);
    const next = new Date(0);
    assert.equal(shareStructure(date, next), next);
    assert.deepEqual(shareStructure({ a: 1 }, [1]), [1]);
    assert.equal(shareStructure([1], 'x'), 'x');
  });
});
