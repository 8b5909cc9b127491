/**
 * `@avvos/convoy/react`: hooks over `ConvoyClient`, one per file, each rendering a framework-free
 * store of `src/client/` through `useSyncExternalStore`. Components with the same function and
 * args share one subscription; an update keeps the unchanged parts of a result the same objects
 * (structural sharing).
 */

export type { ArgsParameter, OptimisticLocalStore, OptimisticUpdate } from '../client/optimistic.js';
export type { PaginatedQueryResult, PaginationStatus } from '../client/paginatedQuery.js';
export type {
  QueryErrorResult,
  QueryPendingResult,
  QueryResult,
  QueryResultBase,
  QueryStatus,
  QuerySuccessResult,
} from '../client/queryResult.js';
export { shareStructure } from '../client/structuralSharing.js';
export { ConvoyProvider } from './provider.js';
export { type SkipToken, skipToken } from './skipToken.js';
export { useConvoy } from './useConvoy.js';
export { type MutationState, type MutationStatus, type ReactMutation, useMutation } from './useMutation.js';
export { usePaginatedQuery } from './usePaginatedQuery.js';
export { useQuery } from './useQuery.js';
