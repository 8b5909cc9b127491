/**
 * React bindings over `ConvoyClient`: live queries on the client's sync stream, through
 * `useSyncExternalStore`. Components with the same function and args share one subscription;
 * an update keeps the unchanged parts of a result the same objects (structural sharing).
 */
import * as React from 'react';
import type { ConnectionState, ConvoyClient } from '../client/index.js';
import type { PaginationResult } from '../db/types.js';
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';
import type { ConvoyError } from '../values/errors.js';

export const skipToken: unique symbol = Symbol.for('@avvos/convoy/skipToken') as never;
export type SkipToken = typeof skipToken;

const ClientContext = React.createContext<ConvoyClient | null>(null);

export function ConvoyProvider(props: { client: ConvoyClient; children?: React.ReactNode }): React.ReactElement {
  return React.createElement(ClientContext.Provider, { value: props.client }, props.children);
}

export function useConvoy(): ConvoyClient {
  const client = React.useContext(ClientContext);
  if (!client) throw new Error('useConvoy: wrap your app in <ConvoyProvider client={…}>');
  return client;
}

export interface QueryResult<T> {
  /** The newest result; while the stream is down, the last one seen. */
  data: T | undefined;
  error: ConvoyError | undefined;
  /** No result yet. */
  isLoading: boolean;
  /** The stream is down: `data` may be out of date until it reconnects (it does by itself). */
  isStale: boolean;
  connectionState: ConnectionState;
}

/** One live query shared by every component that asks the same thing of the same client. */
class LiveEntry {
  snapshot: QueryResult<unknown>;
  private readonly listeners = new Set<() => void>();
  private stop: (() => void) | null = null;

  constructor(
    private readonly client: ConvoyClient,
    private readonly ref: FunctionReference<'query'>,
    private readonly args: unknown,
    private readonly entries: Map<string, LiveEntry>,
    private readonly key: string,
  ) {
    this.snapshot = {
      data: undefined,
      error: undefined,
      isLoading: true,
      isStale: false,
      connectionState: client.connectionState,
    };
  }

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.stop) {
      // Listened to again after the last listener left (React's StrictMode does that).
      if (!this.entries.has(this.key)) this.entries.set(this.key, this);
      this.start();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0) return;
      this.stop?.();
      this.stop = null;
      if (this.entries.get(this.key) === this) this.entries.delete(this.key);
    };
  }

  private start() {
    const unsubscribe = this.client.subscribe(
      this.ref,
      this.args as never,
      (data) => this.publish({ data: shareStructure(this.snapshot.data, data), error: undefined, isLoading: false }),
      (error) => this.publish({ error, isLoading: false }),
    );
    const unwatch = this.client.onConnectionStateChange((connectionState) => this.publish({ connectionState }));
    this.publish({ connectionState: this.client.connectionState });
    this.stop = () => {
      unwatch();
      unsubscribe();
    };
  }

  private publish(next: Partial<QueryResult<unknown>>) {
    const merged = { ...this.snapshot, ...next };
    merged.isStale = merged.connectionState !== 'open' && !merged.isLoading;
    const previous = this.snapshot;
    if (
      previous.data === merged.data &&
      previous.error === merged.error &&
      previous.isLoading === merged.isLoading &&
      previous.isStale === merged.isStale &&
      previous.connectionState === merged.connectionState
    ) {
      return;
    }
    this.snapshot = merged;
    for (const notify of this.listeners) notify();
  }
}

const entriesByClient = new WeakMap<ConvoyClient, Map<string, LiveEntry>>();

function entryFor(client: ConvoyClient, ref: FunctionReference<'query'>, args: unknown, key: string): LiveEntry {
  let entries = entriesByClient.get(client);
  if (!entries) {
    entries = new Map();
    entriesByClient.set(client, entries);
  }
  let entry = entries.get(key);
  if (!entry) {
    entry = new LiveEntry(client, ref, args, entries, key);
    entries.set(key, entry);
  }
  return entry;
}

const skipped: QueryResult<never> = {
  data: undefined,
  error: undefined,
  isLoading: false,
  isStale: false,
  connectionState: 'closed',
};

/**
 * The live result of a query: it updates by itself when a write changes it. Pass `skipToken` for
 * args to run nothing (yet).
 */
