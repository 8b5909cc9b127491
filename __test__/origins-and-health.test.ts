/**
 * Issue 15, finding 7: the origin check never trusts the `Host` header — a page of another origin
 * whose name was rebound to the server (DNS rebinding: `Origin: http://evil.example` and `Host:
 * evil.example`) is refused — and `/health` says "degraded" while JavaScript's event loop is
 * blocked, so a load balancer takes the process out.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';

const suite = behaviourSuite();

/** A request written by hand, `Host` included (fetch will not send one of its own choosing). */
function rawPost(headers: Record<string, string>, body: string): Promise<string> {
  const url = new URL(suite.server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      const lines = Object.entries({
        ...headers,
        'content-length': String(Buffer.byteLength(body)),
        connection: 'close',
      })
        .map(([name, value]) => `${name}: ${value}`)
        .join('\r\n');
      socket.write(`POST /api/mutation HTTP/1.1\r\n${lines}\r\n\r\n${body}`);
    });
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

describe('finding 7: origins are not taken from Host, and /health sees a blocked event loop', {
  timeout: 30_000,
}, () => {
  test("the DNS-rebinding shape is refused; the server's own origin is served", async () => {
    const body = JSON.stringify({ path: 'notes:add', args: { text: 'rebound' } });
    const rebound = await rawPost(
      { host: 'evil.example', origin: 'http://evil.example', 'content-type': 'application/json' },
      body,
    );
    assert.match(rebound, /^HTTP\/1\.1 403/);
    assert.match(rebound, /FORBIDDEN/);
    const port = new URL(suite.server.url).port;
    const own = await rawPost(
      { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json' },
      body,
    );
    assert.match(own, /^HTTP\/1\.1 200/);
  });

  test('/health answers 503 degraded while the event loop is blocked, and 200 once it is free', async () => {
    assert.equal((await fetch(`${suite.server.url}/health`)).status, 200);
    // Another process asks for /health while a handler holds this process's event loop.
    const probe = spawn(
      process.execPath,
      [
        '-e',
        `setTimeout(async () => { const r = await fetch(${JSON.stringify(`${suite.server.url}/health`)}); console.log(r.status, (await r.json()).status); }, 500)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let answer = '';
    probe.stdout.on('data', (chunk) => {
      answer += chunk.toString();
    });
    const exited = new Promise((resolve) => probe.on('exit', resolve));
    const blocking = await fetch(`${suite.server.url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'limits:blockEventLoop', args: { ms: 2_500 } }),
    });
    assert.equal(blocking.status, 200);
    await exited;
    assert.equal(answer.trim(), '503 degraded');
    assert.equal((await fetch(`${suite.server.url}/health`)).status, 200);
  });
});
