/**
 * Names and values spliced into the conformance report's SQL. Table names are validated
 * identifiers, but field names are any string a schema may use, so they reach SQL only as
 * literals (`data->'my field'`), never as identifiers.
 */

/** `"projects"`: a table name as an identifier. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new TypeError(`not an SQL identifier: ${JSON.stringify(name)}`);
  return `"${name.replaceAll('"', '""')}"`;
}

/** `'it''s'`: a string as an SQL literal (standard_conforming_strings, on since Postgres 9.1). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new TypeError('an SQL literal may not contain NUL');
  return `'${text.replaceAll("'", "''")}'`;
}

/** A JSON value as a jsonb literal: `'"draft"'::jsonb`. */
export function jsonbLiteral(value: unknown): string {
  return `${quoteLiteral(JSON.stringify(value))}::jsonb`;
}

/** `data->'settings'->'theme'`: the JSON value at `path` inside the jsonb expression `data`. */
export function jsonAt(data: string, path: readonly string[]): string {
  return path.reduce((expression, key) => `${expression}->${quoteLiteral(key)}`, data);
}

/** `ARRAY['settings','theme']`: a path as `jsonb_set` and `#-` take it. */
export function pathArray(path: readonly string[]): string {
  return `ARRAY[${path.map(quoteLiteral).join(',')}]::text[]`;
}
