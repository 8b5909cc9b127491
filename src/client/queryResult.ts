/**
 * What a live query shows at a moment: a union on `status`, so that checking it types `data`
 * and `error` (TanStack's `QueryObserverResult`). Every branch has every field, so code that
 * reads `data` or `isLoading` without narrowing works as well.
 */
import type { ConvoyError } from '../values/errors.js';
import type { ConnectionState } from './stream.js';

export interface QueryResultBase {
  /** The stream is down: `data` may be out of date until it reconnects (it does by itself). */
  isStale: boolean;
  connectionState: ConnectionState;
}

/** No result yet. */
export interface QueryPendingResult extends QueryResultBase {
  status: 'pending';
  data: undefined;
  error: undefined;
  /** A result is on its way: true, unless the query is skipped (`skipToken`). */
  isLoading: boolean;
}

/** The query failed; `data` is the last result seen before it did, if there was one. */
export interface QueryErrorResult<T> extends QueryResultBase {
  status: 'error';
  data: T | undefined;
  error: ConvoyError;
  isLoading: false;
}

export interface QuerySuccessResult<T> extends QueryResultBase {
  status: 'success';
  /** The newest result; while the stream is down, the last one seen. */
  data: T;
  error: undefined;
  isLoading: false;
}

export type QueryResult<T> = QueryPendingResult | QueryErrorResult<T> | QuerySuccessResult<T>;

export type QueryStatus = QueryResult<unknown>['status'];

/** The result of a query that is not run (its args are `skipToken`). */
export const skippedQueryResult: QueryPendingResult = Object.freeze({
  status: 'pending',
  data: undefined,
  error: undefined,
  isLoading: false,
  isStale: false,
  connectionState: 'closed',
});
