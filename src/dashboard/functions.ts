/**
 * The dashboard's own functions (`server/extensions.ts`): reads of any table as live queries, and
 * writes through `ctx.db`, so that what the dashboard writes is validated and constrained as the
 * app's mutations are and wakes the same live queries.
 */
import { z } from 'zod';
import { type FunctionKind, mutation, query } from '../functions.js';
import type { AnyFunction } from '../server/app.js';

/** No app's function has this name but one in `convoy/functions/_convoy/dashboard.ts`. */
export const INTERNAL_PREFIX = '_convoy/dashboard:';

const COMPARISONS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'] as const;
export type Comparison = (typeof COMPARISONS)[number];

/** One page of a table's documents, as the Tables view asks for it. */
export interface DocumentsArgs {
  table: string;
  /** Ordered by this index's fields; null: by `_creationTime`. */
  index: string | null;
  order: 'asc' | 'desc';
  filter: { field: string; op: Comparison; value: unknown } | null;
  cursor: string | null;
  numItems: number;
}

const documents = query({
  input: {
    table: z.string(),
    index: z.string().nullable(),
    order: z.enum(['asc', 'desc']),
    filter: z.object({ field: z.string(), op: z.enum(COMPARISONS), value: z.unknown() }).nullable(),
    cursor: z.string().nullable(),
    numItems: z.number().int().min(1).max(500),
  },
  handler: (ctx, args) => {
    let documents: any = ctx.db.query(args.table);
    if (args.index !== null) documents = documents.withIndex(args.index);
    const { filter } = args;
    if (filter !== null) documents = documents.filter((q: any) => q[filter.op](q.field(filter.field), filter.value));
    return documents.order(args.order).paginate({ numItems: args.numItems, cursor: args.cursor });
  },
});

/** What the editor shows besides the fields; never written. */
function fieldsOf(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { _id, _creationTime, ...fields } = value as Record<string, unknown>;
  return fields;
}

const db = (ctx: { db: unknown }) => ctx.db as any;

const insert = mutation({
  input: { table: z.string(), value: z.unknown() },
  handler: (ctx, args) => db(ctx).insert(args.table, fieldsOf(args.value)),
});

const replace = mutation({
  input: { table: z.string(), id: z.union([z.string(), z.number()]), value: z.unknown() },
  handler: async (ctx, args) => {
    await db(ctx).replace(args.table, args.id, fieldsOf(args.value));
    return null;
  },
});

const patch = mutation({
  input: { table: z.string(), id: z.union([z.string(), z.number()]), patch: z.unknown() },
  handler: async (ctx, args) => {
    await db(ctx).patch(args.table, args.id, fieldsOf(args.patch));
    return null;
  },
});

const remove = mutation({
  input: { table: z.string(), id: z.union([z.string(), z.number()]) },
  handler: async (ctx, args) => {
    await db(ctx).delete(args.table, args.id);
    return null;
  },
});

const definitions = { documents, insert, replace, patch, delete: remove };
export type InternalName = keyof typeof definitions;

/** The functions by wire name, for `ServerExtensions.functions`. */
export const internalFunctions: ReadonlyMap<string, AnyFunction> = new Map(
  Object.entries(definitions).map(([name, fn]) => [`${INTERNAL_PREFIX}${name}`, fn as AnyFunction]),
);

/** A reference to one of them, as `ConvoyClient` takes it. */
export function internalRef<Kind extends FunctionKind>(name: InternalName, kind: Kind): { path: string; kind: Kind } {
  return { path: `${INTERNAL_PREFIX}${name}`, kind };
}
