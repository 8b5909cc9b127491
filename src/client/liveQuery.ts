/**
 * The live query store: one query's current result on the client's stream, as a `Store` any
 * framework can render from (TanStack's `QueryObserver`, for a query the server keeps current).
 * `sharedLiveQuery` gives every caller that asks the same thing of the same client the same
 * store, so that they share one subscription and one result.
 */
import type { FunctionReference } from '../functions.js';
import type { ConvoyError } from '../values/errors.js';
import type { ConvoyClient } from './client.js';
import type { QueryResult, QueryStatus } from './queryResult.js';
import { Store } from './store.js';
import type { ConnectionState } from './stream.js';
import { shareStructure } from './structuralSharing.js';

/** What a live store needs of a client (a `ConvoyClient`, or a stand-in in tests). */
export type LiveSource = Pick<ConvoyClient, 'subscribe' | 'connectionState' | 'onConnectionStateChange'>;

interface QueryState {
  status: QueryStatus;
  data: unknown;
  error: ConvoyError | undefined;
  connectionState: ConnectionState;
}

/** Where a shared store is kept, so that it can leave when unused and come back when used again. */
interface Registration {
  queries: Map<string, LiveQuery>;
  key: string;
}

export class LiveQuery<T = unknown> extends Store<QueryResult<T>> {
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly client: LiveSource,
    private readonly ref: FunctionReference<'query'>,
    private readonly args: unknown,
    private readonly registration?: Registration,
  ) {
    super({
      status: 'pending',
      data: undefined,
      error: undefined,
      isLoading: true,
      isStale: false,
      connectionState: client.connectionState,
    });
  }

  protected start(): void {
    const { registration } = this;
    // Listened to again after the last listener left (React's StrictMode does that).
    if (registration && !registration.queries.has(registration.key)) {
      registration.queries.set(registration.key, this as LiveQuery);
    }
    const unsubscribe = this.client.subscribe(
      this.ref,
      this.args as never,
      (data) => this.update({ status: 'success', data: shareStructure(this.snapshot.data, data), error: undefined }),
      (error) => this.update({ status: 'error', error }),
    );
    const unwatch = this.client.onConnectionStateChange((connectionState) => this.update({ connectionState }));
    this.update({ connectionState: this.client.connectionState });
    this.unsubscribe = () => {
      unwatch();
      unsubscribe();
    };
  }

  protected stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    const { registration } = this;
    if (registration && registration.queries.get(registration.key) === this) {
      registration.queries.delete(registration.key);
    }
  }

  private update(change: Partial<QueryState>) {
    const { status, data, error, connectionState }: QueryState = { ...this.snapshot, ...change };
    const previous = this.snapshot;
    const isStale = connectionState !== 'open' && status !== 'pending';
    if (
      previous.status === status &&
      previous.data === data &&
      previous.error === error &&
      previous.isStale === isStale &&
      previous.connectionState === connectionState
    ) {
      return;
    }
    // The fields agree with `status` by construction: a value makes it 'success' and clears the
    // error; an error makes it 'error' and keeps the last value.
    this.setSnapshot({
      status,
      data,
      error,
      isLoading: status === 'pending',
      isStale,
      connectionState,
    } as QueryResult<T>);
  }
}

const sharedByClient = new WeakMap<LiveSource, Map<string, LiveQuery>>();

/** Stands for a query and its args: equal args in a new object give the same key. */
export function liveQueryKey(ref: FunctionReference<'query'>, args: unknown): string {
  return `${ref.path}:${JSON.stringify(args ?? {})}`;
}

/** The store of `ref` and `args` on `client`, the same one for every caller while it is used. */
export function sharedLiveQuery<T = unknown>(
  client: LiveSource,
  ref: FunctionReference<'query'>,
  args: unknown,
  key: string = liveQueryKey(ref, args),
): LiveQuery<T> {
  let queries = sharedByClient.get(client);
  if (!queries) {
    queries = new Map();
    sharedByClient.set(client, queries);
  }
  let query = queries.get(key);
  if (!query) {
    query = new LiveQuery(client, ref, args ?? {}, { queries, key });
    queries.set(key, query);
  }
  return query as LiveQuery<T>;
}
