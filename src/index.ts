/**
 * `@avvos/convoy`: what `convoy/schema.ts` and `convoy/functions/**` import.
 */
import type { GenericDataModel } from './schema.js';

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
  type DocOf,
  defineRef,
  defineSchema,
  defineTable,
  describeSchema,
  type GenericDataModel,
  type SchemaDefinition,
  TableDefinition,
} from './schema.js';
export { type SqlFragment, sql } from './sql.js';
export { ConvoyError, ErrorCode, isConvoyError } from './values/errors.js';
export type { Id } from './values/id.js';

/**
 * Where the app's generated `convoy/_generated/dataModel.ts` registers its data model (declaration
 * merging), so that the types below know the app's tables.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by the app's generated code
export interface Register {}

/** The app's data model, once `convoy codegen` (or `convoy dev`) has registered it. */
export type DataModel = Register extends { dataModel: infer Model extends GenericDataModel } ? Model : GenericDataModel;

/** A document of the app's table `Table`, with `_id` and `_creationTime`: `Doc<'users'>`. */
export type Doc<Table extends keyof DataModel & string> = DataModel[Table]['document'];
