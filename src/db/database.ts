/**
 * The run-time `ctx.db`: validates writes with the table's Zod schema, turns builder chains into
 * the query IR of docs/architecture.md, and hands both to the native core for the current call.
 */
import type { z } from 'zod';
import type { SchemaDefinition, TableDefinition } from '../schema.js';

type AnyTable = TableDefinition<any, any, boolean>;

import { isSqlFragment } from '../sql.js';
import { ConvoyError } from '../values/errors.js';
import { isUuid } from '../values/id.js';
import type { Expression, FilterBuilder, IndexRangeBuilder, PaginationOptions } from './types.js';

/**
 * What `ctx.db` needs of the native engine (its `db*` methods). A mutation's writes to managed
 * tables are queued, synchronously: they travel to Postgres with its next statement or its
 * COMMIT. `dbSeen` answers from the documents the mutation has read or written, without a round
 * trip: `""` when it has not seen the id, else what `dbLocate` would answer.
 */
export interface DbBackend {
  dbGet(callId: number, table: string, id: string): Promise<string>;
  dbLocate(callId: number, id: string): Promise<string>;
  dbSeen(callId: number, id: string): string;
  dbQuery(callId: number, planJson: string): Promise<string>;
  dbPaginate(callId: number, planJson: string, cursor: string | null, numItems: number): Promise<string>;
  dbInsert(callId: number, table: string, documentJson: string): Promise<string>;
  dbQueueInsert(callId: number, table: string, documentJson: string): string;
  dbQueueReplace(callId: number, table: string, id: string, documentJson: string): void;
  dbQueueDelete(callId: number, table: string, id: string): void;
  dbUpdateUnmanaged(
    callId: number,
    table: string,
    keyJson: string,
    documentJson: string,
    everyField: boolean,
  ): Promise<void>;
  dbDeleteUnmanaged(callId: number, table: string, keyJson: string): Promise<void>;
  dbRaw(callId: number, sql: string, paramsJson: string): Promise<string>;
}

/**
 * Each parsed result object → the JSON text it came from. When a handler returns a query's result
 * untouched, the runtime answers with that text instead of serializing the objects again.
 */
export const rawJsonOf = new WeakMap<object, string>();

function parseResult<T>(json: string): T {
  const value = JSON.parse(json);
  if (typeof value === 'object' && value !== null) rawJsonOf.set(value, json);
  return value;
}

// ---- The query IR -------------------------------------------------------------------------------

