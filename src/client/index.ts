/**
 * `@avvos/convoy/client`: `ConvoyClient`, framework-free, for browsers and Node. The stores the
 * React hooks render from live beside it in this folder (`liveQuery.ts`, `paginatedQuery.ts`).
 */
export type { FunctionReference } from '../functions.js';
export { ConvoyError, isConvoyError } from '../values/errors.js';
export { ConvoyClient, type ConvoyClientOptions, type MutationOptions, type MutationParameters } from './client.js';
export type { ArgsParameter, OptimisticLocalStore, OptimisticUpdate } from './optimistic.js';
export type { PaginatedQueryResult, PaginationStatus } from './paginatedQuery.js';
export type {
  QueryErrorResult,
  QueryPendingResult,
  QueryResult,
  QueryResultBase,
  QueryStatus,
  QuerySuccessResult,
} from './queryResult.js';
export type { ConnectionState } from './stream.js';
