/**
 * `defineContext`: `createContext` in `convoy/server.ts` written with `req` and `base` typed
 * for the app, so that `strict` TypeScript accepts it without annotations
 * (`export const createContext = defineContext(async (req, base) => …)`). It returns the function
 * it is given, so the runtime sees the same plain function as `export async function
 * createContext(req, base)` and treats both alike (SPEC §7).
 */
import type { ConvoyRequest, QueryCtx } from './functions.js';
import type { GenericDataModel } from './schema.js';

/**
 * What `createContext` receives as `base`: the `ctx` every handler has before the app adds to
 * it. `db` reads (a mutation's `base` also writes, but `createContext` runs for queries and
 * streams too, so it is typed as what all of them have). Whatever it returns besides `db` and
 * `afterCommit` is added to every handler's `ctx`; `db` and `afterCommit` are always Convoy's.
 */
export type ContextBase<DataModel extends GenericDataModel = GenericDataModel> = QueryCtx<DataModel>;

/** `createContext(req, base)`: who is asking, from the request; what it returns joins `ctx`. */
export type ContextFunction<DataModel extends GenericDataModel, Added extends object> = (
  req: ConvoyRequest,
  base: ContextBase<DataModel>,
) => Added | Promise<Added>;

/** `defineContext` as `convoy/_generated/server.ts` exports it, bound to the app's data model. */
export type DefineContext<DataModel extends GenericDataModel> = <Added extends object>(
  createContext: ContextFunction<DataModel, Added>,
) => ContextFunction<DataModel, Added>;

/**
 * Types `createContext` for a data model; import it from `convoy/_generated/server.ts`, which
 * binds it to the app's. No run-time effect: the function comes back as it went in.
 */
export function defineContext<Added extends object, DataModel extends GenericDataModel = GenericDataModel>(
  createContext: ContextFunction<DataModel, Added>,
): ContextFunction<DataModel, Added> {
  if (typeof createContext !== 'function') {
    throw new TypeError('defineContext(createContext): createContext must be a function (req, base) => context');
  }
  return createContext;
}
