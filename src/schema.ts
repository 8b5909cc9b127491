/**
 * The app's schema: tables of JSONB documents validated by Zod, with their indexes.
 * `defineSchema` is what `convoy/schema.ts` exports; the server sends `describeSchema(schema)`
 * to the Rust core, which creates the tables and indexes and plans queries against them.
 */
import { z } from 'zod';
import { type FieldColumn, mapTable } from './graduation/mapping.js';
import { ConvoyError } from './values/errors.js';
import { type Id, isUuid } from './values/id.js';

export type FieldShape = Record<string, z.ZodType>;
export type IndexMap = Record<string, readonly string[]>;

/** Field names a table's documents have (the user's fields; system fields are added by Convoy). */
export type FieldsOf<Shape extends FieldShape> = z.output<z.ZodObject<Shape>>;

// Identifiers reach SQL quoted, but a name that needs quoting is a name a user will mistype in
// psql later; keep them plain.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Where a table keeps its fields (GRADUATION.md § The three stages): Convoy's JSONB documents,
 * a typed column per field (`.relational()`), or an existing table of the user's (`.unmanaged()`).
 */
export type TableStorage = 'documents' | 'relational' | 'unmanaged';

/** `.relational()`'s options: the column of a field, where the snake_case name is not wanted. */
export interface RelationalOptions<Fields extends string = string> {
  columns?: Partial<Record<Fields, string>>;
}

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
  readonly storage: TableStorage;
  /** The schema's own column names for fields of a `.relational()` table. */
  readonly columnNames: Readonly<Record<string, string>>;
  /** Validates a whole document on insert and replace: unknown fields are refused, not dropped. */
  readonly validator: z.ZodObject<Shape>;

  constructor(
    shape: Shape,
    indexes: ReadonlyArray<{ name: string; fields: readonly string[] }> = [],
    storage: TableStorage = 'documents',
    columnNames: Readonly<Record<string, string>> = {},
  ) {
    for (const field of Object.keys(shape)) {
      if (field.startsWith('_')) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `Field "${field}": names starting with "_" are reserved for system fields`,
        );
      }
    }
    for (const [field, column] of Object.entries(columnNames)) {
      if (!(field in shape)) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `relational(): columns names field "${field}", which the table does not define`,
        );
      }
      if (!IDENTIFIER.test(column)) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `relational(): column "${column}" for field "${field}" must be 1 to 63 letters, digits and "_" (Postgres cuts names at 63), starting with a letter`,
        );
      }
    }
    this.shape = shape;
    this.indexes = indexes;
    this.storage = storage;
    this.columnNames = columnNames;
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
        `Index name "${name}" must be 1 to 63 letters, digits and "_" (Postgres cuts names at 63), starting with a letter`,
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
    return new TableDefinition(
      this.shape,
      [...this.indexes, { name, fields: [...fields] }],
      this.storage,
      this.columnNames,
    ) as never;
  }

  /** An existing relational table: Convoy never creates or alters it; its columns are the fields. */
  unmanaged(): TableDefinition<Shape, Indexes, true> {
    return new TableDefinition(this.shape, this.indexes, 'unmanaged') as never;
  }

  /**
   * A table the database enforces: Convoy creates it with a typed column per field (GRADUATION.md
   * § Mapping) — NOT NULL for required fields, CHECKs for enums, foreign keys for refs — and
   * serves it with the same `ctx.db`, results and live queries as a document table. `columns`
   * picks a field's column name (by default its snake_case). An existing document table is not
   * converted by this: `npx convoy graduate <table>` does that.
   */
  relational(
    options: RelationalOptions<keyof FieldsOf<Shape> & string> = {},
  ): TableDefinition<Shape, Indexes, Unmanaged> {
    return new TableDefinition(
      this.shape,
      this.indexes,
      'relational',
      (options.columns ?? {}) as Record<string, string>,
    ) as never;
  }

  /** Whether this is an existing table of the user's (`.unmanaged()`). */
  get isUnmanaged(): boolean {
    return this.storage === 'unmanaged';
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
        `Table name "${name}" must be 1 to 63 letters, digits and "_" (Postgres cuts names at 63), starting with a letter`,
      );
    }
  }
  return { tables };
}

