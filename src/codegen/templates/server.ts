/**
 * `_generated/server.ts`: `query` and `mutation` typed against the app's schema. When
 * `convoy/server.ts` exports `createContext`, what it returns types `ctx` in every handler
 * (`ctx.auth`), as SPEC §7 says.
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
import { functionBuildersFor, type MutationCtx as GenericMutationCtx, type QueryCtx as GenericQueryCtx } from '@avvos/convoy';
import type { schema } from '../schema.js';
import type { DataModel } from './dataModel.js';
${context}
/** \`query\` and \`mutation\`, typed against this app's schema and context. */
export const { query, mutation } = functionBuildersFor<typeof schema, Context>();

export type QueryCtx = GenericQueryCtx<DataModel> & Context;
export type MutationCtx = GenericMutationCtx<DataModel> & Context;
`;
}
