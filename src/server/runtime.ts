/**
 * The Convoy server: the native core serves HTTP and runs SQL; this side runs the app's handlers.
 * Each call arrives from Rust as a `FunctionCall`, gets its args validated by Zod, runs, and is
 * answered with `respond` — always exactly once, whatever the handler does.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createDatabase, describeIssues, rawJsonOf } from '../db/database.js';
import { describeSchema, refTableOf } from '../schema.js';
import { ConvoyError, isConvoyError } from '../values/errors.js';
import { type AnyFunction, type LoadedApp, loadApp, loadBuiltApp } from './app.js';
import { connectEngine, type Engine, type FunctionCall, wireShapeOf } from './native.js';

export interface ConvoyOptions {
  /** The folder holding `convoy/`. */
  appDir: string;
  databaseUrl: string;
  /** 0 picks a free port. Default 3737. */
  port?: number;
  host?: string;
  /** Dev mode shows internal errors in full to the client; production answers a generic message. */
  dev?: boolean;
  /** Postgres connections for queries, and as many again for mutations. Default 8. */
  poolSize?: number;
  /**
   * Browser origins other than the server's own that may call it: exact (`https://app.example.com`)
   * or any port (`http://localhost:*`). Dev mode adds localhost and 127.0.0.1 on any port.
   */
  allowedOrigins?: string[];
  /**
   * Install the trigger that makes writes made outside Convoy (psql, migrations, other services)
   * reach live queries (docs/postgres.md). Default: on in dev mode, off in production. With
   * `syncSchema: false` nothing is installed: `convoy migrate` installs it.
   */
  changeTrigger?: boolean;
  /**
   * Where the app comes from: `'sources'` (the default) bundles `convoy/` on every load;
   * `'bundle'` loads `.convoy/dist/`, which `convoy build` writes, and needs neither the
   * TypeScript sources nor esbuild.
   */
  load?: 'sources' | 'bundle';
  /**
   * `true` (the default): create what the schema needs, as `convoy dev` does. `false`: change
   * nothing, and refuse to start when the database does not match the schema, naming
   * `convoy migrate` (the production server).
   */
  syncSchema?: boolean;
  /** Request bodies larger than this are refused with `PAYLOAD_TOO_LARGE`. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * How long a function may run before its caller gets `INTERNAL` (a mutation's transaction is
   * rolled back). A function may set its own with `timeoutMs`. Default 30 000.
   */
  functionTimeoutMs?: number;
  /** Sync streams open at once; more are answered `UNAVAILABLE`. Default 10 000. */
  maxStreams?: number;
  /** A sync stream that holds no subscription for this long is closed. Default 60 000. */
  streamIdleTimeoutMs?: number;
  /** Called with a line for the terminal (schema changes, internal errors). Default: console.error. */
  log?: (line: string) => void;
}

/** The limits of `ConvoyOptions` that environment variables may set (docs/security.md). */
export type Limits = Pick<
  ConvoyOptions,
  'allowedOrigins' | 'maxBodyBytes' | 'functionTimeoutMs' | 'maxStreams' | 'streamIdleTimeoutMs'
>;

export interface ConvoyServer {
  readonly port: number;
  readonly url: string;
  /** The app as last loaded. */
  readonly app: LoadedApp;
  /** Schema sync report of the last load, as the core returned it. */
  readonly lastSync: SyncReport;
  /** Loads `convoy/` again and swaps it in; open connections and the HTTP server stay up. */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export interface SyncReport {
  statements: string[];
  notes: string[];
  applied: boolean;
}

/** In dev mode a front end on this machine (Vite, Next) may call the server from any port. */
const LOCAL_ORIGINS = ['http://localhost:*', 'http://127.0.0.1:*'];

/**
 * The limits set in the environment: `CONVOY_ALLOWED_ORIGINS` (comma-separated),
 * `CONVOY_MAX_BODY_BYTES`, `CONVOY_FUNCTION_TIMEOUT_MS`, `CONVOY_MAX_STREAMS`,
 * `CONVOY_STREAM_IDLE_TIMEOUT_MS`.
 */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): Limits {
  const limits: Limits = {
    allowedOrigins: (env.CONVOY_ALLOWED_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  };
  const numbers = {
    maxBodyBytes: 'CONVOY_MAX_BODY_BYTES',
    functionTimeoutMs: 'CONVOY_FUNCTION_TIMEOUT_MS',
    maxStreams: 'CONVOY_MAX_STREAMS',
    streamIdleTimeoutMs: 'CONVOY_STREAM_IDLE_TIMEOUT_MS',
  } as const;
  for (const [option, name] of Object.entries(numbers) as Array<[keyof typeof numbers, string]>) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ConvoyError('INVALID_ARGS', `${name} must be a positive whole number, not ${JSON.stringify(text)}`);
    }
    limits[option] = value;
  }
  return limits;
}

