/**
 * The JSON endpoints under `/_dashboard/api/`. Reads and writes of documents go through the
 * dashboard's internal functions on the app's own server (`functions.ts`), so they are `ctx.db`'s
 * and live queries; a function the page runs is called as any client calls it; the log and the
 * graduation's progress are read here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConvoyClient } from '../client/client.js';
import type { ConvoyServer } from '../server/runtime.js';
import { ConvoyError, httpStatusOf, isConvoyError } from '../values/errors.js';
import type { CallLog } from './callLog.js';
import { openEventStream } from './eventStream.js';
import { type DocumentsArgs, internalRef } from './functions.js';
import { conformanceReport, graduationsUnderWay } from './graduation.js';
import { argsSchemaOf } from './jsonSchema.js';
import { listTables } from './tables.js';

export interface ApiContext {
  server: ConvoyServer;
  /** The dashboard's own client of the app's server: it carries the internal secret. */
  internal: ConvoyClient;
  log: CallLog;
  dev: boolean;
  /** Whether requests must carry the admin key (for the page's login form). */
  keyed: boolean;
}

const MAX_BODY_BYTES = 2 * 1024 * 1024;

export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  response.end(JSON.stringify(value));
}

function sendError(response: ServerResponse, error: unknown, dev: boolean): void {
  if (isConvoyError(error)) {
    const status = httpStatusOf[error.code as keyof typeof httpStatusOf] ?? 400;
    sendJson(response, status, { error: error.toJSON() });
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const stack = dev && error instanceof Error ? { data: { stack: error.stack } } : {};
  sendJson(response, 500, { error: { code: 'INTERNAL', message, ...stack } });
}

async function bodyOf(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ConvoyError('PAYLOAD_TOO_LARGE', 'the body is over 2 MiB');
    chunks.push(chunk as Buffer);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new ConvoyError('INVALID_ARGS', 'the body must be a JSON object');
  }
}

function jsonParam(url: URL, name: string, fallback: unknown): unknown {
  const text = url.searchParams.get(name);
  if (text === null || text === '') return fallback;
  try {
    return JSON.parse(text);
  } catch {
    throw new ConvoyError('INVALID_ARGS', `the parameter ${name} must be JSON`);
  }
}

function documentsArgs(table: string, url: URL): DocumentsArgs {
  const args = jsonParam(url, 'args', {});
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new ConvoyError('INVALID_ARGS', 'the parameter args must be a JSON object');
  }
  const given = args as Partial<DocumentsArgs>;
  return {
    table,
    index: given.index ?? null,
    order: given.order ?? 'desc',
    filter: given.filter ?? null,
    cursor: given.cursor ?? null,
    numItems: given.numItems ?? 50,
  };
}

function headersParam(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new ConvoyError('INVALID_ARGS', 'headers must be an object of strings');
  }
  return value as Record<string, string>;
}

/** The app's function `path` and its kind; `NOT_FOUND` for a name the app does not have. */
function appFunction(server: ConvoyServer, path: unknown): { path: string; kind: 'query' | 'mutation' } {
  const fn = typeof path === 'string' ? server.app.functions.get(path) : undefined;
  if (!fn) throw new ConvoyError('NOT_FOUND', `there is no function named ${JSON.stringify(path)}`);
  return { path: path as string, kind: fn.kind };
}

/** A call of the app's function as a client makes it, with the headers the page gives (auth). */
async function callAsClient(server: ConvoyServer, body: Record<string, unknown>) {
  const { path, kind } = appFunction(server, body.path);
  const started = performance.now();
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headersParam(body.headers) },
    body: JSON.stringify({ path, args: body.args ?? {} }),
  });
  // The app's server answers JSON; anything else (a proxy's page, a crash) is said, not thrown raw.
  const text = await response.text();
  let answer: { value?: unknown; error?: unknown };
  try {
    answer = JSON.parse(text) as { value?: unknown; error?: unknown };
  } catch {
    throw new ConvoyError(
      'UNAVAILABLE',
      `the app's server answered ${path} with HTTP ${response.status} and no JSON: ${text.slice(0, 200)}`,
    );
  }
  return { status: response.status, ms: Math.round(performance.now() - started), ...answer };
}

/** A live query relayed as server-sent events: `value` and `error` events. */
function relayLive(
  request: IncomingMessage,
  response: ServerResponse,
  subscribe: (onValue: (value: unknown) => void, onError: (error: ConvoyError) => void) => () => void,
): void {
  let unsubscribe = () => {};
  const stream = openEventStream(request, response, () => unsubscribe());
  unsubscribe = subscribe(
    (value) => stream.send('value', value),
    (error) => stream.send('error', error.toJSON()),
  );
}

