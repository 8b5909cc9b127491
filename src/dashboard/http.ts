/**
 * The dashboard's HTTP listener, on a port of its own: the page under `/_dashboard`, its API
 * under `/_dashboard/api/` (each request checked by `access.ts` first), and nothing else.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refusal } from './access.js';
import { type ApiContext, handleApi, sendJson } from './api.js';
import { serveStatic } from './staticFiles.js';

export interface Listener {
  port: number;
  close(): Promise<void>;
}

export async function listen(
  context: ApiContext,
  adminKey: string | undefined,
  { port, host }: { port: number; host: string },
): Promise<Listener> {
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    if (url.pathname === '/' || url.pathname === '/_dashboard') {
      response.writeHead(302, { location: '/_dashboard/' });
      response.end();
      return;
    }
    if (url.pathname.startsWith('/_dashboard/api/')) {
      const refused = refusal(request, adminKey);
      if (refused) {
        const code = refused.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN';
        sendJson(response, refused.status, { error: { code, message: refused.message } });
        return;
      }
      const route = url.pathname.slice('/_dashboard/api/'.length).split('/').filter(Boolean);
      await handleApi(context, request, response, route, url);
      return;
    }
    if (url.pathname.startsWith('/_dashboard/') && (request.method === 'GET' || request.method === 'HEAD')) {
      await serveStatic(url.pathname, response);
      return;
    }
    sendJson(response, 404, { error: { code: 'NOT_FOUND', message: 'the dashboard is at /_dashboard/' } });
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      if (!response.headersSent) sendJson(response, 500, { error: { code: 'INTERNAL', message: String(error) } });
      else response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
