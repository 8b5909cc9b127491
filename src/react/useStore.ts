/**
 * A component's view of a client store (`src/client/store.ts`): it re-renders when the store's
 * snapshot changes, and keeps the store working while it is mounted (TanStack's `useBaseQuery`
 * over its observer). The hooks are this and the choice of store.
 */
import * as React from 'react';
import type { Store } from '../client/store.js';

const subscribeToNothing = () => () => {};

/** The snapshot of `store`, or `fallback` while there is no store (a skipped query). */
export function useStore<Snapshot>(store: Store<Snapshot>): Snapshot;
export function useStore<Snapshot>(store: Store<Snapshot> | null, fallback: Snapshot): Snapshot;
export function useStore<Snapshot>(store: Store<Snapshot> | null, fallback?: Snapshot): Snapshot {
  const getSnapshot = store ? store.getSnapshot : () => fallback as Snapshot;
  return React.useSyncExternalStore(store?.subscribe ?? subscribeToNothing, getSnapshot, getSnapshot);
}
