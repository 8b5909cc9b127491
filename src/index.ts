/**
 * `@avvos/convoy`: what `convoy/schema.ts` and `convoy/functions/**` import.
 */
export type {
  DatabaseReader,
  DatabaseWriter,
  PaginationOptions,
  PaginationResult,
  Query,
  QueryInitializer,
} from './db/types.js';
export {
  type ConvoyRequest,
  type FunctionBuilders,
  type FunctionKind,
  type FunctionReference,
  type FunctionReferenceFor,
  functionBuildersFor,
  isRegisteredFunction,
  type MutationCtx,
  mutation,
  type QueryCtx,
  query,
  type RegisteredMutation,
  type RegisteredQuery,
} from './functions.js';
export { paginationOptsValidator } from './pagination.js';
export {
  type DataModelFromSchema,
  type DocOf as Doc,
  defineRef,
  defineSchema,
  defineTable,
  describeSchema,
  type GenericDataModel,
  type GenericDataModel as DataModel,
  type SchemaDefinition,
  TableDefinition,
} from './schema.js';
export { type SqlFragment, sql } from './sql.js';
export { ConvoyError, ErrorCode, isConvoyError } from './values/errors.js';
export type { Id } from './values/id.js';
