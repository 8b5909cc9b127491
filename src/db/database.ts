/**
 * The run-time `ctx.db`: a `DatabaseReader` for a query, a `DatabaseWriter` for a mutation, typed
 * against the interfaces handlers see (`./types.ts`). Writes are validated (`./validate.ts`),
 * reads are built into the query IR (`./query.ts`), and both go to the native core for the
 * current call.
 */
import type { FunctionKind } from '../functions.js';
import type { GenericDataModel, SchemaDefinition } from '../schema.js';
import { isSqlFragment } from '../sql.js';
import { ConvoyError } from '../values/errors.js';
import { type Id, isUuid } from '../values/id.js';
import type { DbBackend } from './backend.js';
import { QueryBuilder } from './query.js';
import { parseResult } from './results.js';
import type { DatabaseReader, DatabaseWriter } from './types.js';
import {
  type AnyTable,
  changesOf,
  keyJson,
  serialized,
  serializedChanges,
  serializedPatch,
  withoutSystemFields,
} from './validate.js';

export type { DbBackend } from './backend.js';
export { rawJsonOf } from './results.js';
export { DOCUMENT_LIMITS, describeIssues } from './validate.js';

/** The document with an id, and the table it is in, as `dbLocate` and `dbSeen` answer. */
interface Located {
  table: string;
  document: Record<string, unknown>;
}

const declaredByTable = new WeakMap<AnyTable, ReadonlySet<string> | null>();

/**
 * The fields a query of `table` may filter and order by: its own and the system fields. Null for
 * a table Convoy does not manage (`.unmanaged()`), whose columns the schema need not list.
 */
function declaredFields(table: AnyTable): ReadonlySet<string> | null {
  let declared = declaredByTable.get(table);
  if (declared === undefined) {
    declared = table.isUnmanaged ? null : new Set(['_id', '_creationTime', ...Object.keys(table.shape)]);
    declaredByTable.set(table, declared);
  }
  return declared;
}

/**
 * `(id, …)` or, as Convex also allows, `(table, id, …)`: the table named, the id, the rest. The
 * table is what names an unmanaged table's row, whose id is its primary key.
 */
function tableFirst(args: unknown[], arity: number): { table?: string; id: unknown; rest: unknown[] } {
  return args.length > arity
    ? { table: args[0] as string, id: args[1], rest: args.slice(2) }
    : { id: args[0], rest: args.slice(1) };
}

/**
 * `refs`: the ids the call's args declared with `defineRef(table)`, and that table. An id that
 * came in as a reference to one table never reaches a document of another: `get` finds nothing
 * and the writes answer `NOT_FOUND`, as if the id did not exist.
 */
export function createDatabase(
  backend: DbBackend,
  callId: number,
  schema: SchemaDefinition,
  kind: 'query',
  refs?: ReadonlyMap<string, string>,
): DatabaseReader<GenericDataModel>;
export function createDatabase(
  backend: DbBackend,
  callId: number,
  schema: SchemaDefinition,
  kind: 'mutation',
  refs?: ReadonlyMap<string, string>,
): DatabaseWriter<GenericDataModel>;
export function createDatabase(
  backend: DbBackend,
  callId: number,
  schema: SchemaDefinition,
  kind: FunctionKind,
  refs?: ReadonlyMap<string, string>,
): DatabaseReader<GenericDataModel> | DatabaseWriter<GenericDataModel>;
export function createDatabase(
  backend: DbBackend,
  callId: number,
  schema: SchemaDefinition,
  kind: FunctionKind,
  refs: ReadonlyMap<string, string> = new Map(),
): DatabaseReader<GenericDataModel> | DatabaseWriter<GenericDataModel> {
  const tableDefinition = (name: unknown): AnyTable => {
    const table = typeof name === 'string' && Object.hasOwn(schema.tables, name) ? schema.tables[name] : undefined;
    if (!table) {
      throw new ConvoyError('INVALID_ARGS', `there is no table ${JSON.stringify(name)} in the schema`);
    }
    return table;
  };

  /** In a mutation: the document with this id and its table, or null; no round trip when seen. */
  const find = async (id: string): Promise<Located | null> => {
    const seen = backend.dbSeen(callId, id);
    const found: Located | null = JSON.parse(seen === '' ? await backend.dbLocate(callId, id) : seen);
    const expected = refs.get(id);
    return found && expected !== undefined && found.table !== expected ? null : found;
  };

  /** The document `id` names, in `table` when one is given; `NOT_FOUND` when there is none. */
  const locate = async (id: unknown, table?: string): Promise<Located> => {
    const found = isUuid(id) ? await find(id) : null;
    if (!found || (table !== undefined && found.table !== table)) {
      throw new ConvoyError(
        'NOT_FOUND',
        `there is no document with id ${JSON.stringify(id)}${table === undefined ? '' : ` in ${table}`}`,
      );
    }
    return found;
  };

  const reader: DatabaseReader<GenericDataModel> = {
    async get(...args: unknown[]) {
      const { table, id } = tableFirst(args, 1);
      if (table !== undefined && tableDefinition(table).isUnmanaged) {
        keyJson(table, id);
        return new QueryBuilder(backend, callId, table).filter((q) => q.eq(q.field('_id'), id)).first();
      }
      if (!isUuid(id)) return null;
      if (kind === 'mutation') {
        const found = await find(id);
        return found && (table === undefined || found.table === table) ? found.document : null;
      }
      return parseResult(await backend.dbGet(callId, table ?? refs.get(id) ?? '', id));
    },
    query(table: string) {
      return new QueryBuilder(backend, callId, table, declaredFields(tableDefinition(table)));
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

  const writer: DatabaseWriter<GenericDataModel> = {
    ...reader,
    async insert<Table extends string>(table: Table, value: unknown) {
      const definition = tableDefinition(table);
      const json = serialized(table, definition, value);
      // An unmanaged table's row is written at once: its primary key comes from Postgres. The core
      // answers with the id it gave the document of `table`.
      const id = definition.isUnmanaged
        ? backend.dbInsert(callId, table, json)
        : backend.dbQueueInsert(callId, table, json);
      return id as Id<Table> | Promise<Id<Table>>;
    },
    async patch(...args: unknown[]) {
      const { table: named, id, rest } = tableFirst(args, 2);
      const changes = changesOf(rest[0]);
      if (named !== undefined && tableDefinition(named).isUnmanaged) {
        const json = serializedChanges(named, tableDefinition(named), changes);
        await backend.dbUpdateUnmanaged(callId, named, keyJson(named, id), json, false);
        return;
      }
      const { table, document } = await locate(id, named);
      const merged: Record<string, unknown> = { ...withoutSystemFields(document) };
      for (const [field, value] of Object.entries(changes)) {
        if (value === undefined) delete merged[field];
        else merged[field] = value;
      }
      const json = serializedPatch(table, tableDefinition(table), id as string, merged, Object.keys(changes));
      backend.dbQueueReplace(callId, table, id as string, json);
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
  return writer;
}
