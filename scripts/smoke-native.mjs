#!/usr/bin/env node
/**
 * Loads the native core and makes it work a little, with no Postgres: the release workflow runs it
 * on every platform it builds for, against the binary it built. Usage:
 *
 *   node scripts/smoke-native.mjs [path/to/native.cjs] [--tls] [--expect <part of a path>]
 *
 * The loader defaults to this repository's `native.cjs`; pass an installed one
 * (`node_modules/@avvos/convoy/native.cjs`) to load the binary from its platform package, as users'
 * installs do. It checks that the binary loads and which file it is, that `Engine.connect` to a port
 * nobody listens on rejects with an error (the async runtime and error path work), and with `--tls`
 * that a TLS handshake completes against a stand-in server that speaks Postgres's SSLRequest (the
 * crypto of rustls's provider, compiled for this target, works). `--tls` needs `openssl` on PATH to
 * make a throwaway certificate. `--expect` fails unless the path of the binary that loaded contains
 * the given part (with `/` between folders, on Windows too).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const wantTls = args.includes('--tls');
const expectIndex = args.indexOf('--expect');
const expected = expectIndex === -1 ? undefined : args[expectIndex + 1];
const loaderArg = args.find((arg, index) => !arg.startsWith('--') && index !== expectIndex + 1);
const loader = path.resolve(loaderArg ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native.cjs'));

function fail(message) {
  console.error(`smoke: FAILED: ${message}`);
  process.exit(1);
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const require = createRequire(import.meta.url);
let binding;
try {
  binding = require(loader);
} catch (error) {
  const causes = [];
  for (let cause = error.cause; cause; cause = cause.cause) causes.push(`  ${cause.message}`);
  fail(`${loader} did not load: ${error.message}\n${causes.join('\n')}`);
}
const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
console.log(`smoke: ${process.platform}-${process.arch}, Node ${process.version}`);
console.log(`smoke: ${loader} loaded ${loaded.join(', ') || '(no .node file)'} (${binding.__napiBindingTarget})`);
if (loaded.length !== 1) fail(`expected one .node file loaded, got ${loaded.length}`);
if (expected && !loaded[0].replaceAll(path.sep, '/').includes(expected)) {
  fail(`the binary loaded is ${loaded[0]}, not one under ${expected}`);
}
for (const name of ['Engine', 'initLogging']) {
  if (typeof binding[name] !== 'function') fail(`the binding exports no function ${name}`);
}
if (typeof binding.Engine.connect !== 'function') fail('Engine.connect is not a function');

/** A port that was free a moment ago: nothing listens on it. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const refused = await within(
  binding.Engine.connect({
    databaseUrl: `postgresql://convoy@127.0.0.1:${await closedPort()}/convoy?sslmode=disable`,
  }).then(
    () => fail('Engine.connect to a closed port resolved'),
    (error) => error,
  ),
  60_000,
  'Engine.connect to a closed port',
);
if (!(refused instanceof Error)) fail(`Engine.connect rejected with ${String(refused)}, not an Error`);
console.log(`smoke: Engine.connect to a closed port rejects: ${refused.message.split('\n')[0]}`);

if (wantTls) await smokeTls();
console.log('smoke: ok');
// The binding's runtime may keep threads that hold the process open.
process.exit(0);

async function smokeTls() {
  const folder = mkdtempSync(path.join(tmpdir(), 'convoy-smoke-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost'].concat([
        '-keyout',
        path.join(folder, 'key.pem'),
        '-out',
        path.join(folder, 'cert.pem'),
      ]),
      { stdio: 'pipe' },
    );
  } catch (error) {
    fail(`--tls needs openssl on PATH to make a certificate: ${error.message}`);
  }
  const key = readFileSync(path.join(folder, 'key.pem'));
  const cert = readFileSync(path.join(folder, 'cert.pem'));
  rmSync(folder, { recursive: true, force: true });

  // What the stand-in saw: Postgres's SSLRequest, a finished handshake, then bytes over TLS.
  const seen = { sslRequest: false, handshake: false, startupOverTls: false, tlsError: '' };
  const server = createServer((socket) => {
    socket.once('data', (first) => {
      // SSLRequest: length 8, then the code 80877103.
      if (first.length !== 8 || first.readInt32BE(0) !== 8 || first.readInt32BE(4) !== 80877103) {
        socket.destroy();
        return;
      }
      seen.sslRequest = true;
      socket.write('S', () => {
        const tls = new TLSSocket(socket, { isServer: true, key, cert });
        tls.on('secure', () => {
          seen.handshake = true;
        });
        tls.on('error', (error) => {
          seen.tlsError = error.message;
        });
        tls.once('data', () => {
          // The startup message, decrypted: TLS works both ways. No Postgres here: hang up.
          seen.startupOverTls = true;
          tls.destroy();
        });
      });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  // `require` encrypts without checking the certificate, as libpq's does: a self-signed one passes.
  const databaseUrl = `postgresql://convoy@127.0.0.1:${port}/convoy?sslmode=require`;
  const outcome = await within(
    binding.Engine.connect({ databaseUrl }).then(
      () => new Error('Engine.connect to the stand-in resolved'),
      (error) => error,
    ),
    60_000,
    'Engine.connect over TLS',
  );
  server.close();
  console.log(`smoke: TLS stand-in saw ${JSON.stringify(seen)}; Engine.connect: ${outcome.message.split('\n')[0]}`);
  if (!seen.sslRequest) fail('the core sent no SSLRequest for sslmode=require');
  if (!seen.handshake || !seen.startupOverTls) fail('the TLS handshake did not complete');
}