type Operand = { field: string } | { value: unknown };
type FilterNode =
  | { cmp: 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte'; left: Operand; right: Operand }
  | { and: FilterNode[] }
  | { or: FilterNode[] }
  | { not: FilterNode };

interface QueryPlan {
  table: string;
  index: {
    name: string;
    eq: { field: string; value: unknown }[];
    range: { field: string; op: string; value: unknown }[];
  } | null;
  filter: FilterNode | null;
  order: { dir: 'asc' | 'desc'; field: string | null };
  limit: number | null;
}

// Expressions carry their IR; a field reference is an operand, a comparison is a filter node.
const irOf = new WeakMap<object, Operand | FilterNode>();

function expression(ir: Operand | FilterNode): Expression<any> {
  const handle = Object.freeze({});
  irOf.set(handle, ir);
  return handle;
}

function operand(value: unknown): Operand {
  const ir = typeof value === 'object' && value !== null ? irOf.get(value) : undefined;
  if (ir && 'field' in ir) return ir;
  if (ir) throw new ConvoyError('INVALID_ARGS', 'filter: a condition cannot be compared; use q.and / q.or');
  return { value: value === undefined ? null : value };
}

function condition(value: Expression<boolean>): FilterNode {
  const ir = irOf.get(value as object);
  if (!ir || 'field' in ir || 'value' in ir) {
    throw new ConvoyError('INVALID_ARGS', 'filter: expected a condition such as q.eq(q.field("status"), "active")');
  }
  return ir;
}

const filterBuilder: FilterBuilder<any> = {
  field: (name) => expression({ field: name }),
  eq: (left, right) => expression({ cmp: 'eq', left: operand(left), right: operand(right) }),
  neq: (left, right) => expression({ cmp: 'neq', left: operand(left), right: operand(right) }),
  lt: (left, right) => expression({ cmp: 'lt', left: operand(left), right: operand(right) }),
  lte: (left, right) => expression({ cmp: 'lte', left: operand(left), right: operand(right) }),
  gt: (left, right) => expression({ cmp: 'gt', left: operand(left), right: operand(right) }),
  gte: (left, right) => expression({ cmp: 'gte', left: operand(left), right: operand(right) }),
  and: (...conditions) => expression({ and: conditions.map(condition) }),
  or: (...conditions) => expression({ or: conditions.map(condition) }),
  not: (inner) => expression({ not: condition(inner) }),
};

class IndexRange implements IndexRangeBuilder<any, string> {
  readonly eqs: { field: string; value: unknown }[] = [];
  readonly bounds: { field: string; op: string; value: unknown }[] = [];

  eq(field: string, value: unknown) {
    if (this.bounds.length > 0) {
      throw new ConvoyError('INVALID_ARGS', `withIndex: eq("${field}") must come before the range`);
    }
    this.eqs.push({ field, value });
    return this;
  }
  gt(field: string, value: unknown) {
    return this.bound(field, 'gt', value);
  }
  gte(field: string, value: unknown) {
    return this.bound(field, 'gte', value);
  }
  lt(field: string, value: unknown) {
    return this.bound(field, 'lt', value);
  }
  lte(field: string, value: unknown) {
    return this.bound(field, 'lte', value);
  }
  private bound(field: string, op: string, value: unknown) {
    this.bounds.push({ field, op, value });
    return this;
  }
}

class QueryBuilder {
  private plan: QueryPlan;

  constructor(
    private readonly backend: DbBackend,
    private readonly callId: number,
    table: string,
  ) {
    this.plan = { table, index: null, filter: null, order: { dir: 'asc', field: null }, limit: null };
  }

  withIndex(name: string, range?: (q: IndexRange) => IndexRange) {
    if (this.plan.index) throw new ConvoyError('INVALID_ARGS', 'withIndex may be called once per query');
    const built = range ? range(new IndexRange()) : new IndexRange();
    if (!(built instanceof IndexRange)) {
      throw new ConvoyError('INVALID_ARGS', 'withIndex: the range callback must return q (e.g. q => q.eq(...))');
    }
    this.plan.index = { name, eq: built.eqs, range: built.bounds };
    return this;
  }

  filter(predicate: (q: FilterBuilder<any>) => Expression<boolean>) {
    const next = condition(predicate(filterBuilder));
    this.plan.filter = this.plan.filter ? { and: [this.plan.filter, next] } : next;
    return this;
  }

  order(direction: 'asc' | 'desc', field?: string) {
    if (direction !== 'asc' && direction !== 'desc') {
      throw new ConvoyError(
        'INVALID_ARGS',
        `order: direction must be "asc" or "desc", not ${JSON.stringify(direction)}`,
      );
    }
    this.plan.order = { dir: direction, field: field ?? null };
    return this;
  }

  collect() {
    return this.run(null);
  }

  take(count: number) {
    if (!Number.isInteger(count) || count < 0) {
      throw new ConvoyError('INVALID_ARGS', `take: expected a whole number ≥ 0, got ${count}`);
    }
    return this.run(count);
  }

  async first() {
    const [document] = await this.run(1);
    return document ?? null;
  }

  async unique() {
    const documents = await this.run(2);
    if (documents.length > 1) {
      throw new ConvoyError('INVALID_ARGS', `unique: more than one document in ${this.plan.table} matches`);
    }
    return documents[0] ?? null;
  }

  /** One page, continuing after `cursor` (null for the first); cursors are opaque keyset positions. */
  async paginate(options: PaginationOptions) {
    const { numItems, cursor } = options ?? ({} as PaginationOptions);
    if (!Number.isInteger(numItems) || numItems < 1) {
      throw new ConvoyError('INVALID_ARGS', `paginate: numItems must be a whole number ≥ 1, got ${numItems}`);
    }
    if (cursor !== null && cursor !== undefined && typeof cursor !== 'string') {
      throw new ConvoyError('INVALID_ARGS', 'paginate: cursor must be a string from continueCursor, or null');
    }
    const plan = JSON.stringify({ ...this.plan, limit: null });
    return parseResult(await this.backend.dbPaginate(this.callId, plan, cursor ?? null, numItems));
  }

  private async run(limit: number | null): Promise<any[]> {
    const plan = { ...this.plan, limit };
    return parseResult<any[]>(await this.backend.dbQuery(this.callId, JSON.stringify(plan)));
  }
}

// ---- Writes -------------------------------------------------------------------------------------

function systemFieldsIn(value: Record<string, unknown>): string[] {
  return Object.keys(value).filter((key) => key === '_id' || key === '_creationTime');
}

/** Convex's published limits, which users moving over expect at least (DESIGN.md § Limits). */
export const DOCUMENT_LIMITS = { maxBytes: 1024 * 1024, maxDepth: 16 } as const;

/** How deep `value` nests, counted up to one past the limit (so a hostile depth costs nothing). */
function depthOf(value: unknown, depth = 0): number {
  if (typeof value !== 'object' || value === null || depth > DOCUMENT_LIMITS.maxDepth) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, depth + 1));
    if (deepest > DOCUMENT_LIMITS.maxDepth) break;
  }
  return deepest;
}

