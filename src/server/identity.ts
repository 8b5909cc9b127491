/**
 * Who is asking: the `ctx` the app's `createContext` makes for a call, and the identity under
 * which live results are shared — streams whose `createContext` returned the same plain data
 * (docs/security.md).
 */
import { randomUUID } from 'node:crypto';
import { createDatabase, type DbBackend } from '../db/database.js';
import { ConvoyError, isConvoyError } from '../values/errors.js';
import type { LoadedApp } from './app.js';
import { type FunctionCall, ReservedCall } from './native.js';

/** The request `createContext` is told of, besides the call's headers. */
interface RequestLine {
  method: string;
  url: string;
}

/** `ctx` for a call: `base`, and what the app's `createContext` adds for this request. */
export async function contextFor(
  app: LoadedApp,
  call: FunctionCall,
  base: Record<string, unknown>,
  { method, url }: RequestLine,
): Promise<Record<string, unknown>> {
  if (!app.createContext) return base;
  const req = { method, url, headers: JSON.parse(call.headersJson) };
  let extra: unknown;
  try {
    extra = await app.createContext(req, base);
  } catch (error) {
    // What token libraries throw for a bad token is a plain Error: the caller is not who it
    // claims, which is UNAUTHORIZED, not a server fault (docs/security.md).
    if (isConvoyError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new ConvoyError('UNAUTHORIZED', `createContext refused the request: ${message}`);
  }
  return { ...(extra as Record<string, unknown>), ...base };
}

/** A call the core reserves for learning who asks, not one of the app's functions. */
export function isIdentifyCall(call: FunctionCall): boolean {
  return call.path === ReservedCall.connect || call.path === ReservedCall.identify;
}

/**
 * Answers `#connect` and `#identify`: who is asking, as `createContext` says (a refusal refuses
 * the request), for a sync stream that opens or for a query call that a live query may answer.
 * Equal contexts share live queries' results. The answer is the identity as JSON.
 */
export async function identify(backend: DbBackend, app: LoadedApp, call: FunctionCall): Promise<string> {
  const base = { db: createDatabase(backend, call.callId, app.schema, 'query') };
  const request =
    call.path === ReservedCall.connect ? { url: '/api/sync', method: 'GET' } : { url: '/api/query', method: 'POST' };
  const context = await contextFor(app, call, base, request);
  return JSON.stringify(identityOf(context, base));
}

/**
 * The identity a sync stream's subscriptions are shared under: what `createContext` returned, as
 * JSON, when JSON says everything about it (plain objects, arrays, strings, finite numbers,
 * booleans, null, dates). Anything else (a class instance, a function, a Map) may hide who is
 * asking, so the stream gets an identity of its own and shares with nobody.
 */
export function identityOf(context: Record<string, unknown>, base: Record<string, unknown>): string {
  const added = Object.fromEntries(Object.entries(context).filter(([key]) => !(key in base)));
  return isPlainData(added, 0) ? `context:${JSON.stringify(added)}` : `stream:${randomUUID()}`;
}

function isPlainData(value: unknown, depth: number): boolean {
  if (depth > 32) return false;
  if (value === null || value === undefined || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (value instanceof Date) return true;
  if (Array.isArray(value)) return value.every((item) => isPlainData(item, depth + 1));
  if (typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  return Object.entries(value).every(([, item]) => isPlainData(item, depth + 1));
}
