/**
 * `useQuery`: the live result of a query, on the shared live query store of `src/client/`.
 * Components with the same function and args share one subscription.
 */
import * as React from 'react';
import { liveQueryKey, sharedLiveQuery } from '../client/liveQuery.js';
import { type QueryResult, skippedQueryResult } from '../client/queryResult.js';
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';
import { type SkipToken, skipToken } from './skipToken.js';
import { useConvoy } from './useConvoy.js';
import { useStore } from './useStore.js';

/**
 * The live result of a query: it updates by itself when a write changes it. Pass `skipToken` for
 * args to run nothing (yet). Check `status` to narrow `data` and `error`.
 */
export function useQuery<Ref extends FunctionReference<'query'>>(
  ref: Ref,
  args: ArgsOfReference<Ref> | SkipToken,
): QueryResult<ReturnsOfReference<Ref>> {
  const client = useConvoy();
  // The key stands for ref and args: a new args object with the same content changes nothing.
  const key = args === skipToken ? null : liveQueryKey(ref, args);
  const latest = React.useRef({ ref, args });
  latest.current = { ref, args };
  const store = React.useMemo(
    () =>
      key === null
        ? null
        : sharedLiveQuery<ReturnsOfReference<Ref>>(client, latest.current.ref, latest.current.args ?? {}, key),
    [client, key],
  );
  return useStore(store, skippedQueryResult);
}
