/**
 * `skipToken`: passed for a query's args, it runs nothing (yet). A registered symbol, so that
 * two copies of the package agree on it.
 */
export const skipToken: unique symbol = Symbol.for('@avvos/convoy/skipToken') as never;
export type SkipToken = typeof skipToken;
