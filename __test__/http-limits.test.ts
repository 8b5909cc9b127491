/**
 * Issue 15, finding 2: HTTP connections are bounded. A client that sends its headers or its body
 * too slowly is cut off, an idle keep-alive connection closes, and past the connection cap (in
 * all, or from one address) a new connection is still answered on `/health` and refused
 * everything else, so a flood of silent connections cannot take the server's health down.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';

const suite = behaviourSuite(() => ({ maxConnectionsPerAddress: 6 }));

const sockets: net.Socket[] = [];

/** A raw connection to the server, and a promise of how long after `start` it was closed. */
function connect(): Promise<{ socket: net.Socket; closed: Promise<number>; received: () => string }> {
  const url = new URL(suite.server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    sockets.push(socket);
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    const started = performance.now();
    const closed = new Promise<number>((done) => socket.on('close', () => done(performance.now() - started)));
    socket.once('error', () => {});
    socket.once('connect', () => resolve({ socket, closed, received: () => received }));
    socket.once('error', reject);
  });
}

describe('finding 2: HTTP has header, body and idle timeouts and a connection cap', { timeout: 90_000 }, () => {
  after(async () => {
    for (const socket of sockets) socket.destroy();
  });

  test('slowloris headers, a trickled body and an idle keep-alive connection are all closed', async () => {
    const headers = await connect();
    headers.socket.write('POST /api/query HTTP/1.1\r\nHost: localhost\r\n');
    const body = await connect();
    body.socket.write(
      'POST /api/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"path":',
    );
    const idle = await connect();
    idle.socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const [headersClosed, bodyClosed, idleClosed] = await Promise.all([headers.closed, body.closed, idle.closed]);
    // 10 s for the headers, 10 s' grace for the body, 10 s idle (docs/security.md), with slack.
    assert.ok(headersClosed > 9_000 && headersClosed < 13_000, `headers: closed after ${headersClosed} ms`);
    assert.ok(bodyClosed > 9_000 && bodyClosed < 13_000, `body: closed after ${bodyClosed} ms`);
    assert.match(body.received(), /^HTTP\/1\.1 400/, 'the trickled body is answered before it is cut');
    assert.match(idle.received(), /^HTTP\/1\.1 200/, 'the idle connection had its answer');
    assert.ok(idleClosed > 9_000 && idleClosed < 13_000, `idle: closed after ${idleClosed} ms`);
  });

  test('past the cap of one address, /health still answers and other requests are 503', async () => {
    const silent = await Promise.all(Array.from({ length: 6 }, () => connect()));
    const health = await fetch(`${suite.server.url}/health`);
    assert.equal(health.status, 200);
    const refused = await fetch(`${suite.server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'limits:wait', args: { ms: 1 } }),
    });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, 'UNAVAILABLE');
    for (const { socket } of silent) socket.destroy();
    // Their places are given back: an ordinary call is served again.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const served = await fetch(`${suite.server.url}/api/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ path: 'limits:wait', args: { ms: 1 } }),
    });
    assert.equal(served.status, 200);
  });
});