export function useQuery<Ref extends FunctionReference<'query'>>(
  ref: Ref,
  args: ArgsOfReference<Ref> | SkipToken,
): QueryResult<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  // The key stands for ref and args: a new args object with the same content changes nothing.
  const key = args === skipToken ? null : `${ref.path}:${JSON.stringify(args ?? {})}`;
  const latest = React.useRef({ ref, args });
  latest.current = { ref, args };
  const entry = React.useMemo(
    () => (key === null ? null : entryFor(client, latest.current.ref, latest.current.args ?? {}, key)),
    [client, key],
  );
  const subscribe = React.useCallback((listener: () => void) => entry?.listen(listener) ?? (() => {}), [entry]);
  const getSnapshot = () => entry?.snapshot ?? skipped;
  return React.useSyncExternalStore(subscribe, getSnapshot, getSnapshot) as QueryResult<ReturnsOfReference<Ref>>;
}

export function useMutation<Ref extends FunctionReference<'mutation'>>(
  ref: Ref,
): (args: ArgsOfReference<Ref>) => Promise<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  return React.useCallback((args: ArgsOfReference<Ref>) => client.mutation(ref, args as never), [client, ref]);
}

// ---- Pagination ---------------------------------------------------------------------------------

type PageItem<Ref> = ReturnsOfReference<Ref> extends PaginationResult<infer Item> ? Item : never;
type ArgsWithoutPagination<Ref> = Omit<ArgsOfReference<Ref>, 'paginationOpts'>;

export type PaginationStatus = 'LoadingFirstPage' | 'CanLoadMore' | 'LoadingMore' | 'Exhausted';

export interface PaginatedQueryResult<Item> {
  /** Every loaded page's items, in order. */
  results: Item[];
  status: PaginationStatus;
  isLoading: boolean;
  /** Loads `numItems` more after the last page; does nothing unless `status` is `CanLoadMore`. */
  loadMore: (numItems: number) => void;
  error: ConvoyError | undefined;
}

/**
 * A paginated query (its args take `paginationOpts`, see `paginationOptsValidator`), loaded page
 * by page. Every loaded page stays live; each page starts where the one before it now ends, so
 * when a write moves a boundary the pages after it follow, and no item is shown twice or lost.
 */
export function usePaginatedQuery<Ref extends FunctionReference<'query'>>(
  ref: Ref,
  args: ArgsWithoutPagination<Ref> | SkipToken,
  options: { initialNumItems: number },
): PaginatedQueryResult<PageItem<Ref>> {
  const client = useConvoy();
  const argsKey = args === skipToken ? null : JSON.stringify(args ?? {});
  const [sizes, setSizes] = React.useState<{ argsKey: string | null; sizes: number[] }>({
    argsKey,
    sizes: [options.initialNumItems],
  });
  // New args start over from the first page.
  const pageSizes = sizes.argsKey === argsKey ? sizes.sizes : [options.initialNumItems];
  const pages = usePages(client, ref, args === skipToken ? null : args, pageSizes);

  const loaded = pages.filter((page) => page.data !== undefined);
  const last = pages[pages.length - 1];
  const lastData = last?.data as PaginationResult<PageItem<Ref>> | undefined;
  const status: PaginationStatus =
    args === skipToken || loaded.length === 0
      ? 'LoadingFirstPage'
      : loaded.length < pages.length
        ? 'LoadingMore'
        : lastData?.isDone
          ? 'Exhausted'
          : 'CanLoadMore';
  const loadMore = React.useCallback(
    (numItems: number) => {
      if (status !== 'CanLoadMore') return;
      setSizes({ argsKey, sizes: [...pageSizes, numItems] });
    },
    [status, argsKey, pageSizes],
  );
  return {
    results: loaded.flatMap((page) => (page.data as PaginationResult<PageItem<Ref>>).page),
    status,
    isLoading: status === 'LoadingFirstPage' || status === 'LoadingMore',
    loadMore,
    error: pages.find((page) => page.error)?.error,
  };
}

