/**
 * The query IR: what a builder chain becomes, and what the core's planner reads as `planJson`
 * (docs/architecture.md § Query IR). Types only.
 */

/** A side of a comparison: a document field, or a constant. */
export type Operand = { field: string } | { value: unknown };

export type ComparisonOp = 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte';

export type FilterNode =
  | { cmp: ComparisonOp; left: Operand; right: Operand }
  | { and: FilterNode[] }
  | { or: FilterNode[] }
  | { not: FilterNode };

/** An equality on an index field. */
export interface IndexEq {
  field: string;
  value: unknown;
}

/** The one range after the equalities: `op` is `gt`, `gte`, `lt` or `lte`. */
export interface IndexBound {
  field: string;
  op: string;
  value: unknown;
}

export interface QueryPlan {
  table: string;
  index: { name: string; eq: IndexEq[]; range: IndexBound[] } | null;
  filter: FilterNode | null;
  /** `field: null` orders by `_creationTime`. */
  order: { dir: 'asc' | 'desc'; field: string | null };
  limit: number | null;
}
