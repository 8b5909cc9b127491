/**
 * The app's schema: tables of JSONB documents validated by Zod, with their indexes.
 * `defineSchema` is what `convoy/schema.ts` exports; the server sends `describeSchema(schema)`
 * to the Rust core, which creates the tables and indexes and plans queries against them.
 */
import { z } from 'zod';
import { ConvoyError } from './values/errors.js';
import { type Id, isUuid } from './values/id.js';

export type FieldShape = Record<string, z.ZodType>;
export type IndexMap = Record<string, readonly string[]>;

/** Field names a table's documents have (the user's fields; system fields are added by Convoy). */
export type FieldsOf<Shape extends FieldShape> = z.output<z.ZodObject<Shape>>;

// Identifiers reach SQL quoted, but a name that needs quoting is a name a user will mistype in
// psql later; keep them plain.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export class TableDefinition<
  Shape extends FieldShape = FieldShape,
  Indexes extends IndexMap = {},
  Unmanaged extends boolean = false,
> {
  /** Type-level record of the indexes; never set at run time. */
  declare readonly __indexes: Indexes;
  /** Type-level: whether this is an existing relational table (`.unmanaged()`). */
  declare readonly __unmanaged: Unmanaged;
  readonly shape: Shape;
  readonly indexes: ReadonlyArray<{ name: string; fields: readonly string[] }>;
  readonly isUnmanaged: boolean;
  /** Validates a whole document on insert and replace: unknown fields are refused, not dropped. */
  readonly validator: z.ZodObject<Shape>;

  constructor(
    shape: Shape,
    indexes: ReadonlyArray<{ name: string; fields: readonly string[] }> = [],
    isUnmanaged = false,
  ) {
    for (const field of Object.keys(shape)) {
      if (field.startsWith('_')) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `Field "${field}": names starting with "_" are reserved for system fields`,
        );
      }
    }
    this.shape = shape;
    this.indexes = indexes;
    this.isUnmanaged = isUnmanaged;
    this.validator = z.strictObject(shape) as unknown as z.ZodObject<Shape>;
  }

  /** Adds a btree index over the given fields, in order: `.index('by_userId', ['userId'])`. */
  index<
    Name extends string,
    const Fields extends readonly [keyof FieldsOf<Shape> & string, ...(keyof FieldsOf<Shape> & string)[]],
  >(name: Name, fields: Fields): TableDefinition<Shape, Indexes & Record<Name, Fields>, Unmanaged> {
    if (!IDENTIFIER.test(name)) {
      throw new ConvoyError(
        'INVALID_ARGS',
        `Index name "${name}" must be letters, digits and "_", starting with a letter`,
      );
    }
    if (this.indexes.some((index) => index.name === name)) {
      throw new ConvoyError('INVALID_ARGS', `Index "${name}" is defined twice`);
    }
    for (const field of fields) {
      if (!(field in this.shape)) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `Index "${name}" names field "${field}", which the table does not define`,
        );
      }
    }
    return new TableDefinition(this.shape, [...this.indexes, { name, fields: [...fields] }], this.isUnmanaged) as never;
  }

  /** An existing relational table: Convoy never creates or alters it; its columns are the fields. */
  unmanaged(): TableDefinition<Shape, Indexes, true> {
    return new TableDefinition(this.shape, this.indexes, true) as never;
  }
}

export function defineTable<Shape extends FieldShape>(shape: Shape): TableDefinition<Shape, {}> {
  return new TableDefinition(shape);
}

export type TablesMap = Record<string, TableDefinition<any, any, boolean>>;

export interface SchemaDefinition<Tables extends TablesMap = TablesMap> {
  readonly tables: Tables;
}

export function defineSchema<const Tables extends TablesMap>(tables: Tables): SchemaDefinition<Tables> {
  for (const name of Object.keys(tables)) {
    if (!IDENTIFIER.test(name)) {
      throw new ConvoyError(
        'INVALID_ARGS',
        `Table name "${name}" must be letters, digits and "_", starting with a letter`,
      );
    }
  }
  return { tables };
}

/**
 * Where a `defineRef` validator keeps its table: a registered symbol, so that the runtime finds it
 * whichever copy of this module built the validator.
 */
const REF_TABLE = Symbol.for('@avvos/convoy/ref-table');

/** A field that holds the id of a document in `table`; stored in JSONB as the plain UUID string. */
export function defineRef<TableName extends string>(table: TableName): z.ZodType<Id<TableName>, Id<TableName>> {
  const validator = z.custom<Id<TableName>>((value) => isUuid(value), {
    message: `Expected an id of table "${table}" (a UUID string)`,
  });
  Object.defineProperty(validator, REF_TABLE, { value: table });
  return validator;
}

/** The table a `defineRef` validator points to, or undefined for any other validator. */
export function refTableOf(validator: z.ZodType): string | undefined {
  const table = (validator as unknown as Record<symbol, unknown>)[REF_TABLE];
  return typeof table === 'string' ? table : undefined;
}

/** What the Rust core needs to know of the schema (SPEC §3; docs/architecture.md). */
export interface SchemaDescription {
  tables: Array<{
    name: string;
    managed: boolean;
    indexes: Array<{ name: string; fields: string[] }>;
    fields: string[];
  }>;
}

export function describeSchema(schema: SchemaDefinition): SchemaDescription {
  return {
    tables: Object.entries(schema.tables).map(([name, table]) => ({
      name,
      managed: !table.isUnmanaged,
      indexes: table.indexes.map((index) => ({ name: index.name, fields: [...index.fields] })),
      fields: Object.keys(table.shape),
    })),
  };
}

// ---- Types derived from a schema -------------------------------------------------------------

/** The system fields every document of a managed table has. */
export interface SystemFields<TableName extends string> {
  _id: Id<TableName>;
  _creationTime: number;
}

/** A row of an unmanaged table carries `_id` only when its primary key is one column. */
export interface UnmanagedSystemFields {
  _id?: string | number;
}

/** Per table: its documents, its user fields, its indexes. What `ctx.db` is typed against. */
export type GenericDataModel = Record<string, { document: any; fields: any; indexes: IndexMap }>;

export type DataModelFromSchema<Schema extends SchemaDefinition<any>> = {
  [TableName in keyof Schema['tables'] & string]: {
    fields: FieldsOf<Schema['tables'][TableName]['shape']>;
    document: (Schema['tables'][TableName]['__unmanaged'] extends true
      ? UnmanagedSystemFields
      : SystemFields<TableName>) &
      FieldsOf<Schema['tables'][TableName]['shape']>;
    indexes: Schema['tables'][TableName]['__indexes'];
  };
};

/** A document of one table of a data model, as handlers and clients see it. */
export type DocOf<
  DataModel extends GenericDataModel,
  TableName extends keyof DataModel,
> = DataModel[TableName]['document'];