/** The largest value a native `u32` option takes. */
const U32_MAX = 0xffff_ffff;

function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0 || value > U32_MAX) {
    throw new ConvoyError('INVALID_ARGS', `${name} must be a positive whole number up to ${U32_MAX}, not ${value}`);
  }
  return value;
}

const validators = new WeakMap<AnyFunction, z.ZodType>();

function argsValidator(fn: AnyFunction): z.ZodType {
  let validator = validators.get(fn);
  if (!validator) {
    validator = z.strictObject(fn.input);
    validators.set(fn, validator);
  }
  return validator;
}

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

/**
 * The ids among a call's args that are declared `defineRef(table)` (directly, optional, nullable
 * or in an array), with their tables: ctx.db keeps each to its table.
 */
function refsIn(fn: AnyFunction, args: unknown): Map<string, string> {
  const refs = new Map<string, string>();
  if (typeof args !== 'object' || args === null) return refs;
  const visit = (validator: z.ZodType, value: unknown) => {
    const table = refTableOf(validator);
    if (table !== undefined) {
      if (typeof value === 'string') refs.set(value, table);
      return;
    }
    // By Zod's own description of the schema, not instanceof: the app's bundle may hold its own
    // copy of Zod.
    const def = (validator as { _zod?: { def?: { type?: string; innerType?: z.ZodType; element?: z.ZodType } } })._zod
      ?.def;
    if ((def?.type === 'optional' || def?.type === 'nullable') && def.innerType) {
      visit(def.innerType, value);
    } else if (def?.type === 'array' && def.element && Array.isArray(value)) {
      for (const element of value) visit(def.element, element);
    }
  };
  for (const [name, validator] of Object.entries(fn.input)) {
    visit(validator as z.ZodType, (args as Record<string, unknown>)[name]);
  }
  return refs;
}

export async function syncApp(engine: Engine, app: LoadedApp, dryRun: boolean): Promise<SyncReport> {
  const schemaJson = JSON.stringify(describeSchema(app.schema));
  const report = JSON.parse(await engine.syncSchema(schemaJson, dryRun)) as SyncReport;
  if (!dryRun) await engine.setSchema(schemaJson);
  return report;
}

/** Gives the engine the app's schema (it reads the unmanaged tables' columns), changing nothing. */
export async function setAppSchema(engine: Engine, app: LoadedApp): Promise<void> {
  await engine.setSchema(JSON.stringify(describeSchema(app.schema)));
}

/**
 * The statements of a sync report that would change the database: all of them, since sync lists
 * its own records (`INSERT INTO convoy.…`) only when they are missing or differ.
 */
export function pendingChanges(report: SyncReport): string[] {
  return report.statements;
}

/**
 * The production server's check: a dry run of sync. When the database does not match the schema
 * it refuses, naming `convoy migrate` and what it would run; the database is left as it is.
 */
