/**
 * A server-sent event stream to the page: each value as one `data:` line, a comment every 15 s so
 * that proxies keep it open, and a function to call when the page goes away.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStream {
  send(event: string, value: unknown): void;
}

export function openEventStream(request: IncomingMessage, response: ServerResponse, onClose: () => void): EventStream {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  response.write(': open\n\n');
  const heartbeat = setInterval(() => response.write(': heartbeat\n\n'), 15_000);
  heartbeat.unref();
  request.on('close', () => {
    clearInterval(heartbeat);
    onClose();
  });
  return {
    send(event, value) {
      response.write(`event: ${event}\ndata: ${JSON.stringify(value)}\n\n`);
    },
  };
}
