/**
 * The dashboard (SPEC.md § 12): `prepareDashboard` before the server starts, for what it adds to
 * it (`server/extensions.ts`), then `start` once the server serves. `convoy dev` starts it on the
 * next port; the production server only when `CONVOY_ADMIN_KEY` is set (docs/dashboard.md).
 */
import { randomBytes } from 'node:crypto';
import { ConvoyClient } from '../client/client.js';
import { INTERNAL_HEADER, type ServerExtensions } from '../server/extensions.js';
import { serverUrlOf } from '../server/options.js';
import type { ConvoyServer } from '../server/runtime.js';
import { CallLog } from './callLog.js';
import { internalFunctions } from './functions.js';
import { listen } from './http.js';

export interface DashboardOptions {
  /** Stacks of failed calls are kept in the log. */
  dev: boolean;
  /** Every API request must present it; required for a dashboard on other than loopback. */
  adminKey?: string | undefined;
}

export interface RunningDashboard {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface Dashboard {
  /** To start the server with (`startConvoy`'s second argument). */
  extensions: ServerExtensions;
  start(server: ConvoyServer, at: { port: number; host?: string }): Promise<RunningDashboard>;
}

export function prepareDashboard(options: DashboardOptions): Dashboard {
  const secret = randomBytes(32).toString('base64url');
  const log = new CallLog();
  return {
    extensions: { functions: internalFunctions, secret, observe: log.observe },
    async start(server, { port, host = '127.0.0.1' }) {
      const internal = new ConvoyClient(server.url, { headers: { [INTERNAL_HEADER]: secret } });
      const context = { server, internal, log, dev: options.dev, keyed: options.adminKey !== undefined };
      const listener = await listen(context, options.adminKey, { port, host });
      return {
        port: listener.port,
        url: `${serverUrlOf({ host }, listener.port)}/_dashboard/`,
        async stop() {
          internal.close();
          await listener.close();
        },
      };
    },
  };
}
