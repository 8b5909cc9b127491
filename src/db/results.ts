/**
 * Results as the core sends them: JSON text, parsed once. The text is kept beside each parsed
 * object, so that a handler that returns a query's result untouched is answered with that text
 * rather than by serializing the objects again.
 */

/** Each parsed result object → the JSON text it came from. */
export const rawJsonOf = new WeakMap<object, string>();

export function parseResult<T>(json: string): T {
  const value = JSON.parse(json);
  if (typeof value === 'object' && value !== null) rawJsonOf.set(value, json);
  return value;
}