/** The document as JSON text, once it passed the table's schema and the size and depth limits. */
function serialized(tableName: string, table: AnyTable, value: unknown): string {
  const document = validated(tableName, table, value);
  const depth = depthOf(document);
  if (depth > DOCUMENT_LIMITS.maxDepth) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `a document of ${tableName} is nested more than ${DOCUMENT_LIMITS.maxDepth} levels deep (the limit)`,
    );
  }
  const json = JSON.stringify(document);
  const bytes = Buffer.byteLength(json);
  if (bytes > DOCUMENT_LIMITS.maxBytes) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `a document of ${tableName} is ${bytes} bytes; the limit is ${DOCUMENT_LIMITS.maxBytes} bytes (1 MiB)`,
    );
  }
  return json;
}

function validated(tableName: string, table: AnyTable, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConvoyError('INVALID_ARGS', `a document of ${tableName} must be an object`);
  }
  const system = systemFieldsIn(value as Record<string, unknown>);
  if (system.length > 0) {
    throw new ConvoyError('INVALID_ARGS', `${system.join(' and ')} cannot be written: Convoy sets them`);
  }
  const result = (table.validator as z.ZodType).safeParse(value);
  if (!result.success) {
    throw new ConvoyError('INVALID_ARGS', `invalid document for ${tableName}: ${describeIssues(result.error.issues)}`, {
      issues: result.error.issues,
    });
  }
  return result.data as Record<string, unknown>;
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

function withoutSystemFields(document: Record<string, unknown>): Record<string, unknown> {
  const { _id, _creationTime, ...fields } = document;
  return fields;
}

// ---- ctx.db -------------------------------------------------------------------------------------

/**
 * `refs`: the ids the call's args declared with `defineRef(table)`, and that table. An id that
 * came in as a reference to one table never reaches a document of another: `get` finds nothing
 * and the writes answer `NOT_FOUND`, as if the id did not exist.
 */
