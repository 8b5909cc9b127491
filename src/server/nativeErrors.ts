/**
 * Errors across the native boundary, both ways. Out of the core: a rejection whose message is
 * `CONVOY_ERROR:` and the error's JSON (`crates/convoy_node` writes it; napi's async rejections
 * carry only a generic status, so the code travels in the message). Into the core: a handler's
 * `ConvoyError` as its wire shape, marked when it was the core's own.
 */
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';

/** What the binding puts before the error's JSON in a native rejection's message. */
const ERROR_PREFIX = 'CONVOY_ERROR:';

/** Errors the core raised, as opposed to those the app threw (see `wireShapeOf`). */
const fromCore = new WeakSet<ConvoyError>();

/** A native rejection carries its `ConvoyError` as JSON in the message (napi keeps no codes). */
export function fromNative(error: unknown): ConvoyError {
  const message = error instanceof Error ? error.message : String(error);
  let decoded = new ConvoyError('INTERNAL', message);
  if (message.startsWith(ERROR_PREFIX)) {
    try {
      decoded = ConvoyError.fromJSON(JSON.parse(message.slice(ERROR_PREFIX.length)) as ConvoyErrorShape);
    } catch {
      // Keep the raw message.
    }
  }
  fromCore.add(decoded);
  return decoded;
}

/**
 * How a handler's `ConvoyError` travels back to the core: as thrown, and marked when it is the
 * core's own (a conflict the handler let through is retried; `CONFLICT` thrown by the app is not).
 */
export function wireShapeOf(error: ConvoyError): ConvoyErrorShape & { origin?: 'convoy' } {
  const shape = error.toJSON();
  return fromCore.has(error) ? { ...shape, origin: 'convoy' } : shape;
}
