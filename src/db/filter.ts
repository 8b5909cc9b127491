/**
 * Filter expressions: the `q` of `.filter(q => …)`. Each expression is an opaque frozen handle
 * that carries its IR; a field reference is an operand, a comparison is a filter node.
 */
import { ConvoyError } from '../values/errors.js';
import type { FilterNode, Operand } from './ir.js';
import type { Expression, FilterBuilder } from './types.js';

const irOf = new WeakMap<object, Operand | FilterNode>();

function expression<T>(ir: Operand | FilterNode): Expression<T> {
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

/** The filter node a condition stands for; a field, a constant or a stranger object is refused. */
export function condition(value: Expression<boolean>): FilterNode {
  const ir = irOf.get(value as object);
  if (!ir || 'field' in ir || 'value' in ir) {
    throw new ConvoyError('INVALID_ARGS', 'filter: expected a condition such as q.eq(q.field("status"), "active")');
  }
  return ir;
}

export const filterBuilder: FilterBuilder<any> = {
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
