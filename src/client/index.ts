/**
 * `@avvos/convoy/client`: `ConvoyClient`, framework-free, for browsers and Node. The stores the
 * React hooks render from live beside it in this folder (`liveQuery.ts`, `paginatedQuery.ts`).
 */
export type { FunctionReference } from '../functions.js';
export { ConvoyError, isConvoyError } from '../values/errors.js';
export { ConvoyClient, type ConvoyClientOptions, type MutationOptions } from './client.js';
export type { OptimisticLocalStore, OptimisticUpdate } from './optimistic.js';
export type { ConnectionState } from './stream.js';