function idOf(server: ConvoyServer, table: string, text: string): string | number {
  // An unmanaged table's row is named by its primary key, which may be a number.
  return server.app.schema.tables[table]?.isUnmanaged && /^-?\d+$/.test(text) ? Number(text) : text;
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConvoyError('INVALID_ARGS', `${JSON.stringify(part)} is not a well-formed URL path segment`);
  }
}

/** Answers one API request; `route` is the path after `/_dashboard/api/`. */
export async function handleApi(
  context: ApiContext,
  request: IncomingMessage,
  response: ServerResponse,
  route: string[],
  url: URL,
): Promise<void> {
  const { server, internal, log, dev } = context;
  const method = request.method ?? 'GET';
  try {
    const [first, second, third, fourth] = route.map(decodePart);
    if (method === 'GET' && first === 'info' && route.length === 1) {
      return sendJson(response, 200, {
        dev,
        keyed: context.keyed,
        serverUrl: server.url,
        tables: Object.keys(server.app.schema.tables).length,
        functions: server.app.functions.size,
      });
    }
    if (method === 'GET' && first === 'tables' && route.length === 1) {
      return sendJson(response, 200, await listTables(server.read, server.app.schema));
    }
    if (first === 'tables' && second !== undefined && third === 'documents') {
      const table = second;
      if (method === 'GET' && route.length === 3) {
        return sendJson(
          response,
          200,
          await internal.query(internalRef('documents', 'query'), documentsArgs(table, url)),
        );
      }
      if (method === 'GET' && fourth === 'live' && route.length === 4) {
        const args = documentsArgs(table, url);
        return relayLive(request, response, (onValue, onError) =>
          internal.subscribe(internalRef('documents', 'query'), args, onValue, onError),
        );
      }
      if (method === 'POST' && route.length === 3) {
        const { value } = await bodyOf(request);
        return sendJson(response, 200, {
          value: await internal.mutation(internalRef('insert', 'mutation'), { table, value }),
        });
      }
      if (fourth !== undefined && route.length === 4) {
        const id = idOf(server, table, fourth);
        if (method === 'PUT') {
          const { value } = await bodyOf(request);
          await internal.mutation(internalRef('replace', 'mutation'), { table, id, value });
          return sendJson(response, 200, { value: null });
        }
        if (method === 'PATCH') {
          const { patch } = await bodyOf(request);
          await internal.mutation(internalRef('patch', 'mutation'), { table, id, patch });
          return sendJson(response, 200, { value: null });
        }
        if (method === 'DELETE') {
          await internal.mutation(internalRef('delete', 'mutation'), { table, id });
          return sendJson(response, 200, { value: null });
        }
      }
    }
    if (method === 'GET' && first === 'functions' && route.length === 1) {
      const functions = [...server.app.functions].map(([path, fn]) => ({
        path,
        kind: fn.kind,
        args: argsSchemaOf(fn.input),
        ...(fn.timeoutMs === undefined ? {} : { timeoutMs: fn.timeoutMs }),
      }));
      return sendJson(response, 200, functions);
    }
    if (method === 'POST' && first === 'functions' && second === 'run' && route.length === 2) {
      return sendJson(response, 200, await callAsClient(server, await bodyOf(request)));
    }
    if (method === 'GET' && first === 'functions' && second === 'live' && route.length === 2) {
      const { path, kind } = appFunction(server, url.searchParams.get('path'));
      if (kind !== 'query') throw new ConvoyError('INVALID_ARGS', `${path} is a mutation; only queries stay live`);
      const args = jsonParam(url, 'args', {});
      const client = new ConvoyClient(server.url, { headers: headersParam(jsonParam(url, 'headers', {})) });
      return relayLive(request, response, (onValue, onError) => {
        const unsubscribe = client.subscribe({ path, kind: 'query' }, args as never, onValue, onError);
        return () => {
          unsubscribe();
          client.close();
        };
      });
    }
    if (method === 'GET' && first === 'logs' && route.length === 1) {
      return sendJson(response, 200, log.recent());
    }
    if (method === 'GET' && first === 'logs' && second === 'live' && route.length === 2) {
      let stop = () => {};
      const stream = openEventStream(request, response, () => stop());
      stop = log.subscribe((entry) => stream.send('entry', entry));
      return;
    }
    if (method === 'GET' && first === 'graduation' && route.length === 1) {
      return sendJson(response, 200, await graduationsUnderWay(server.read));
    }
    if (
      method === 'POST' &&
      first === 'graduation' &&
      second !== undefined &&
      third === 'report' &&
      route.length === 3
    ) {
      return sendJson(response, 200, await conformanceReport(server.read, server.app.schema, second));
    }
    sendJson(response, 404, {
      error: { code: 'NOT_FOUND', message: `no dashboard endpoint ${method} /${route.join('/')}` },
    });
  } catch (error) {
    if (response.headersSent) {
      response.end();
      return;
    }
    sendError(response, error, dev);
  }
}
