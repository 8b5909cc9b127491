/**
 * The only importer of the native module. Everything else calls the engine through this wrapper,
 * which turns native failures back into `ConvoyError`s.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DbBackend } from '../db/database.js';
import { ConvoyError, type ConvoyErrorShape } from '../values/errors.js';

export interface FunctionCall {
  callId: number;
  kind: 'query' | 'mutation';
  path: string;
  argsJson: string;
  headersJson: string;
}

export interface ServerOptions {
  port: number;
  host?: string;
  maxBodyBytes?: number;
  callTimeoutMs?: number;
  allowedOrigins?: string[];
  maxStreams?: number;
  streamIdleTimeoutMs?: number;
  dev?: boolean;
}

/** The native engine: `ctx.db`'s backend (its `db*` methods), schema, and HTTP server. */
export interface Engine extends DbBackend {
  syncSchema(schemaJson: string, dryRun: boolean): Promise<string>;
  setSchema(schemaJson: string): Promise<void>;
  installChangeTrigger(): Promise<string[]>;
  tablesWithoutChangeTrigger(): Promise<string[]>;
  setFunctions(functionsJson: string): void;
  startServer(options: ServerOptions, dispatch: (call: FunctionCall) => void): Promise<number>;
  respond(callId: number, ok: boolean, payloadJson: string): void;
  respondAwaitingCommit(callId: number, ok: boolean, payloadJson: string): Promise<boolean>;
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

interface NativeModule {
  Engine: { connect(options: { databaseUrl: string; directDatabaseUrl?: string; poolSize?: number }): Promise<Engine> };
  initLogging(defaultFilter: string, json: boolean): void;
}

/**
 * Starts the server log on stderr (once per process; `CONVOY_LOG` overrides the filter). Call it
 * before `connectEngine`, which otherwise starts it with warnings only.
 */
export function initLogging(defaultFilter: string, json: boolean): void {
  native().initLogging(defaultFilter, json);
}

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

let loaded: NativeModule | undefined;

function native(): NativeModule {
  if (!loaded) {
    // dist/server/native.js → the package root, where `napi build` puts the loader.
    const loader = fileURLToPath(new URL('../../native.cjs', import.meta.url));
    if (!existsSync(loader)) {
      throw new ConvoyError('INTERNAL', `Convoy's native core is missing (${loader}); run \`npm run build\``);
    }
    loaded = createRequire(import.meta.url)(loader) as NativeModule;
  }
  return loaded;
}

function rethrow(error: unknown): never {
  throw fromNative(error);
}

function checked<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    rethrow(error);
  }
}

/** The native engine with every failure turned into a `ConvoyError`. */
class CheckedEngine implements Engine {
  constructor(private readonly inner: Engine) {}

  syncSchema(schemaJson: string, dryRun: boolean) {
    return this.inner.syncSchema(schemaJson, dryRun).catch(rethrow);
  }
  setSchema(schemaJson: string) {
    return this.inner.setSchema(schemaJson).catch(rethrow);
  }
  installChangeTrigger() {
    return this.inner.installChangeTrigger().catch(rethrow);
  }
  tablesWithoutChangeTrigger() {
    return this.inner.tablesWithoutChangeTrigger().catch(rethrow);
  }
  setFunctions(functionsJson: string) {
    checked(() => this.inner.setFunctions(functionsJson));
  }
  dbGet(callId: number, table: string, id: string) {
    return this.inner.dbGet(callId, table, id).catch(rethrow);
  }
  dbLocate(callId: number, id: string) {
    return this.inner.dbLocate(callId, id).catch(rethrow);
  }
  dbQuery(callId: number, planJson: string) {
    return this.inner.dbQuery(callId, planJson).catch(rethrow);
  }
  dbPaginate(callId: number, planJson: string, cursor: string | null, numItems: number) {
    return this.inner.dbPaginate(callId, planJson, cursor, numItems).catch(rethrow);
  }
  dbInsert(callId: number, table: string, documentJson: string) {
    return this.inner.dbInsert(callId, table, documentJson).catch(rethrow);
  }
  dbRaw(callId: number, sql: string, paramsJson: string) {
    return this.inner.dbRaw(callId, sql, paramsJson).catch(rethrow);
  }
  dbSeen(callId: number, id: string) {
    return checked(() => this.inner.dbSeen(callId, id));
  }
  dbQueueInsert(callId: number, table: string, documentJson: string) {
    return checked(() => this.inner.dbQueueInsert(callId, table, documentJson));
  }
  dbQueueReplace(callId: number, table: string, id: string, documentJson: string) {
    checked(() => this.inner.dbQueueReplace(callId, table, id, documentJson));
  }
  dbQueueDelete(callId: number, table: string, id: string) {
    checked(() => this.inner.dbQueueDelete(callId, table, id));
  }
  dbUpdateUnmanaged(callId: number, table: string, keyJson: string, documentJson: string, everyField: boolean) {
    return this.inner.dbUpdateUnmanaged(callId, table, keyJson, documentJson, everyField).catch(rethrow);
  }
  dbDeleteUnmanaged(callId: number, table: string, keyJson: string) {
    return this.inner.dbDeleteUnmanaged(callId, table, keyJson).catch(rethrow);
  }
  startServer(options: ServerOptions, dispatch: (call: FunctionCall) => void) {
    return this.inner.startServer(options, dispatch).catch(rethrow);
  }
  respond(callId: number, ok: boolean, payloadJson: string) {
    this.inner.respond(callId, ok, payloadJson);
  }
  respondAwaitingCommit(callId: number, ok: boolean, payloadJson: string) {
    return this.inner.respondAwaitingCommit(callId, ok, payloadJson).catch(rethrow);
  }
  stopServer() {
    return this.inner.stopServer().catch(rethrow);
  }
  close() {
    return this.inner.close().catch(rethrow);
  }
}

/**
 * Connects to Postgres (and checks that it answers). `directDatabaseUrl` carries LISTEN and
 * schema changes when `databaseUrl` is a transaction-mode pooler (SPEC §11); by default it is
 * `DATABASE_DIRECT_URL`, so that the CLI and every server read the same environment.
 */
export async function connectEngine(
  databaseUrl: string,
  poolSize?: number,
  directDatabaseUrl: string | undefined = process.env.DATABASE_DIRECT_URL,
): Promise<Engine> {
  const engine = await native()
    .Engine.connect({
      databaseUrl,
      ...(directDatabaseUrl ? { directDatabaseUrl } : {}),
      ...(poolSize ? { poolSize } : {}),
    })
    .catch(rethrow);
  return new CheckedEngine(engine);
}
