/**
 * The `q` of `.withIndex(name, q => …)`: equalities on a prefix of the index's fields, then the
 * range, in that order.
 */
import { ConvoyError } from '../values/errors.js';
import type { IndexBound, IndexEq } from './ir.js';
import type { IndexRangeBuilder } from './types.js';

export class IndexRange implements IndexRangeBuilder<any, string> {
  readonly eqs: IndexEq[] = [];
  readonly bounds: IndexBound[] = [];

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
