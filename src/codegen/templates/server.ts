/**
 * `_generated/server.ts`: `query`, `mutation` and `defineContext` typed against the app's schema.
 * When `convoy/server.ts` exports `createContext`, what it returns types `ctx` in every handler
 * (`ctx.auth`), as SPEC §7 says.
 *
 * Every export is annotated with a type the package's root exports: a user's `declaration: true`
 * (what `tsc --init` sets) would otherwise have to name the inferred types itself, and fails with
 * TS2742 / TS2883 where it cannot (docs/typescript.md).
 */
import { HEADER } from './common.js';

/** `contextModule`: how to import `convoy/server.*` when it exports `createContext`, else null. */
export function serverTs(contextModule: string | null): string {
  const context = contextModule
    ? `import type { createContext } from '${contextModule}';

/** What \`createContext\` in convoy/server.ts adds to every handler's \`ctx\`. */
export type Context = Omit<Awaited<ReturnType<typeof createContext>>, 'db' | 'afterCommit'>;
`
    : `
/** What \`createContext\` in convoy/server.ts would add to \`ctx\`; the app has none. */
export type Context = {};
`;
  return `${HEADER}
import {
  type DefineContext,
  defineContext as defineContextFor,
  type FunctionBuilders,
  functionBuildersFor,
  type MutationCtx as GenericMutationCtx,
  type QueryCtx as GenericQueryCtx,
} from '@avvos/convoy';
import type { schema } from '../schema.js';
import type { DataModel } from './dataModel.js';
${context}
const builders: FunctionBuilders<DataModel, Context> = functionBuildersFor<typeof schema, Context>();

/** A query of this app: \`export const list = query({ input: { … }, handler: async (ctx, args) => … })\`. */
export const query: FunctionBuilders<DataModel, Context>['query'] = builders.query;
/** A mutation of this app: one Postgres transaction, retried on conflict. */
export const mutation: FunctionBuilders<DataModel, Context>['mutation'] = builders.mutation;

/**
 * \`createContext\` in convoy/server.ts with \`req\` and \`base\` typed for this app:
 * \`export const createContext = defineContext(async (req, base) => ({ auth: … }))\`.
 */
export const defineContext: DefineContext<DataModel> = defineContextFor;

export type QueryCtx = GenericQueryCtx<DataModel> & Context;
export type MutationCtx = GenericMutationCtx<DataModel> & Context;
`;
}