export async function checkApp(engine: Engine, app: LoadedApp): Promise<SyncReport> {
  const report = await syncApp(engine, app, true);
  const changes = pendingChanges(report);
  if (changes.length > 0) {
    const lines = changes.map((statement) => {
      const [first, ...rest] = statement.trim().split('\n');
      return `  ${first}${rest.length > 0 ? ' …' : ''}`;
    });
    throw new ConvoyError(
      'INVALID_ARGS',
      'the database does not match the schema, and the production server never changes it. ' +
        'Run `npx convoy migrate` with this DATABASE_URL first (`npx convoy migrate --dry-run` prints the plan). ' +
        `It would run:\n${lines.join('\n')}` +
        report.notes.map((note) => `\n  (${note})`).join(''),
    );
  }
  await setAppSchema(engine, app);
  return report;
}

/** Tells the core the app's functions, their timeouts, and whether streams authenticate. */
function installFunctions(engine: Engine, app: LoadedApp) {
  const functions = [...app.functions].map(([path, fn]) => ({
    path,
    kind: fn.kind,
    ...(fn.timeoutMs !== undefined ? { timeoutMs: fn.timeoutMs } : {}),
  }));
  engine.setFunctions(JSON.stringify({ functions, authenticates: app.createContext !== undefined }));
}

/** The core's name for the call that authenticates a new sync stream (it runs `createContext`). */
const CONNECT = '#connect';
/** The core's name for the call that runs `createContext` alone for a query request. */
const IDENTIFY = '#identify';

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

