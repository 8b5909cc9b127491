/**
 * The dashboard's event streams bound what they buffer for a page that stops reading: a real
 * socket that no longer reads, while events keep coming, is ended once over 1 MiB waits unsent,
 * instead of holding every event in memory.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { type EventStream, MAX_BUFFERED_BYTES, openEventStream } from '../dist/dashboard/eventStream.js';

test('a stalled reader is cut off past 1 MiB buffered, and the stream says it closed', {
  timeout: 30_000,
}, async () => {
  let stream: EventStream | undefined;
  let closed = false;
  let buffered = 0;
  const server = createServer((request, response) => {
    stream = openEventStream(request, response, () => {
      closed = true;
    });
    // What the response holds unsent, at its worst.
    const send = stream.send.bind(stream);
    stream.send = (event, value) => {
      send(event, value);
      buffered = Math.max(buffered, response.writableLength);
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const socket = connect(port, '127.0.0.1');
  try {
    socket.write(`GET /logs/live HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`);
    await new Promise((resolve) => socket.once('data', resolve));
    // The tab stalls: nothing more is read from the socket.
    socket.pause();
    const entry = { path: 'notes:add', args: 'x'.repeat(10_000) };
    // 200 MiB of events, far beyond what the kernel's buffers take.
    for (let sent = 0; sent < 20_000 && !closed; sent++) {
      stream!.send('entry', entry);
      if (sent % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const deadline = Date.now() + 5_000;
    while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(closed, 'the stream to the stalled reader was ended');
    assert.ok(buffered < MAX_BUFFERED_BYTES + 64 * 1024, `at most about 1 MiB buffered, not ${buffered} bytes`);
  } finally {
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
