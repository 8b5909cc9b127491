/**
 * What a tool of Convoy's own (the dashboard) adds to a server it starts with: functions that only
 * it may call, and an observer told how each of the app's calls ended.
 *
 * The internal functions sit in the core's function table beside the app's, so that what they do
 * takes the app's own paths: their writes are `ctx.db`'s (validation, constraints, live queries
 * woken) and their reads are live queries. A call of one runs only when its request carries the
 * tool's secret in `x-convoy-internal`; without it the name answers `NOT_FOUND`, as a function that
 * does not exist. They run without the app's `createContext`: the secret is who asks.
 */
import type { AnyFunction } from './app.js';
import type { FunctionCall } from './native.js';
import { secretMatches } from './secrets.js';

export const INTERNAL_HEADER = 'x-convoy-internal';

/** How a call of the app's ended, as JavaScript sees it. */
export interface CallOutcome {
  ok: boolean;
  /**
   * For a mutation whose handler returned: whether its transaction committed. `false` when the
   * commit failed (a constraint, or a conflict the core runs again).
   */
  committed?: boolean;
  error?: { code: string; message: string; stack?: string };
}

/** Told of a call as it starts; what it returns is told how the call ended. */
export type CallObserver = (call: FunctionCall) => ((outcome: CallOutcome) => void) | undefined;

export interface ServerExtensions {
  /** By wire name; the app's functions of the same name are hidden from the secret's holder. */
  functions: ReadonlyMap<string, AnyFunction>;
  /** What `x-convoy-internal` must be for a call of `functions`. */
  secret: string;
  observe?: CallObserver;
}

/** Whether a call's request headers carry the secret; compared in constant time. */
export function carriesSecret(headersJson: string, secret: string): boolean {
  // Every call is asked: most are the app's own, and need no parse to say so.
  if (!headersJson.includes(INTERNAL_HEADER)) return false;
  let presented: unknown;
  try {
    presented = (JSON.parse(headersJson) as Record<string, unknown>)[INTERNAL_HEADER];
  } catch {
    return false;
  }
  return typeof presented === 'string' && secretMatches(presented, secret);
}
