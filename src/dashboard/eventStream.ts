/**
 * A server-sent event stream to the page: each value as one `data:` line, a comment every 15 s so
 * that proxies keep it open, and a function to call when the page goes away.
 *
 * A tab that stops reading (stalled, in the background of a slow machine) would have every log
 * entry buffered for it without end; past `MAX_BUFFERED_BYTES` unsent the stream is ended
 * instead, and the page's EventSource reconnects and reads afresh.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_BUFFERED_BYTES = 1024 * 1024;

export interface EventStream {
  send(event: string, value: unknown): void;
}

export function openEventStream(request: IncomingMessage, response: ServerResponse, onClose: () => void): EventStream {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  const write = (text: string) => {
    if (response.destroyed) return;
    response.write(text);
    if (response.writableLength > MAX_BUFFERED_BYTES) response.destroy();
  };
  write(': open\n\n');
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), 15_000);
  heartbeat.unref();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    onClose();
  };
  request.on('close', close);
  response.on('close', close);
  return {
    send(event, value) {
      write(`event: ${event}\ndata: ${JSON.stringify(value)}\n\n`);
    },
  };
}