/**
 * Where a `defineRef` validator keeps its table and options: registered symbols, so that the
 * runtime finds them whichever copy of this module built the validator.
 */
const REF_TABLE = Symbol.for('@avvos/convoy/ref-table');
const REF_ON_DELETE = Symbol.for('@avvos/convoy/ref-on-delete');

/**
 * What deleting a referenced document does to the documents that refer to it, once the database
 * enforces the ref (a `.relational()` table): `restrict` (the default) refuses the delete with
 * `CONFLICT` while any refer to it, `cascade` deletes them with it, `setNull` leaves their field
 * empty (optional refs only). A document table does not check its refs: `convoy graduate
 * <table> --check` reports the dangling ones.
 */
export type OnDelete = 'restrict' | 'cascade' | 'setNull';

export interface RefOptions {
  onDelete?: OnDelete;
}

/** A field that holds the id of a document in `table`; stored in JSONB as the plain UUID string. */
export function defineRef<TableName extends string>(
  table: TableName,
  options: RefOptions = {},
): z.ZodType<Id<TableName>, Id<TableName>> {
  const onDelete = options.onDelete ?? 'restrict';
  if (!['restrict', 'cascade', 'setNull'].includes(onDelete)) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `defineRef("${table}"): onDelete must be "restrict", "cascade" or "setNull", not ${JSON.stringify(onDelete)}`,
    );
  }
  const validator = z.custom<Id<TableName>>((value) => isUuid(value), {
    message: `Expected an id of table "${table}" (a UUID string)`,
  });
  Object.defineProperty(validator, REF_TABLE, { value: table });
  Object.defineProperty(validator, REF_ON_DELETE, { value: onDelete });
  return validator;
}

/** The table a `defineRef` validator points to, or undefined for any other validator. */
export function refTableOf(validator: z.ZodType): string | undefined {
  const table = (validator as unknown as Record<symbol, unknown>)[REF_TABLE];
  return typeof table === 'string' ? table : undefined;
}

/** What deleting the referenced document does, for a `defineRef` validator. */
export function refOnDeleteOf(validator: z.ZodType): OnDelete {
  const onDelete = (validator as unknown as Record<symbol, unknown>)[REF_ON_DELETE];
  return typeof onDelete === 'string' ? (onDelete as OnDelete) : 'restrict';
}

/** What the Rust core needs to know of the schema (SPEC §3; docs/architecture.md). */
export interface SchemaDescription {
  tables: Array<{
    name: string;
    managed: boolean;
    /** Declared `.relational()`: a new table gets a typed column per field. */
    relational: boolean;
    indexes: Array<{ name: string; fields: string[] }>;
    fields: string[];
    /** Each field's column at the relational stage (GRADUATION.md § Mapping). */
    columns: FieldColumn[];
  }>;
}

/**
 * `CONVOY_TEST_STORAGE=relational` declares every managed table `.relational()`: how Convoy's
 * own test suites run a second time on relational storage, and how an app can try it.
 */
const everyTableRelational = () => typeof process !== 'undefined' && process.env?.CONVOY_TEST_STORAGE === 'relational';

export function describeSchema(schema: SchemaDefinition): SchemaDescription {
  const relational = everyTableRelational();
  return {
    tables: Object.entries(schema.tables).map(([name, table]) => ({
      name,
      managed: !table.isUnmanaged,
      relational: table.storage === 'relational' || (relational && !table.isUnmanaged),
      indexes: table.indexes.map((index) => ({ name: index.name, fields: [...index.fields] })),
      fields: Object.keys(table.shape),
      columns: table.isUnmanaged ? [] : mapTableOf(name, table),
    })),
  };
}

/** The table's mapping, with the table named in what goes wrong. */
function mapTableOf(name: string, table: TableDefinition<FieldShape, IndexMap, boolean>): FieldColumn[] {
  try {
    return mapTable(table as TableDefinition, table.columnNames);
  } catch (error) {
    throw new ConvoyError('INVALID_ARGS', `table ${name}: ${(error as Error).message}`);
  }
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
