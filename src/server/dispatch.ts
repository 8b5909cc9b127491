/**
 * Handling a `FunctionCall` from the core: run the app's handler with its `ctx`, and answer with
 * `respond` — always exactly once, whatever the handler does. A mutation that registered
 * `ctx.afterCommit` callbacks answers with `respondAwaitingCommit` and runs them once it committed.
 */
import { createDatabase, rawJsonOf } from '../db/database.js';
import type { FunctionKind } from '../functions.js';
import { ConvoyError } from '../values/errors.js';
import type { LoadedApp } from './app.js';
import { parsedArgs, refsIn } from './args.js';
import { type CallOutcome, carriesSecret, type ServerExtensions } from './extensions.js';
import { errorPayload } from './failures.js';
import { contextFor, identify, isIdentifyCall } from './identity.js';
import { type Engine, type FunctionCall, ReservedCall } from './native.js';

export interface DispatchOptions {
  engine: Engine;
  /** The app as last loaded: a reload swaps it between calls. */
  app: () => LoadedApp;
  log: (line: string) => void;
  /** Internal errors reach the client in full. */
  dev: boolean;
  /** A tool's functions and call observer (`extensions.ts`). */
  extensions?: ServerExtensions | undefined;
}

/** The JSON of a handler's result: the text it came from when it is a query's result untouched. */
function resultJson(result: unknown): string {
  if (typeof result === 'object' && result !== null) {
    const raw = rawJsonOf.get(result);
    if (raw !== undefined) return raw;
  }
  return JSON.stringify(result ?? null);
}

async function run(
  engine: Engine,
  app: LoadedApp,
  call: FunctionCall,
  afterCommit: Array<() => unknown>,
  extensions: ServerExtensions | undefined,
) {
  const trusted = extensions !== undefined && carriesSecret(call.headersJson, extensions.secret);
  // The tool's stream and calls are its own: they share live results with nobody else.
  if (isIdentifyCall(call)) return trusted ? JSON.stringify('internal:tool') : identify(engine, app, call);
  if (call.path === ReservedCall.health) return 'true';
  if (call.path === ReservedCall.validate) {
    const { path, args } = JSON.parse(call.argsJson) as { path: string; args: string };
    // The core asks without the stream's headers. Checking args runs nothing, and a stream
    // without the secret still gets NOT_FOUND when its subscription runs.
    const subscribed = extensions?.functions.get(path) ?? app.functions.get(path);
    if (!subscribed) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(path)}`);
    parsedArgs(subscribed, path, args);
    return 'true';
  }
  const internal = trusted ? extensions.functions.get(call.path) : undefined;
  const fn = internal ?? app.functions.get(call.path);
  if (!fn) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(call.path)}`);
  const args = parsedArgs(fn, call.path, call.argsJson);
  // The generated `FunctionKind` enum's values are these strings.
  const kind: FunctionKind = call.kind;
  const db = createDatabase(engine, call.callId, app.schema, kind, refsIn(fn, args));
  const base: Record<string, unknown> =
    kind === 'mutation' ? { db, afterCommit: (effect: () => unknown) => afterCommit.push(effect) } : { db };
  const ctx = internal ? base : await contextFor(app, call, base, { url: `/api/${kind}`, method: 'POST' });
  return resultJson(await fn.handler(ctx, args));
}

/** How a failed call's answer reads, for the observer: its code and message, and its stack in dev. */
function failureOf(error: unknown, payload: string, dev: boolean): NonNullable<CallOutcome['error']> {
  const { code, message } = JSON.parse(payload) as { code: string; message: string };
  const stack = dev && error instanceof Error ? error.stack : undefined;
  return stack ? { code, message, stack } : { code, message };
}

/** The function the core calls with each `FunctionCall` (`startServer`'s `dispatch`). */
export function dispatcher({ engine, app, log, dev, extensions }: DispatchOptions): (call: FunctionCall) => void {
  const runAfterCommit = async (call: FunctionCall, effects: Array<() => unknown>) => {
    for (const effect of effects) {
      try {
        await effect();
      } catch (error) {
        log(`convoy: an afterCommit callback of ${call.path} failed: ${(error as Error)?.stack ?? error}`);
      }
    }
  };

  // The observer is a tool's (the dashboard's log): its failure is logged and never changes
  // how the call is answered, nor skips its afterCommit callbacks.
  const observerFailed = (call: FunctionCall, error: unknown) =>
    log(`convoy: the call observer failed on ${call.path}: ${(error as Error)?.stack ?? error}`);

  const observed = (call: FunctionCall): ((outcome: CallOutcome) => void) | undefined => {
    if (!extensions?.observe || call.path.startsWith('#') || extensions.functions.has(call.path)) return undefined;
    let ended: ((outcome: CallOutcome) => unknown) | undefined;
    try {
      ended = extensions.observe(call) ?? undefined;
    } catch (error) {
      observerFailed(call, error);
      return undefined;
    }
    if (!ended) return undefined;
    const end = ended;
    return (outcome) => {
      try {
        // An async observer's rejection is caught too, so that Node does not exit on it.
        Promise.resolve(end(outcome)).catch((error) => observerFailed(call, error));
      } catch (error) {
        observerFailed(call, error);
      }
    };
  };

  return (call) => {
    const afterCommit: Array<() => unknown> = [];
    const ended = observed(call);
    run(engine, app(), call, afterCommit, extensions).then(
      (payload) => {
        // An observed mutation waits for its commit too, so that the observer knows how it ended.
        if (afterCommit.length === 0 && !(ended && call.kind === 'mutation')) {
          engine.respond(call.callId, true, payload);
          ended?.({ ok: true });
          return;
        }
        engine.respondAwaitingCommit(call.callId, true, payload).then(
          async (committed) => {
            ended?.({ ok: true, committed });
            if (committed) await runAfterCommit(call, afterCommit);
          },
          (error) => log(`convoy: ${call.path}: ${error}`),
        );
      },
      (error) => {
        const payload = errorPayload(error, call.path, log, dev);
        engine.respond(call.callId, false, payload);
        ended?.({ ok: false, error: failureOf(error, payload, dev) });
      },
    );
  };
}
