/** `usePaginatedQuery`: a paginated query loaded page by page, on the store of `src/client/`. */
import * as React from 'react';
import { PaginatedQuery, type PaginatedQueryResult } from '../client/paginatedQuery.js';
import type { PaginationResult } from '../db/types.js';
import type { ArgsOfReference, FunctionReference, ReturnsOfReference } from '../functions.js';
import { type SkipToken, skipToken } from './skipToken.js';
import { useConvoy } from './useConvoy.js';
import { useStore } from './useStore.js';

type PageItem<Ref> = ReturnsOfReference<Ref> extends PaginationResult<infer Item> ? Item : never;
type ArgsWithoutPagination<Ref> = Omit<ArgsOfReference<Ref>, 'paginationOpts'>;

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
  const pageArgs = args === skipToken ? null : args;
  // A key, so that equal args in a new object change nothing.
  const argsKey = JSON.stringify(pageArgs ?? null);
  const latest = React.useRef({ pageArgs, initialNumItems: options.initialNumItems });
  latest.current = { pageArgs, initialNumItems: options.initialNumItems };
  const store = React.useMemo(
    () => new PaginatedQuery<PageItem<Ref>>(client, ref, latest.current.pageArgs, latest.current.initialNumItems),
    [client, ref],
  );
  // New args start over from the first page.
  React.useEffect(() => {
    store.setArgs(JSON.parse(argsKey), latest.current.initialNumItems);
  }, [store, argsKey]);
  return useStore(store);
}
