/**
 * React bindings over `ConvoyClient`. Components with the same function and args share one
 * request. Live updates arrive with the sync stream in a later version; today `useQuery` fetches
 * when it mounts and when its args change, and `useMutation` refetches nothing.
 */
import * as React from 'react';
import type { ConnectionState, ConvoyClient } from '../client/index.js';
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
  data: T | undefined;
  error: ConvoyError | undefined;
  isLoading: boolean;
  isStale: boolean;
  connectionState: ConnectionState;
}

interface Entry {
  snapshot: QueryResult<unknown>;
  listeners: Set<() => void>;
  started: boolean;
}

// One entry per (client, function, args): shared by every component that asks the same thing.
const entriesByClient = new WeakMap<ConvoyClient, Map<string, Entry>>();

function entryFor(client: ConvoyClient, key: string): Entry {
  let entries = entriesByClient.get(client);
  if (!entries) {
    entries = new Map();
    entriesByClient.set(client, entries);
  }
  let entry = entries.get(key);
  if (!entry) {
    entry = {
      snapshot: {
        data: undefined,
        error: undefined,
        isLoading: true,
        isStale: false,
        connectionState: client.connectionState,
      },
      listeners: new Set(),
      started: false,
    };
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

export function useQuery<Ref extends FunctionReference<'query'>>(
  ref: Ref,
  args: ArgsOfReference<Ref> | SkipToken,
): QueryResult<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  const key = args === skipToken ? null : `${ref.path}:${JSON.stringify(args ?? {})}`;
  // The key stands for ref and args: a new args object with the same content changes nothing.
  const latest = React.useRef({ ref, args });
  latest.current = { ref, args };
  const subscribe = React.useCallback(
    (listener: () => void) => {
      if (key === null) return () => {};
      const entry = entryFor(client, key);
      entry.listeners.add(listener);
      if (!entry.started) {
        entry.started = true;
        const publish = (next: Partial<QueryResult<unknown>>) => {
          entry.snapshot = { ...entry.snapshot, ...next };
          for (const notify of entry.listeners) notify();
        };
        client.query(latest.current.ref, latest.current.args as never).then(
          (data) => publish({ data, error: undefined, isLoading: false }),
          (error) => publish({ error, isLoading: false }),
        );
      }
      return () => {
        entry.listeners.delete(listener);
        if (entry.listeners.size === 0) entriesByClient.get(client)?.delete(key);
      };
    },
    [client, key],
  );
  const getSnapshot = () => (key === null ? skipped : entryFor(client, key).snapshot);
  return React.useSyncExternalStore(subscribe, getSnapshot, getSnapshot) as QueryResult<ReturnsOfReference<Ref>>;
}

export function useMutation<Ref extends FunctionReference<'mutation'>>(
  ref: Ref,
): (args: ArgsOfReference<Ref>) => Promise<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  return React.useCallback((args: ArgsOfReference<Ref>) => client.mutation(ref, args as never), [client, ref]);
}