export function createDatabase(
  backend: DbBackend,
  callId: number,
  schema: SchemaDefinition,
  kind: 'query' | 'mutation',
  refs: ReadonlyMap<string, string> = new Map(),
): any {
  const tableDefinition = (name: unknown): AnyTable => {
    const table = typeof name === 'string' && Object.hasOwn(schema.tables, name) ? schema.tables[name] : undefined;
    if (!table) {
      throw new ConvoyError('INVALID_ARGS', `there is no table ${JSON.stringify(name)} in the schema`);
    }
    return table;
  };

  /** In a mutation: the document with this id and its table, or null; no round trip when seen. */
  const find = async (id: string): Promise<{ table: string; document: Record<string, unknown> } | null> => {
    const seen = backend.dbSeen(callId, id);
    const found = JSON.parse(seen === '' ? await backend.dbLocate(callId, id) : seen);
    const expected = refs.get(id);
    return found && expected !== undefined && found.table !== expected ? null : found;
  };

  /** The document `id` names, in `table` when one is given; `NOT_FOUND` when there is none. */
  const locate = async (id: unknown, table?: string): Promise<{ table: string; document: Record<string, unknown> }> => {
    const found = isUuid(id) ? await find(id) : null;
    if (!found || (table !== undefined && found.table !== table)) {
      throw new ConvoyError(
        'NOT_FOUND',
        `there is no document with id ${JSON.stringify(id)}${table === undefined ? '' : ` in ${table}`}`,
      );
    }
    return found;
  };

  /** An unmanaged table's primary key, as JSON for the core. */
  const keyJson = (table: string, key: unknown): string => {
    if (typeof key !== 'string' && !(typeof key === 'number' && Number.isFinite(key))) {
      throw new ConvoyError('INVALID_ARGS', `a row of ${table} is named by its primary key: a string or a number`);
    }
    return JSON.stringify(key);
  };

  /**
   * `(id, …)` or, as Convex also allows, `(table, id, …)`: the table named, the id, the rest. The
   * table is what names an unmanaged table's row, whose id is its primary key.
   */
  const tableFirst = (args: unknown[], arity: number): { table?: string; id: unknown; rest: unknown[] } =>
    args.length > arity
      ? { table: args[0] as string, id: args[1], rest: args.slice(2) }
      : { id: args[0], rest: args.slice(1) };

  const reader = {
    async get(...args: unknown[]) {
      const { table, id } = tableFirst(args, 1);
      if (table !== undefined && tableDefinition(table).isUnmanaged) {
        keyJson(table, id);
        return new QueryBuilder(backend, callId, table)
          .filter((q: FilterBuilder<any>) => q.eq(q.field('_id'), id))
          .first();
      }
      if (!isUuid(id)) return null;
      if (kind === 'mutation') {
        const found = await find(id);
        return found && (table === undefined || found.table === table) ? found.document : null;
      }
      return parseResult(await backend.dbGet(callId, table ?? refs.get(id) ?? '', id));
    },
    query(table: string) {
      tableDefinition(table);
      return new QueryBuilder(backend, callId, table);
    },
    /** The app's own SQL; inside a mutation it runs in the mutation's transaction. */
    async raw(statement: unknown) {
      if (!isSqlFragment(statement)) {
        throw new ConvoyError('INVALID_ARGS', 'ctx.db.raw takes a sql`…` template, so that every value is a parameter');
      }
      const { text, values } = statement.toQuery();
      // Times cross as milliseconds since the epoch; JSON has no undefined.
      const params = values.map((value) => (value instanceof Date ? value.getTime() : (value ?? null)));
      return parseResult(await backend.dbRaw(callId, text, JSON.stringify(params)));
    },
  };
  if (kind === 'query') return reader;

  const changesOf = (partial: unknown): Record<string, unknown> => {
    if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
      throw new ConvoyError('INVALID_ARGS', 'patch: the changes must be an object');
    }
    const system = systemFieldsIn(partial as Record<string, unknown>);
    if (system.length > 0) {
      throw new ConvoyError('INVALID_ARGS', `${system.join(' and ')} cannot be written: Convoy sets them`);
    }
    return partial as Record<string, unknown>;
  };

  return {
    ...reader,
    async insert(table: string, value: unknown) {
      const definition = tableDefinition(table);
      const json = serialized(table, definition, value);
      // An unmanaged table's row is written at once: its primary key comes from Postgres.
      return definition.isUnmanaged
        ? backend.dbInsert(callId, table, json)
        : backend.dbQueueInsert(callId, table, json);
    },
    async patch(...args: unknown[]) {
      const { table: named, id, rest } = tableFirst(args, 2);
      const changes = changesOf(rest[0]);
      if (named !== undefined && tableDefinition(named).isUnmanaged) {
        // The given columns only, each checked against its field; NULL is written as null.
        const result = tableDefinition(named).validator.partial().safeParse(changes);
        if (!result.success) {
          throw new ConvoyError(
            'INVALID_ARGS',
            `invalid changes for ${named}: ${describeIssues(result.error.issues)}`,
            {
              issues: result.error.issues,
            },
          );
        }
        await backend.dbUpdateUnmanaged(callId, named, keyJson(named, id), JSON.stringify(result.data), false);
        return;
      }
      const { table, document } = await locate(id, named);
      const merged: Record<string, unknown> = { ...withoutSystemFields(document) };
      for (const [field, value] of Object.entries(changes)) {
        if (value === undefined) delete merged[field];
        else merged[field] = value;
      }
      backend.dbQueueReplace(callId, table, id as string, serialized(table, tableDefinition(table), merged));
    },
    async replace(...args: unknown[]) {
      const { table: named, id, rest } = tableFirst(args, 2);
      if (named !== undefined && tableDefinition(named).isUnmanaged) {
        const json = serialized(named, tableDefinition(named), rest[0]);
        await backend.dbUpdateUnmanaged(callId, named, keyJson(named, id), json, true);
        return;
      }
      const { table } = await locate(id, named);
      backend.dbQueueReplace(callId, table, id as string, serialized(table, tableDefinition(table), rest[0]));
    },
    async delete(...args: unknown[]) {
      const { table: named, id } = tableFirst(args, 1);
      if (named !== undefined && tableDefinition(named).isUnmanaged) {
        await backend.dbDeleteUnmanaged(callId, named, keyJson(named, id));
        return;
      }
      const { table } = await locate(id, named);
      backend.dbQueueDelete(callId, table, id as string);
    },
  };
}
