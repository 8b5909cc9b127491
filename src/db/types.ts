/**
 * The typed `ctx.db` of handlers (SPEC §4). Every chain of builder calls becomes one SQL
 * statement in the Rust core; nothing is filtered or sorted in JavaScript.
 */
import type { GenericDataModel } from '../schema.js';
import type { SqlFragment } from '../sql.js';
import type { Id } from '../values/id.js';

export type TableNamesOf<DataModel extends GenericDataModel> = keyof DataModel & string;
export type DocumentOf<
  DataModel extends GenericDataModel,
  Table extends keyof DataModel,
> = DataModel[Table]['document'];
export type FieldsOf<DataModel extends GenericDataModel, Table extends keyof DataModel> = DataModel[Table]['fields'];
type IndexesOf<DataModel extends GenericDataModel, Table extends keyof DataModel> = DataModel[Table]['indexes'];

/** The table an id belongs to, read from its brand. */
export type TableOfId<DataModel extends GenericDataModel, I> = {
  [Table in TableNamesOf<DataModel>]: I extends Id<Table> ? Table : never;
}[TableNamesOf<DataModel>];

/** A value in a filter: a document field, or a constant. */
export interface Expression<T> {
  /** Type-level only. */
  readonly __type?: T;
}

export type ExpressionOrValue<T> = Expression<T> | T;

export interface FilterBuilder<Doc> {
  field<Field extends keyof Doc & string>(name: Field): Expression<Doc[Field]>;
  eq<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  neq<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  lt<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  lte<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  gt<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  gte<T>(left: ExpressionOrValue<T>, right: ExpressionOrValue<T>): Expression<boolean>;
  and(...conditions: Expression<boolean>[]): Expression<boolean>;
  or(...conditions: Expression<boolean>[]): Expression<boolean>;
  not(condition: Expression<boolean>): Expression<boolean>;
}

/** Equalities on a prefix of the index's fields, then at most one range. */
export interface IndexRangeBuilder<Doc, Field extends string> {
  eq<F extends Field>(field: F, value: F extends keyof Doc ? Doc[F] : never): IndexRangeBuilder<Doc, Field>;
  gt<F extends Field>(field: F, value: F extends keyof Doc ? Doc[F] : never): IndexRangeBuilder<Doc, Field>;
  gte<F extends Field>(field: F, value: F extends keyof Doc ? Doc[F] : never): IndexRangeBuilder<Doc, Field>;
  lt<F extends Field>(field: F, value: F extends keyof Doc ? Doc[F] : never): IndexRangeBuilder<Doc, Field>;
  lte<F extends Field>(field: F, value: F extends keyof Doc ? Doc[F] : never): IndexRangeBuilder<Doc, Field>;
}

export interface PaginationOptions {
  numItems: number;
  cursor: string | null;
}

export interface PaginationResult<Doc> {
  page: Doc[];
  isDone: boolean;
  continueCursor: string;
}

export interface Query<Doc> {
  filter(predicate: (q: FilterBuilder<Doc>) => Expression<boolean>): Query<Doc>;
  /** Sorts by `field` (default: `_creationTime`); ties are broken by `_id`. */
  order(direction: 'asc' | 'desc', field?: keyof Doc & string): Query<Doc>;
  collect(): Promise<Doc[]>;
  take(count: number): Promise<Doc[]>;
  first(): Promise<Doc | null>;
  /** The one matching document, or null; more than one is an error. */
  unique(): Promise<Doc | null>;
  paginate(options: PaginationOptions): Promise<PaginationResult<Doc>>;
}

export interface QueryInitializer<Doc, Indexes extends Record<string, readonly string[]>> extends Query<Doc> {
  withIndex<IndexName extends keyof Indexes & string>(
    name: IndexName,
    range?: (
      q: IndexRangeBuilder<Doc, Indexes[IndexName][number]>,
    ) => IndexRangeBuilder<Doc, Indexes[IndexName][number]>,
  ): Query<Doc>;
}

/** What names a document of `Table`: its `Id`, or an unmanaged table's primary key. */
export type KeyOf<DataModel extends GenericDataModel, Table extends TableNamesOf<DataModel>> = NonNullable<
  DocumentOf<DataModel, Table>['_id']
>;

export interface DatabaseReader<DataModel extends GenericDataModel> {
  get<I extends Id<TableNamesOf<DataModel>>>(id: I): Promise<DocumentOf<DataModel, TableOfId<DataModel, I>> | null>;
  /** The document of `table` with this id (an unmanaged table's row by its primary key), or null. */
  get<Table extends TableNamesOf<DataModel>>(
    table: Table,
    id: KeyOf<DataModel, Table>,
  ): Promise<DocumentOf<DataModel, Table> | null>;
  query<Table extends TableNamesOf<DataModel>>(
    table: Table,
  ): QueryInitializer<DocumentOf<DataModel, Table>, IndexesOf<DataModel, Table>>;
  /** Raw SQL; every interpolated value is a bind parameter. */
  raw<Row = Record<string, unknown>>(query: SqlFragment): Promise<Row[]>;
}

export interface DatabaseWriter<DataModel extends GenericDataModel> extends DatabaseReader<DataModel> {
  insert<Table extends TableNamesOf<DataModel>>(table: Table, value: FieldsOf<DataModel, Table>): Promise<Id<Table>>;
  /** Shallow merge; a field set to `undefined` is removed. */
  patch<I extends Id<TableNamesOf<DataModel>>>(
    id: I,
    value: Partial<FieldsOf<DataModel, TableOfId<DataModel, I>>>,
  ): Promise<void>;
  /** The same, naming the table (which an unmanaged table's row, named by its primary key, needs). */
  patch<Table extends TableNamesOf<DataModel>>(
    table: Table,
    id: KeyOf<DataModel, Table>,
    value: Partial<FieldsOf<DataModel, Table>>,
  ): Promise<void>;
  replace<I extends Id<TableNamesOf<DataModel>>>(
    id: I,
    value: FieldsOf<DataModel, TableOfId<DataModel, I>>,
  ): Promise<void>;
  replace<Table extends TableNamesOf<DataModel>>(
    table: Table,
    id: KeyOf<DataModel, Table>,
    value: FieldsOf<DataModel, Table>,
  ): Promise<void>;
  delete(id: Id<TableNamesOf<DataModel>>): Promise<void>;
  delete<Table extends TableNamesOf<DataModel>>(table: Table, id: KeyOf<DataModel, Table>): Promise<void>;
}
