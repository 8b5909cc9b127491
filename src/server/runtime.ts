/**
 * The Convoy server: the native core serves HTTP and runs SQL; this side runs the app's handlers.
 * `startConvoy` wires the pieces: the app (`app.ts`), the engine (`native.ts`), the schema and the
 * function table (`prepare.ts`), and the handling of each call (`dispatch.ts`).
 */
import { type LoadedApp, loadServedApp } from './app.js';
import { dispatcher } from './dispatch.js';
import type { ServerExtensions } from './extensions.js';
import { connectEngine, readForTool, type ToolStatement } from './native.js';
import { type ConvoyOptions, serverOptionsOf, serverUrlOf } from './options.js';
import { installFunctions, prepareSchema, requireChangeTrigger, type SyncReport } from './prepare.js';

export interface ConvoyServer {
  readonly port: number;
  readonly url: string;
  /** The app as last loaded. */
  readonly app: LoadedApp;
  /** Schema sync report of the last load, as the core returned it. */
  readonly lastSync: SyncReport;
  /** Read-only SQL of Convoy's own tools, in one snapshot (`readForTool` of `native.ts`). */
  read(statements: ToolStatement[]): Promise<Record<string, unknown>[][]>;
  /**
   * Loads `convoy/` again and swaps it in; open connections and the HTTP server stay up. With
   * `admit` (as `ConvoyOptions.admit`), its rejection keeps the version being served.
   */
  reload(admit?: Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** `extensions`: what a tool of Convoy's own (the dashboard) adds to the server (`extensions.ts`). */
export async function startConvoy(options: ConvoyOptions, extensions?: ServerExtensions): Promise<ConvoyServer> {
  const log = options.log ?? ((line: string) => console.error(line));
  const dev = options.dev ?? false;
  const schema = { syncSchema: options.syncSchema ?? true, changeTrigger: options.changeTrigger ?? dev };
  const serverOptions = serverOptionsOf(options);
  const load = () => loadServedApp(options.appDir, options.load, log);

  // Both settle before anything is changed, so a version refused by `admit` syncs nothing.
  let [app] = await Promise.all([load(), options.admit]);
  const engine = await connectEngine(options.databaseUrl, options.poolSize);
  let lastSync: SyncReport;
  try {
    lastSync = await prepareSchema(engine, app, schema);
    if (schema.changeTrigger && !schema.syncSchema) await requireChangeTrigger(engine);
    installFunctions(engine, app, extensions?.functions);
  } catch (error) {
    await engine.close();
    throw error;
  }

  const dispatch = dispatcher({ engine, app: () => app, log, dev, extensions });
  const port = await engine.startServer(serverOptions, dispatch).catch(async (error) => {
    await engine.close();
    throw error;
  });

  return {
    port,
    url: serverUrlOf(options, port),
    get app() {
      return app;
    },
    get lastSync() {
      return lastSync;
    },
    read: (statements) => readForTool(engine, statements),
    async reload(admit) {
      const [next] = await Promise.all([load(), admit]);
      lastSync = await prepareSchema(engine, next, schema);
      app = next;
      installFunctions(engine, app, extensions?.functions);
    },
    async stop() {
      await engine.close();
    },
  };
}
