/**
 * How a failed call is answered. A `ConvoyError` reaches the client as thrown; anything else is a
 * bug or an unexpected failure in the handler: the client gets an id to quote (and in dev mode
 * the detail), and the server log holds the detail under the same id.
 */
import { randomUUID } from 'node:crypto';
import { isConvoyError } from '../values/errors.js';
import { wireShapeOf } from './nativeErrors.js';

/** A lone UTF-16 surrogate: valid in a JS string, not in the UTF-8 the core reads. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `JSON.stringify`, with lone surrogates (which it writes as `\ud800` escapes, and which the
 * core's JSON parser refuses) replaced by U+FFFD: an error that quotes a hostile string (Zod's
 * issues do) must still reach the client as that error, not as a failure to read it.
 */
function wellFormedJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (!/\\ud[89a-f]/i.test(text)) return text;
  const clean = (item: unknown): unknown => {
    if (typeof item === 'string') return item.replace(LONE_SURROGATE, '\ufffd');
    if (Array.isArray(item)) return item.map(clean);
    if (typeof item === 'object' && item !== null) {
      return Object.fromEntries(
        Object.entries(item).map(([key, inner]) => [key.replace(LONE_SURROGATE, '\ufffd'), clean(inner)]),
      );
    }
    return item;
  };
  return JSON.stringify(clean(JSON.parse(text)));
}

/** The `{code, message, data?}` JSON that `respond` sends for a call to `path` that failed. */
export function errorPayload(error: unknown, path: string, log: (line: string) => void, dev: boolean): string {
  if (isConvoyError(error)) return wellFormedJson(wireShapeOf(error));
  const requestId = randomUUID();
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log(`convoy: ${path} failed (request ${requestId}): ${detail}`);
  if (dev) {
    const message = error instanceof Error ? error.message : String(error);
    return wellFormedJson({ code: 'INTERNAL', message, data: { requestId, stack: detail } });
  }
  return JSON.stringify({ code: 'INTERNAL', message: `Internal error (request ${requestId})`, data: { requestId } });
}
