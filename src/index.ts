/**
 * `@avvos/convoy`: what `convoy/schema.ts`, `convoy/server.ts` and `convoy/functions/**` import.
 *
 * Every type that a user's exports may name is exported here too. A user's TypeScript with
 * `declaration: true` (which `tsc --init` sets) writes the inferred type of each of their exports
 * (`export const listProjects = query({ … })`, and `query` itself in `_generated/server.ts`) into
 * a declaration, naming each type through an entry point of this package: one it cannot reach
 * is TS2742 (TS2883 on TypeScript 7), "cannot be named without a reference to …".
 */
import type { GenericDataModel } from './schema.js';

export { type ContextBase, type ContextFunction, type DefineContext, defineContext } from './context.js';
export type {
  DatabaseReader,
  DatabaseWriter,
  DocumentOf,
  Expression,
  ExpressionOrValue,
  FieldsOf as TableFieldsOf,
  FilterBuilder,
  IndexRangeBuilder,
  KeyOf,
  PaginationOptions,
  PaginationResult,
  Query,
  QueryInitializer,
  TableNamesOf,
  TableOfId,
} from './db/types.js';
export {
  type ArgsOfReference,
  type ConvoyRequest,
  type ConvoyRequestHeaders,
  type FunctionBuilders,
  type FunctionKind,
  type FunctionReference,
  type FunctionReferenceFor,
  functionBuildersFor,
  isRegisteredFunction,
  type MutationCtx,
  type MutationDefinition,
  mutation,
  type QueryCtx,
  type QueryDefinition,
  query,
  type RegisteredFunction,
  type RegisteredMutation,
  type RegisteredQuery,
  type ReturnsOfReference,
} from './functions.js';
export type { ColumnType, FieldColumn } from './graduation/mapping.js';
export { paginationOptsValidator } from './pagination.js';
export {
  type DataModelFromSchema,
  type DocOf,
  defineRef,
  defineSchema,
  defineTable,
  describeSchema,
  type FieldShape,
  type FieldsOf,
  type GenericDataModel,
  type IndexMap,
  type OnDelete,
  type RefOptions,
  type RelationalOptions,
  type SchemaDefinition,
  type SchemaDescription,
  type SystemFields,
  TableDefinition,
  type TableStorage,
  type TablesMap,
  type UnmanagedSystemFields,
} from './schema.js';
export { type SqlFragment, type SqlIdentifier, type SqlTag, sql } from './sql.js';
export {
  type BuiltinErrorCode,
  ConvoyError,
  type ConvoyErrorShape,
  ErrorCode,
  type ErrorCodeName,
  isConvoyError,
} from './values/errors.js';
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
