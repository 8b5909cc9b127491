/**
 * `@avvos/convoy/server`: the runtime that `convoy dev` and the generated `http.js` start.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { isConvoyError } from '../values/errors.js';
import { initLogging } from './native.js';
import { limitsFromEnv } from './options.js';
import { startConvoy } from './runtime.js';

export type { ContextBase, ContextFunction, DefineContext } from '../context.js';
export type { ConvoyRequest, ConvoyRequestHeaders } from '../functions.js';
export type { CreateContext, LoadedApp } from './app.js';
export { type ConvoyOptions, type Limits, limitsFromEnv } from './options.js';
export type { SyncReport } from './prepare.js';
export { type ConvoyServer, startConvoy } from './runtime.js';

/**
 * The production server, as `node convoy/_generated/http.js` runs it: `DATABASE_URL` (required),
 * `PORT` (default 3737), `HOST` (default 0.0.0.0, every interface), the limits of
 * `limitsFromEnv`. It logs one line per request on stderr: JSON lines, or text at a terminal.
 *
 * It loads the bundle that `npx convoy build` wrote to `.convoy/dist/` (no TypeScript sources or
 * esbuild at run time; stack traces point into the sources through its source maps), and it never
 * changes the schema: on a database that does not match, it refuses to start and names
 * `npx convoy migrate`.
 *
 * With `CONVOY_ADMIN_KEY` set it serves the dashboard too, on `CONVOY_DASHBOARD_PORT` (default:
 * `PORT` + 1), to requests that present the key (docs/dashboard.md).
 */
export async function runProduction(options: { entry: string }): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error(
      'convoy: DATABASE_URL is not set. Set it to your Postgres, e.g. postgresql://user:pass@host:5432/app',
    );
    process.exit(1);
  }
  // <app>/convoy/_generated/http.js → <app>
  const appDir = path.resolve(path.dirname(realpathSync(options.entry)), '..', '..');
  // The pool's warning of a failed connection says less than Convoy's own (`convoy::database`).
  initLogging('warn,deadpool.postgres=error,convoy::request=info', !process.stderr.isTTY);
  // The bundle's .mjs.map files: stack traces name the app's own files and lines.
  process.setSourceMapsEnabled(true);
  try {
    const port = Number(process.env.PORT ?? 3737);
    const host = process.env.HOST ?? '0.0.0.0';
    // Nothing of the dashboard is loaded without the admin key (docs/dashboard.md).
    const dashboard = process.env.CONVOY_ADMIN_KEY
      ? (await import('../dashboard/production.js')).productionDashboard(process.env, port, host)
      : undefined;
    const server = await startConvoy(
      {
        appDir,
        databaseUrl,
        port,
        host,
        dev: false,
        ...limitsFromEnv(),
        load: 'bundle',
        syncSchema: false,
        // On unless turned off: writes made outside Convoy reach live queries (docs/postgres.md).
        changeTrigger: process.env.CONVOY_CHANGE_TRIGGER !== '0',
      },
      dashboard?.extensions,
    );
    console.log(`convoy: serving ${server.app.functions.size} functions on port ${server.port}`);
    const running = await dashboard?.start(server);
    if (running) console.log(`convoy: dashboard at ${running.url} (port ${running.port}), for CONVOY_ADMIN_KEY only`);
    const stop = async () => {
      await running?.stop();
      await server.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (error) {
    console.error(`convoy: could not start: ${isConvoyError(error) ? error.message : (error as Error).stack}`);
    process.exit(1);
  }
}