export async function startConvoy(options: ConvoyOptions): Promise<ConvoyServer> {
  const log = options.log ?? ((line: string) => console.error(line));
  const dev = options.dev ?? false;
  const changeTrigger = options.changeTrigger ?? dev;
  const syncSchema = options.syncSchema ?? true;
  const limits = {
    maxBodyBytes: positive('maxBodyBytes', options.maxBodyBytes),
    callTimeoutMs: positive('functionTimeoutMs', options.functionTimeoutMs),
    maxStreams: positive('maxStreams', options.maxStreams),
    streamIdleTimeoutMs: positive('streamIdleTimeoutMs', options.streamIdleTimeoutMs),
  };
  const load = async (): Promise<LoadedApp> => {
    if (options.load !== 'bundle') return loadApp(options.appDir);
    const built = await loadBuiltApp(options.appDir);
    for (const reason of built.stale) {
      log(
        `convoy: warning: the bundle in .convoy/dist is stale: ${reason}. Serving it as built; run \`npx convoy build\` to serve convoy/ as it is now.`,
      );
    }
    return built.app;
  };
  /** Syncs the schema, or (production) checks that the database matches it. */
  const prepare = async (next: LoadedApp): Promise<SyncReport> => {
    if (!syncSchema) return checkApp(engine, next);
    const report = await syncApp(engine, next, false);
    // In development, writes made with psql show up live too (docs/protocol.md § Live queries).
    if (changeTrigger) await engine.installChangeTrigger();
    return report;
  };
  let app = await load();
  const engine = await connectEngine(options.databaseUrl, options.poolSize);
  let lastSync: SyncReport;
  try {
    lastSync = await prepare(app);
    if (changeTrigger && !syncSchema) {
      // The production server never installs it (migrate does), so it checks that it is there.
      const missing = await engine.tablesWithoutChangeTrigger();
      if (missing.length > 0) {
        throw new ConvoyError(
          'INVALID_ARGS',
          `CONVOY_CHANGE_TRIGGER=1, but the change trigger is not installed on ${missing.join(', ')}. ` +
            'Run `CONVOY_CHANGE_TRIGGER=1 npx convoy migrate` first: the production server never changes the schema.',
        );
      }
    }
    installFunctions(engine, app);
  } catch (error) {
    await engine.close();
    throw error;
  }

  const errorPayload = (error: unknown, call: FunctionCall): string => {
    if (isConvoyError(error)) return wellFormedJson(wireShapeOf(error));
    // Not a ConvoyError: a bug or an unexpected failure in the handler. The client gets an id to
    // quote; the server log holds the detail under the same id.
    const requestId = randomUUID();
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`convoy: ${call.path} failed (request ${requestId}): ${detail}`);
    if (dev) {
      const message = error instanceof Error ? error.message : String(error);
      return wellFormedJson({ code: 'INTERNAL', message, data: { requestId, stack: detail } });
    }
    return JSON.stringify({ code: 'INTERNAL', message: `Internal error (request ${requestId})`, data: { requestId } });
  };

  /** `ctx` for a call: `base`, and what the app's `createContext` adds for this request. */
  const contextFor = async (call: FunctionCall, base: Record<string, unknown>, url: string, method: string) => {
    if (!app.createContext) return base;
    const req = { method, url, headers: JSON.parse(call.headersJson) };
    const extra = await app.createContext(req, base);
    return { ...(extra as Record<string, unknown>), ...base };
  };

  const run = async (call: FunctionCall, afterCommit: Array<() => unknown>): Promise<string> => {
    if (call.path === CONNECT || call.path === IDENTIFY) {
      // Who is asking, as createContext says (a refusal refuses the request): for a sync stream
      // that opens, or for a query call that a live query may answer. Equal contexts share
      // live queries' results.
      const base = { db: createDatabase(engine, call.callId, app.schema, 'query') };
      const [url, method] = call.path === CONNECT ? ['/api/sync', 'GET'] : ['/api/query', 'POST'];
      const context = await contextFor(call, base, url, method);
      return JSON.stringify(identityOf(context, base));
    }
    const fn = app.functions.get(call.path);
    if (!fn) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(call.path)}`);
    let args: unknown;
    try {
      args = JSON.parse(call.argsJson);
    } catch {
      throw new ConvoyError('INVALID_ARGS', 'args must be JSON');
    }
    const parsed = argsValidator(fn).safeParse(args);
    if (!parsed.success) {
      throw new ConvoyError('INVALID_ARGS', `invalid args for ${call.path}: ${describeIssues(parsed.error.issues)}`, {
        issues: parsed.error.issues,
      });
    }
    const db = createDatabase(engine, call.callId, app.schema, call.kind, refsIn(fn, parsed.data));
    const base: Record<string, unknown> =
      call.kind === 'mutation' ? { db, afterCommit: (fn: () => unknown) => afterCommit.push(fn) } : { db };
    const ctx = await contextFor(call, base, `/api/${call.kind}`, 'POST');
    const result = await fn.handler(ctx, parsed.data);
    if (typeof result === 'object' && result !== null) {
      const raw = rawJsonOf.get(result);
      if (raw !== undefined) return raw;
    }
    return JSON.stringify(result ?? null);
  };

  const runAfterCommit = async (call: FunctionCall, effects: Array<() => unknown>) => {
    for (const effect of effects) {
      try {
        await effect();
      } catch (error) {
        log(`convoy: an afterCommit callback of ${call.path} failed: ${(error as Error)?.stack ?? error}`);
      }
    }
  };

  const dispatch = (call: FunctionCall) => {
    const afterCommit: Array<() => unknown> = [];
    run(call, afterCommit).then(
      (payload) => {
        if (afterCommit.length === 0) return engine.respond(call.callId, true, payload);
        engine.respondAwaitingCommit(call.callId, true, payload).then(
          async (committed) => {
            if (committed) await runAfterCommit(call, afterCommit);
          },
          (error) => log(`convoy: ${call.path}: ${error}`),
        );
      },
      (error) => engine.respond(call.callId, false, errorPayload(error, call)),
    );
  };

  const port = await engine
    .startServer(
      {
        port: options.port ?? 3737,
        host: options.host ?? '127.0.0.1',
        allowedOrigins: [...(options.allowedOrigins ?? []), ...(dev ? LOCAL_ORIGINS : [])],
        ...limits,
        dev,
      },
      dispatch,
    )
    .catch(async (error) => {
      await engine.close();
      throw error;
    });
  const url = `http://${options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1'}:${port}`;

  return {
    port,
    url,
    get app() {
      return app;
    },
    get lastSync() {
      return lastSync;
    },
    async reload() {
      const next = await load();
      lastSync = await prepare(next);
      app = next;
      installFunctions(engine, app);
    },
    async stop() {
      await engine.close();
    },
  };
}
