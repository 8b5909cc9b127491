/**
 * Who may use the dashboard. With an admin key (`CONVOY_ADMIN_KEY`, required in production) every
 * API request must present it, `Authorization: Bearer <key>`, compared in constant time. Without
 * one (`convoy dev` on this machine) the request must come to a loopback name (a page of another
 * site that rebinds its DNS to 127.0.0.1 still names its own host). Either way the dashboard is
 * never served cross-origin: it sends no CORS headers, and a request a browser marks as coming
 * from another origin is refused.
 */
import type { IncomingMessage } from 'node:http';
import { secretMatches } from '../server/secrets.js';

export type Refusal = { status: 401 | 403; message: string };

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
}

/** The `host:port` an `Origin` names; undefined for `null` (an opaque origin) and for nonsense. */
function hostOfOrigin(origin: string): string | undefined {
  try {
    return origin === 'null' ? undefined : new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** Why `request` may not use the API, or undefined when it may. */
export function refusal(request: IncomingMessage, adminKey: string | undefined): Refusal | undefined {
  const origin = request.headers.origin;
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') {
    return { status: 403, message: 'the dashboard is not served to other origins' };
  }
  if (origin !== undefined && hostOfOrigin(origin) !== request.headers.host) {
    return { status: 403, message: `the dashboard is not served to ${origin}` };
  }
  if (adminKey === undefined) {
    const hostname = hostnameOf(request.headers.host);
    if (hostname === undefined || !LOOPBACK_HOSTS.has(hostname)) {
      return { status: 403, message: 'without CONVOY_ADMIN_KEY the dashboard answers on localhost only' };
    }
    return undefined;
  }
  const header = request.headers.authorization ?? '';
  const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
  if (!presented || !secretMatches(presented, adminKey)) {
    return { status: 401, message: 'this dashboard needs the admin key (CONVOY_ADMIN_KEY)' };
  }
  return undefined;
}
