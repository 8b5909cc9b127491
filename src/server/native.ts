/**
 * The one contract with the native core. Its types are those of the generated `native.d.cts`
 * (`napi build` writes it from the Rust), so a change on the Rust side that this side does not
 * follow fails `tsc`. This is the only importer of the native module: everything else calls the
 * engine through the wrapper here, which turns native failures back into `ConvoyError`s.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Native from '../../native.cjs';
import { ConvoyError } from '../values/errors.js';
import { fromNative } from './nativeErrors.js';

export type { ConnectOptions, FunctionCall, ServerOptions } from '../../native.cjs';

/** The native engine: `ctx.db`'s backend (its `db*` methods), schema, and HTTP server. */
export type Engine = Native.Engine;

/**
 * The names of the calls the core dispatches that are not the app's functions (the core's side:
 * `CONNECT`, `IDENTIFY` and `HEALTH` beside its function table). No function can have them (wire
 * names are `file:export`), and no request can reach them. For the first two, JS runs the app's
 * `createContext` alone.
 */
export const ReservedCall = {
  /** Authenticates a sync stream as it opens. */
  connect: '#connect',
  /** Learns who asks for a query request, which a live query's current result may answer. */
  identify: '#identify',
  /** `/health`'s question whether the event loop answers at all; answered at once. */
  health: '#health',
  /** Whether a subscription's args fit its query's input (`{path, args}`), without running it. */
  validate: '#validate',
} as const;

/**
 * Starts the server log on stderr (once per process; `CONVOY_LOG` overrides the filter). Call it
 * before `connectEngine`, which otherwise starts it with warnings only.
 */
export function initLogging(...args: Parameters<typeof Native.initLogging>): void {
  native().initLogging(...args);
}

let loaded: typeof Native | undefined;

function native(): typeof Native {
  if (!loaded) {
    // dist/server/native.js → the package root, where `napi build` puts the loader.
    const loader = fileURLToPath(new URL('../../native.cjs', import.meta.url));
    if (!existsSync(loader)) {
      throw new ConvoyError('INTERNAL', `Convoy's native core is missing (${loader}); run \`npm run build\``);
    }
    loaded = createRequire(import.meta.url)(loader) as typeof Native;
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

/** The arguments of the native engine's method `M`, as the generated typings give them. */
type Args<M extends keyof Engine> = Parameters<Engine[M]>;

/**
 * The native engine with every failure turned into a `ConvoyError`. `implements Engine` keeps it
 * whole: a method added on the Rust side fails `tsc` here until it is wrapped.
 */
class CheckedEngine implements Engine {
  constructor(private readonly inner: Engine) {}

  syncSchema(...args: Args<'syncSchema'>) {
    return this.inner.syncSchema(...args).catch(rethrow);
  }
  setSchema(...args: Args<'setSchema'>) {
    return this.inner.setSchema(...args).catch(rethrow);
  }
  installChangeTrigger(...args: Args<'installChangeTrigger'>) {
    return this.inner.installChangeTrigger(...args).catch(rethrow);
  }
  tablesWithoutChangeTrigger(...args: Args<'tablesWithoutChangeTrigger'>) {
    return this.inner.tablesWithoutChangeTrigger(...args).catch(rethrow);
  }
  readForTool(...args: Args<'readForTool'>) {
    return this.inner.readForTool(...args).catch(rethrow);
  }
  graduationPlan(...args: Args<'graduationPlan'>) {
    return checked(() => this.inner.graduationPlan(...args));
  }
  graduate(...args: Args<'graduate'>) {
    return this.inner.graduate(...args).catch(rethrow);
  }
  graduationStatus(...args: Args<'graduationStatus'>) {
    return this.inner.graduationStatus(...args).catch(rethrow);
  }
  completeGraduation(...args: Args<'completeGraduation'>) {
    return this.inner.completeGraduation(...args).catch(rethrow);
  }
  abortGraduation(...args: Args<'abortGraduation'>) {
    return this.inner.abortGraduation(...args).catch(rethrow);
  }
  setFunctions(...args: Args<'setFunctions'>) {
    checked(() => this.inner.setFunctions(...args));
  }
  dbGet(...args: Args<'dbGet'>) {
    return this.inner.dbGet(...args).catch(rethrow);
  }
  dbLocate(...args: Args<'dbLocate'>) {
    return this.inner.dbLocate(...args).catch(rethrow);
  }
  dbQuery(...args: Args<'dbQuery'>) {
    return this.inner.dbQuery(...args).catch(rethrow);
  }
  dbPaginate(...args: Args<'dbPaginate'>) {
    return this.inner.dbPaginate(...args).catch(rethrow);
  }
  dbInsert(...args: Args<'dbInsert'>) {
    return this.inner.dbInsert(...args).catch(rethrow);
  }
  dbRaw(...args: Args<'dbRaw'>) {
    return this.inner.dbRaw(...args).catch(rethrow);
  }
  dbSeen(...args: Args<'dbSeen'>) {
    return checked(() => this.inner.dbSeen(...args));
  }
  dbQueueInsert(...args: Args<'dbQueueInsert'>) {
    return checked(() => this.inner.dbQueueInsert(...args));
  }
  dbQueueReplace(...args: Args<'dbQueueReplace'>) {
    checked(() => this.inner.dbQueueReplace(...args));
  }
  dbQueueDelete(...args: Args<'dbQueueDelete'>) {
    checked(() => this.inner.dbQueueDelete(...args));
  }
  dbUpdateUnmanaged(...args: Args<'dbUpdateUnmanaged'>) {
    return this.inner.dbUpdateUnmanaged(...args).catch(rethrow);
  }
  dbDeleteUnmanaged(...args: Args<'dbDeleteUnmanaged'>) {
    return this.inner.dbDeleteUnmanaged(...args).catch(rethrow);
  }
  startServer(...args: Args<'startServer'>) {
    return this.inner.startServer(...args).catch(rethrow);
  }
  respond(...args: Args<'respond'>) {
    this.inner.respond(...args);
  }
  respondAwaitingCommit(...args: Args<'respondAwaitingCommit'>) {
    return this.inner.respondAwaitingCommit(...args).catch(rethrow);
  }
  stopServer(...args: Args<'stopServer'>) {
    return this.inner.stopServer(...args).catch(rethrow);
  }
  close(...args: Args<'close'>) {
    return this.inner.close(...args).catch(rethrow);
  }
}

/** One statement of a tool's read: its SQL and the values of `$1…$n`. */
export type ToolStatement = [sql: string, values: unknown[]];

/**
 * Runs read-only SQL of Convoy's own tools (the conformance report, the dashboard) in one
 * `READ ONLY REPEATABLE READ` snapshot: every statement sees the same database. Each statement's
 * rows, in order, as objects keyed by column name.
 */
export async function readForTool<Row = Record<string, unknown>>(
  engine: Engine,
  statements: ToolStatement[],
): Promise<Row[][]> {
  return JSON.parse(await engine.readForTool(JSON.stringify(statements))) as Row[][];
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
