/**
 * The dashboard as the production server runs it: only when `CONVOY_ADMIN_KEY` is set (without
 * it nothing of the dashboard is loaded or served, and `/_dashboard` is the server's 404). It is
 * a Node listener of its own beside the native server, on `CONVOY_DASHBOARD_PORT` (default: the
 * server's port + 1) and `HOST`; every API request must present the key.
 */
import type { ServerExtensions } from '../server/extensions.js';
import type { ConvoyServer } from '../server/runtime.js';
import { ConvoyError } from '../values/errors.js';
import { prepareDashboard, type RunningDashboard } from './index.js';
import { dashboardPort } from './port.js';

/** Shorter keys are refused at start: the key is all that stands between the internet and the data. */
export const MIN_KEY_LENGTH = 16;

export interface ProductionDashboard {
  extensions: ServerExtensions;
  start(server: ConvoyServer): Promise<RunningDashboard>;
}

export function productionDashboard(env: NodeJS.ProcessEnv, appPort: number, host: string): ProductionDashboard {
  const adminKey = env.CONVOY_ADMIN_KEY!;
  if (adminKey.length < MIN_KEY_LENGTH) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `CONVOY_ADMIN_KEY must be at least ${MIN_KEY_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`,
    );
  }
  const given = env.CONVOY_DASHBOARD_PORT;
  const port = dashboardPort(given, appPort);
  if (port === undefined) {
    throw new ConvoyError('INVALID_ARGS', `CONVOY_DASHBOARD_PORT must be a port number, not ${given}`);
  }
  const dashboard = prepareDashboard({ dev: false, adminKey });
  return {
    extensions: dashboard.extensions,
    start: (server) => dashboard.start(server, { port, host }),
  };
}
