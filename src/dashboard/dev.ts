/**
 * The dashboard as `convoy dev` runs it: on `--dashboard-port` (default: Convoy's port + 1), on
 * this machine only (127.0.0.1), keyed when `CONVOY_ADMIN_KEY` is set. A port that is taken costs
 * the dashboard, never the server: it says so and `convoy dev` goes on.
 */
import pc from 'picocolors';
import { fail, info } from '../cli/project.js';
import type { ServerExtensions } from '../server/extensions.js';
import type { ConvoyServer } from '../server/runtime.js';
import { prepareDashboard, type RunningDashboard } from './index.js';
import { dashboardPort } from './port.js';

export interface DevDashboard {
  extensions: ServerExtensions;
  /** Serves the dashboard for `server` (once; later calls change nothing) and prints its URL. */
  attach(server: ConvoyServer): Promise<void>;
}

export function devDashboard(given: number | string | undefined, appPort: number): DevDashboard {
  const port = dashboardPort(given, appPort) ?? fail(`--dashboard-port must be a port number, not ${given}`);
  const dashboard = prepareDashboard({ dev: true, adminKey: process.env.CONVOY_ADMIN_KEY || undefined });
  let running: Promise<RunningDashboard | undefined> | undefined;
  return {
    extensions: dashboard.extensions,
    async attach(server) {
      running ??= dashboard.start(server, { port }).then(
        (started) => {
          info(`dashboard: ${pc.bold(started.url)}`);
          return started;
        },
        (error) => {
          info(
            pc.yellow(`dashboard: not served (${(error as Error).message}); pass --dashboard-port to choose a port`),
          );
          return undefined;
        },
      );
      await running;
    },
  };
}
