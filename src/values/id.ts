/**
 * Document ids are UUIDv7 strings. In TypeScript an `Id<'users'>` is a string branded with its
 * table, so an id of one table cannot be passed where another's is expected.
 */
declare const tableBrand: unique symbol;

export type Id<TableName extends string> = string & { readonly [tableBrand]: TableName };

// Any RFC 9562 UUID (lowercase or uppercase hex); Convoy writes v7, but ids of existing rows in
// unmanaged tables may be of any version.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
