/**
 * The query builder: `ctx.db.query(table)` and its chain. It only builds the query IR; `collect`,
 * `take`, `first`, `unique` and `paginate` hand it to the core, which runs it as one statement.
 */
import type { IndexMap } from '../schema.js';
import { ConvoyError } from '../values/errors.js';
import type { DbBackend } from './backend.js';
import { condition, filterBuilder } from './filter.js';
import { IndexRange } from './indexRange.js';
import type { FilterNode, QueryPlan } from './ir.js';
import { parseResult } from './results.js';
import type { Expression, FilterBuilder, PaginationOptions, PaginationResult, QueryInitializer } from './types.js';

/** A document as the run-time builder sees it: of any table, typed by the caller's data model. */
type AnyDocument = any;

export class QueryBuilder implements QueryInitializer<AnyDocument, IndexMap> {
  private plan: QueryPlan;

  /**
   * @param declared the fields the table's documents may have, system fields included; a filter
   * or an order on any other is refused (it could only ever match nothing). Null for a table
   * Convoy does not manage, whose columns the schema need not list.
   */
  constructor(
    private readonly backend: DbBackend,
    private readonly callId: number,
    table: string,
    private readonly declared: ReadonlySet<string> | null = null,
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

  filter(predicate: (q: FilterBuilder<AnyDocument>) => Expression<boolean>) {
    const next = condition(predicate(filterBuilder));
    for (const field of fieldsOf(next)) this.checkDeclared('filter', field);
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
    if (field !== undefined) this.checkDeclared('order', field);
    this.plan.order = { dir: direction, field: field ?? null };
    return this;
  }

  private checkDeclared(step: string, field: string) {
    if (!this.declared || this.declared.has(field)) return;
    const known = [...this.declared].filter((name) => !name.startsWith('_')).join(', ');
    throw new ConvoyError(
      'INVALID_ARGS',
      `${step}: ${this.plan.table} has no field ${JSON.stringify(field)} in the schema (its fields: ${known || 'none'})`,
    );
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
  async paginate(options: PaginationOptions): Promise<PaginationResult<AnyDocument>> {
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

  private async run(limit: number | null): Promise<AnyDocument[]> {
    const plan: QueryPlan = { ...this.plan, limit };
    return parseResult<AnyDocument[]>(await this.backend.dbQuery(this.callId, JSON.stringify(plan)));
  }
}

/** The document fields a filter names. */
function* fieldsOf(node: FilterNode): Generator<string> {
  if ('cmp' in node) {
    for (const side of [node.left, node.right]) if ('field' in side) yield side.field;
  } else if ('not' in node) {
    yield* fieldsOf(node.not);
  } else {
    for (const inner of 'and' in node ? node.and : node.or) yield* fieldsOf(inner);
  }
}
