/**
 * `query` and `mutation`: a handler with the Zod shape of its args. The returned value is what
 * `convoy/functions/**` exports; the runtime registers it under its wire name (`file:export`),
 * and `api.<file>.<export>` in `_generated/api.ts` is a typed reference to it.
 */
import type { z } from 'zod';
import type { DatabaseReader, DatabaseWriter } from './db/types.js';
import type { DataModelFromSchema, FieldShape, GenericDataModel, SchemaDefinition } from './schema.js';

export type FunctionKind = 'query' | 'mutation';

const functionBrand = Symbol.for('@avvos/convoy/function');

/**
 * The request `createContext(req, base)` in `convoy/server.ts` receives: for a call,
 * `POST /api/query` or `/api/mutation`; for a sync stream, `GET /api/sync` when it opens (a
 * refusal closes it), then `POST /api/query` with the stream's headers each time one of its live
 * queries runs. Header names are lower case.
 */
export interface ConvoyRequest {
  method: string;
  url: string;
  headers: ConvoyRequestHeaders;
}

/**
 * A request's headers by lower-case name. The ones an app reads to learn who is asking are named,
 * so that `req.headers.authorization` passes `noPropertyAccessFromIndexSignature` too.
 */
export interface ConvoyRequestHeaders {
  authorization?: string | undefined;
  cookie?: string | undefined;
  [name: string]: string | undefined;
}

/** What every handler's `ctx` has; `createContext` in `convoy/server.ts` may add more. */
export interface QueryCtx<DataModel extends GenericDataModel = GenericDataModel> {
  db: DatabaseReader<DataModel>;
}

export interface MutationCtx<DataModel extends GenericDataModel = GenericDataModel> {
  db: DatabaseWriter<DataModel>;
  /**
   * Runs `fn` once, after this mutation commits: never for an attempt that rolls back or that
   * conflicts and runs again. For side effects that must not repeat (emails, webhooks).
   */
  afterCommit(fn: () => unknown): void;
}

export interface RegisteredFunction<Kind extends FunctionKind, Args, Returns> {
  readonly [functionBrand]: true;
  readonly kind: Kind;
  /** The Zod shape the args are validated against before the handler runs. */
  readonly input: FieldShape;
  readonly handler: (ctx: any, args: any) => unknown;
  /** How long a run may take, when it sets its own limit (`functionTimeoutMs` otherwise). */
  readonly timeoutMs?: number;
  /** Type-level only; never set at run time. */
  readonly __args?: Args;
  readonly __returns?: Returns;
}

export type RegisteredQuery<Args, Returns> = RegisteredFunction<'query', Args, Returns>;
export type RegisteredMutation<Args, Returns> = RegisteredFunction<'mutation', Args, Returns>;

export function isRegisteredFunction(value: unknown): value is RegisteredFunction<FunctionKind, unknown, unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[functionBrand] === true;
}

type ArgsOf<Input extends FieldShape> = z.input<z.ZodObject<Input>>;
type ParsedArgsOf<Input extends FieldShape> = z.output<z.ZodObject<Input>>;

export interface QueryDefinition<
  DataModel extends GenericDataModel,
  Input extends FieldShape,
  Returns,
  Context extends object = {},
> {
  input?: Input;
  /**
   * How long a run may take before the caller gets `INTERNAL`; the server's `functionTimeoutMs`
   * (default 30 s) otherwise.
   */
  timeoutMs?: number;
  handler: (ctx: QueryCtx<DataModel> & Context, args: ParsedArgsOf<Input>) => Returns | Promise<Returns>;
}

export interface MutationDefinition<
  DataModel extends GenericDataModel,
  Input extends FieldShape,
  Returns,
  Context extends object = {},
> {
  input?: Input;
  /**
   * How long a run may take before the caller gets `INTERNAL` and the transaction is rolled
   * back; the server's `functionTimeoutMs` (default 30 s) otherwise.
   */
  timeoutMs?: number;
  handler: (ctx: MutationCtx<DataModel> & Context, args: ParsedArgsOf<Input>) => Returns | Promise<Returns>;
}

function register(
  kind: FunctionKind,
  definition: { input?: FieldShape; timeoutMs?: number; handler: (ctx: any, args: any) => unknown },
) {
  if (typeof definition?.handler !== 'function') {
    throw new TypeError(`${kind}({ input, handler }): handler must be a function`);
  }
  const { timeoutMs } = definition;
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 0xffff_ffff)) {
    throw new TypeError(`${kind}({ timeoutMs }): timeoutMs must be a positive whole number of milliseconds`);
  }
  return {
    [functionBrand]: true,
    kind,
    input: definition.input ?? {},
    handler: definition.handler,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  } as RegisteredFunction<typeof kind, unknown, unknown>;
}

/** `query` and `mutation` for a data model; `Context` is what `createContext` adds to `ctx`. */
export interface FunctionBuilders<DataModel extends GenericDataModel, Context extends object = {}> {
  query<Input extends FieldShape = {}, Returns = unknown>(
    definition: QueryDefinition<DataModel, Input, Returns, Context>,
  ): RegisteredQuery<ArgsOf<Input>, Returns>;
  mutation<Input extends FieldShape = {}, Returns = unknown>(
    definition: MutationDefinition<DataModel, Input, Returns, Context>,
  ): RegisteredMutation<ArgsOf<Input>, Returns>;
}

/** The generic builders; `_generated/server.ts` re-exports them typed against the app's schema. */
export const query: FunctionBuilders<GenericDataModel>['query'] = (definition) =>
  register('query', definition) as never;
export const mutation: FunctionBuilders<GenericDataModel>['mutation'] = (definition) =>
  register('mutation', definition) as never;

/**
 * Binds `query` and `mutation` to a schema's types and to what the app's `createContext` adds to
 * `ctx` (no run-time effect).
 */
export function functionBuildersFor<
  Schema extends SchemaDefinition<any>,
  Context extends object = {},
>(): FunctionBuilders<DataModelFromSchema<Schema>, Context> {
  return { query, mutation } as unknown as FunctionBuilders<DataModelFromSchema<Schema>, Context>;
}

// ---- References, as `_generated/api.ts` holds them --------------------------------------------

export interface FunctionReference<Kind extends FunctionKind = FunctionKind, Args = any, Returns = any> {
  /** The wire name, `dir/file:export`. */
  readonly path: string;
  readonly kind: Kind;
  /** Type-level only. */
  readonly __args?: Args;
  readonly __returns?: Returns;
}

export type FunctionReferenceFor<F> =
  F extends RegisteredFunction<infer Kind, infer Args, infer Returns> ? FunctionReference<Kind, Args, Returns> : never;

export type ArgsOfReference<Ref> = Ref extends FunctionReference<any, infer Args, any> ? Args : never;
export type ReturnsOfReference<Ref> = Ref extends FunctionReference<any, any, infer Returns> ? Returns : never;

/** Builds a reference; `_generated/api.ts` calls it with `typeof` the exported function. */
export function functionReference<F extends RegisteredFunction<FunctionKind, any, any>>(
  path: string,
  kind: F['kind'],
): FunctionReferenceFor<F> {
  return { path, kind } as FunctionReferenceFor<F>;
}
