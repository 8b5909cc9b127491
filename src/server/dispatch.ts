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
}

/** The JSON of a handler's result: the text it came from when it is a query's result untouched. */
function resultJson(result: unknown): string {
  if (typeof result === 'object' && result !== null) {
    const raw = rawJsonOf.get(result);
    if (raw !== undefined) return raw;
  }
  return JSON.stringify(result ?? null);
}

async function run(engine: Engine, app: LoadedApp, call: FunctionCall, afterCommit: Array<() => unknown>) {
  if (isIdentifyCall(call)) return identify(engine, app, call);
  if (call.path === ReservedCall.health) return 'true';
  if (call.path === ReservedCall.validate) {
    const { path, args } = JSON.parse(call.argsJson) as { path: string; args: string };
    const subscribed = app.functions.get(path);
    if (!subscribed) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(path)}`);
    parsedArgs(subscribed, path, args);
    return 'true';
  }
  const fn = app.functions.get(call.path);
  if (!fn) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(call.path)}`);
  const args = parsedArgs(fn, call.path, call.argsJson);
  // The generated `FunctionKind` enum's values are these strings.
  const kind: FunctionKind = call.kind;
  const db = createDatabase(engine, call.callId, app.schema, kind, refsIn(fn, args));
  const base: Record<string, unknown> =
    kind === 'mutation' ? { db, afterCommit: (effect: () => unknown) => afterCommit.push(effect) } : { db };
  const ctx = await contextFor(app, call, base, { url: `/api/${kind}`, method: 'POST' });
  return resultJson(await fn.handler(ctx, args));
}

/** The function the core calls with each `FunctionCall` (`startServer`'s `dispatch`). */
export function dispatcher({ engine, app, log, dev }: DispatchOptions): (call: FunctionCall) => void {
  const runAfterCommit = async (call: FunctionCall, effects: Array<() => unknown>) => {
    for (const effect of effects) {
      try {
        await effect();
      } catch (error) {
        log(`convoy: an afterCommit callback of ${call.path} failed: ${(error as Error)?.stack ?? error}`);
      }
    }
  };

  return (call) => {
    const afterCommit: Array<() => unknown> = [];
    run(engine, app(), call, afterCommit).then(
      (payload) => {
        if (afterCommit.length === 0) return engine.respond(call.callId, true, payload);
        engine.respondAwaitingCommit(call.callId, true, payload).then(
          async (committed) => {
            if (committed) await runAfterCommit(call, afterCommit);
          },
          (error) => log(`convoy: ${call.path}: ${error}`),
        );
      },
      (error) => engine.respond(call.callId, false, errorPayload(error, call.path, log, dev)),
    );
  };
}
