/**
 * Optimistic updates (Convex's `withOptimisticUpdate`): while a mutation is on its way, a function
 * of the caller's changes what the client's live queries show, as if the server had answered.
 * Each update is kept as a function, not as the values it wrote, so that it can be played again
 * on top of every new result the server sends while the mutation is pending; it is dropped when
 * the mutation fails (the queries show the server's results again: rolled back) or lands (they
 * show the server's results, which now hold the write).
 */
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';

/** `[args]` when the function takes args, `[args?]` when it takes none. */
export type ArgsParameter<Ref> =
  {} extends ArgsOfReference<Ref> ? [args?: ArgsOfReference<Ref>] : [args: ArgsOfReference<Ref>];

/**
 * What an optimistic update reads and writes: the results the client's live queries show. A
 * query nobody subscribes to has no result here (`getQuery` gives `undefined`), and setting it
 * shows nothing. Treat the values read as read-only: build new arrays and objects.
 */
export interface OptimisticLocalStore {
  /** The result a live query of `ref` with these args shows now; `undefined` when it has none. */
  getQuery<Ref extends FunctionReference<'query'>>(
    ref: Ref,
    ...args: ArgsParameter<Ref>
  ): ReturnsOfReference<Ref> | undefined;
  /** Every live query of `ref`, whatever its args, with the result it shows. */
  getAllQueries<Ref extends FunctionReference<'query'>>(
    ref: Ref,
  ): Array<{ args: ArgsOfReference<Ref>; value: ReturnsOfReference<Ref> | undefined }>;
  /** Shows `value` as the result of `ref` with `args` until the mutation settles. */
  setQuery<Ref extends FunctionReference<'query'>>(
    ref: Ref,
    args: ArgsOfReference<Ref>,
    value: ReturnsOfReference<Ref>,
  ): void;
}

/** An optimistic update: called with the store and the mutation's args, it returns nothing. */
export type OptimisticUpdate<Args> = (store: OptimisticLocalStore, args: Args) => void;

/** The key a query and its args are known by: equal args in a new object give the same key. */
export function queryKey(path: string, args: unknown): string {
  return `${path}\u0000${JSON.stringify(args ?? {})}`;
}

/** A live query as the updates see it. */
export interface ShownQuery {
  path: string;
  args: unknown;
  /** The server's newest result, or undefined when there is none (yet, or an error). */
  value: unknown;
}

/** An update with its mutation's args bound. */
export type BoundUpdate = (store: OptimisticLocalStore) => void;

/**
 * The results the pending updates make, played in the order their mutations were called over the
 * server's results: the key of each query they set and what it shows, and which keys each set. An update that throws is
 * left out (said on the console), so that one bad update cannot hide every other — except
 * `strict`, the one being added, whose error is the caller's to see.
 */
export function playUpdates(
  updates: Iterable<BoundUpdate>,
  queries: ReadonlyMap<string, ShownQuery>,
  strict?: BoundUpdate,
): { shown: Map<string, unknown>; setBy: Map<BoundUpdate, Set<string>> } {
  const shown = new Map<string, unknown>();
  const setBy = new Map<BoundUpdate, Set<string>>();
  const read = (key: string) => (shown.has(key) ? shown.get(key) : queries.get(key)?.value);
  for (const update of updates) {
    const written = new Map<string, unknown>();
    const store: OptimisticLocalStore = {
      getQuery: (ref, ...args) => {
        const key = queryKey(ref.path, args[0]);
        return (written.has(key) ? written.get(key) : read(key)) as never;
      },
      getAllQueries: (ref) =>
        [...queries].flatMap(([key, query]) =>
          query.path === ref.path
            ? [{ args: query.args as never, value: (written.has(key) ? written.get(key) : read(key)) as never }]
            : [],
        ),
      setQuery: (ref, args, value) => {
        written.set(queryKey(ref.path, args), value);
      },
    };
    try {
      update(store);
    } catch (error) {
      if (update === strict) throw error;
      console.error('convoy: an optimistic update threw; it is left out', error);
      continue;
    }
    for (const [key, value] of written) shown.set(key, value);
    setBy.set(update, new Set(written.keys()));
  }
  return { shown, setBy };
}