/** Subscribes to a chain of pages, each starting at the previous page's current continueCursor. */
function usePages(
  client: ConvoyClient,
  ref: FunctionReference<'query'>,
  args: unknown,
  sizes: number[],
): QueryResult<unknown>[] {
  const store = React.useMemo(() => new PageChain(client, ref), [client, ref]);
  // Keys, so that equal args and sizes in new arrays and objects change nothing.
  const argsKey = JSON.stringify(args ?? null);
  const sizesKey = sizes.join();
  React.useEffect(() => {
    store.configure(JSON.parse(argsKey), sizesKey.split(',').map(Number));
  }, [store, argsKey, sizesKey]);
  React.useEffect(() => () => store.close(), [store]);
  const subscribe = React.useCallback((listener: () => void) => store.listen(listener), [store]);
  const getSnapshot = () => store.snapshot;
  return React.useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

class PageChain {
  snapshot: QueryResult<unknown>[] = [];
  private args: unknown;
  private sizes: number[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly pages: { key: string; stop: () => void; result: QueryResult<unknown> }[] = [];

  constructor(
    private readonly client: ConvoyClient,
    private readonly ref: FunctionReference<'query'>,
  ) {}

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  configure(args: unknown, sizes: number[]) {
    if (JSON.stringify(args) === JSON.stringify(this.args) && sizes.join() === this.sizes.join()) return;
    this.args = args;
    this.sizes = sizes;
    this.sync();
  }

  close() {
    for (const page of this.pages.splice(0)) page.stop();
    this.args = undefined;
  }

  /** Makes the subscribed pages match the args, the sizes and the cursors now known. */
  private sync() {
    let cursor: string | null = null;
    const wanted: { key: string; args: unknown }[] = [];
    if (this.args !== null && this.args !== undefined) {
      for (const [index, numItems] of this.sizes.entries()) {
        if (index > 0) {
          const previous = this.pages[index - 1]?.result.data as PaginationResult<unknown> | undefined;
          if (!previous || previous.isDone) break;
          cursor = previous.continueCursor;
        }
        const pageArgs = { ...(this.args as object), paginationOpts: { numItems, cursor } };
        wanted.push({ key: JSON.stringify(pageArgs), args: pageArgs });
      }
    }
    for (const [index, want] of wanted.entries()) {
      if (this.pages[index]?.key === want.key) continue;
      this.pages[index]?.stop();
      const page = {
        key: want.key,
        stop: () => {},
        result: { data: undefined, error: undefined, isLoading: true, isStale: false, connectionState: 'connecting' },
      } as (typeof this.pages)[number];
      this.pages[index] = page;
      page.stop = this.client.subscribe(
        this.ref,
        want.args as never,
        (data) => this.update(page, { ...page.result, data, error: undefined, isLoading: false }),
        (error) => this.update(page, { ...page.result, error, isLoading: false }),
      );
    }
    for (const page of this.pages.splice(wanted.length)) page.stop();
    this.publish();
  }

  private update(page: (typeof this.pages)[number], result: QueryResult<unknown>) {
    if (!this.pages.includes(page)) return;
    page.result = { ...result, data: shareStructure(page.result.data, result.data) };
    // A page's end moved: the pages after it start somewhere else now.
    this.sync();
  }

  private publish() {
    const next = this.pages.map((page) => page.result);
    if (next.length === this.snapshot.length && next.every((result, index) => result === this.snapshot[index])) return;
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}

/**
 * `next`, reusing every part of `previous` that is deeply equal to the same part of `next`, so
 * that unchanged rows stay the same objects for `React.memo` and effects (TanStack Query's
 * `replaceEqualDeep`, written for plain JSON).
 */
export function shareStructure<T>(previous: unknown, next: T): T {
  if (previous === next) return previous as T;
  if (Array.isArray(previous) && Array.isArray(next)) {
    let same = previous.length === next.length;
    const shared = next.map((item, index) => {
      const kept = shareStructure(previous[index], item);
      if (kept !== previous[index]) same = false;
      return kept;
    });
    return (same ? previous : shared) as T;
  }
  if (isPlainObject(previous) && isPlainObject(next)) {
    const previousKeys = Object.keys(previous);
    const nextKeys = Object.keys(next);
    let same = previousKeys.length === nextKeys.length;
    const shared: Record<string, unknown> = {};
    for (const key of nextKeys) {
      shared[key] = shareStructure(previous[key], next[key]);
      if (shared[key] !== previous[key] || !Object.hasOwn(previous, key)) same = false;
    }
    return (same ? previous : shared) as T;
  }
  return next;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
