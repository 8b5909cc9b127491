/**
 * A time-bounded fuzz run of the HTTP API: random bytes, random JSON, and valid requests with
 * random mutations, from several workers at once. Every answer must be JSON with a value or a
 * documented error; no status outside the documented ones; the server never stops serving.
 *
 *   CONVOY_FUZZ_SECONDS=120 CONVOY_FUZZ_SEED=1234 node --import tsx --test __test__/fuzz.test.ts
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createExistingTables } from './helpers/fixture.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');
const SECONDS = Number(process.env.CONVOY_FUZZ_SECONDS ?? 20);
const SEED = Number(process.env.CONVOY_FUZZ_SEED ?? Date.now() % 1_000_000);
const WORKERS = 4;
/** 500 only for the fixture's functions that crash on purpose. */
const DOCUMENTED = new Set([200, 400, 401, 403, 404, 405, 409, 413, 415, 500]);
// counters:increment throws a plain Error for a counter that does not exist.
const CRASHING = new Set([
  'notes:addThenCrash',
  'notes:throwsSynchronously',
  'notes:rejectsWithString',
  'counters:increment',
]);
const CODES = new Set([
  'INVALID_ARGS',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'INTERNAL',
  // The fixture's own codes.
  'NOTE_LIMIT',
]);

/** mulberry32: small, seeded, good enough to pick cases. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (below: number) => Math.floor(next() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick };
}
type Random = ReturnType<typeof random>;

const PATHS = [
  'notes:add',
  'notes:list',
  'notes:between',
  'notes:tagged',
  'notes:get',
  'notes:edit',
  'notes:remove',
  'notes:page',
  'notes:unique',
  'notes:addThenRefuse',
  'notes:addThenCrash',
  'notes:throwsSynchronously',
  'notes:rejectsWithString',
  'counters:create',
  'counters:increment',
  'counters:read',
  'hostile:patchFields',
  'hostile:byIndex',
  'hostile:filterBy',
  'hostile:orderBy',
  'hostile:pageFrom',
  'hostile:touchNote',
  'auth:whoami',
  'notes:nope',
  'nope',
  '',
  '../../etc/passwd',
  'notes:list\u0000',
];
const KEYS = [
  'text',
  'n',
  'tags',
  'id',
  'low',
  'high',
  'cursor',
  'numItems',
  'name',
  'field',
  'value',
  'fields',
  'how',
];
const STRINGS = [
  "'; DROP TABLE notes; --",
  '\u0000',
  '\ud800',
  '🚀',
  '',
  'x'.repeat(3000),
  '$1',
  '"',
  '\\',
  '{}',
  'null',
];

function randomString(r: Random): string {
  if (r.next() < 0.5) return r.pick(STRINGS);
  let text = '';
  for (let length = r.int(20); length > 0; length--) text += String.fromCharCode(r.int(0x10000));
  return text;
}

function randomValue(r: Random, depth = 0): unknown {
  const choice = r.int(depth > 3 ? 5 : 8);
  switch (choice) {
    case 0:
      return null;
    case 1:
      return r.next() < 0.5;
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e-308, Number.MAX_SAFE_INTEGER + 2, 42]);
    case 3:
    case 4:
      return randomString(r);
    case 5:
      return crypto.randomUUID();
    case 6:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [
          r.next() < 0.7 ? r.pick(KEYS) : randomString(r),
          randomValue(r, depth + 1),
        ]),
      );
  }
}

interface Request {
  route: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
  path?: string;
}

function randomRequest(r: Random, sessions: string[]): Request {
  const kind = r.pick(['query', 'mutation']);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const roll = r.next();
  if (roll < 0.05) {
    const bytes = new Uint8Array(r.int(200));
    for (let index = 0; index < bytes.length; index++) bytes[index] = r.int(256);
    return { route: `/api/${kind}`, method: 'POST', headers, body: bytes };
  }
  if (roll < 0.1) return { route: `/api/${kind}`, method: 'POST', headers, body: JSON.stringify(randomValue(r)) };
  if (roll < 0.15) {
    const route = r.pick(['/api/query', '/api/mutation', '/api/sync', '/health', '/metrics', '/nope', '/api/', '//']);
    return { route, method: r.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'POST']), headers };
  }
  if (roll < 0.2) {
    const session = r.next() < 0.5 && sessions.length > 0 ? r.pick(sessions) : crypto.randomUUID();
    const body = JSON.stringify({
      add: [{ id: randomString(r), path: r.pick(PATHS), args: randomValue(r) }],
      remove: [randomString(r)],
    });
    return {
      route: `/api/sync/${session}`,
      method: 'POST',
      headers,
      body: r.next() < 0.8 ? body : body.slice(0, r.int(body.length)),
    };
  }
  if (roll < 0.25)
    headers['content-type'] = r.pick([
      'text/plain',
      'application/xml',
      'multipart/form-data',
      '',
      'application/json; charset=latin1',
    ]);
  if (roll < 0.28)
    headers.authorization = r.pick([
      'Bearer bad',
      'Bearer ada',
      'Basic Zm9vOmJhcg==',
      `Bearer ${randomString(r).replace(/[^\x20-\x7e]/g, '')}`,
    ]);
  const functionPath = r.pick(PATHS);
  const args =
    r.next() < 0.8
      ? Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(KEYS), randomValue(r)]))
      : randomValue(r);
  const text = JSON.stringify({ path: functionPath, args });
  // Sometimes cut short or padded with garbage.
  const mangle = r.next();
  const body = mangle < 0.05 ? text.slice(0, r.int(text.length)) : mangle < 0.08 ? `${text}${randomString(r)}` : text;
  return { route: `/api/${kind}`, method: 'POST', headers, body, path: functionPath };
}

let database: TestDatabase;
let server: ConvoyServer;

describe(`fuzzing the HTTP API (seed ${SEED}, ${SECONDS} s)`, () => {
  before(async () => {
    database = await createDatabase();
    await createExistingTables(database);
    server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, functionTimeoutMs: 5_000, log: () => {} });
  });

  after(async () => {
    await server?.stop();
    await database?.drop();
  });

  test('every answer is documented and the server keeps serving', async () => {
    console.log(`fuzz: seed ${SEED} (replay with CONVOY_FUZZ_SEED=${SEED})`);
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const sessions: string[] = [];
    // A few real streams, so that subscription changes also hit live sessions.
    const streams = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const response = await fetch(`${server.url}/api/sync`);
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        const first = await reader.read();
        const session = /"session":"([^"]+)"/.exec(first.value ?? '')?.[1];
        if (session) sessions.push(session);
        // Keep reading so the stream never backs up.
        void (async () => {
          while (!(await reader.read().catch(() => ({ done: true }))).done) {}
        })();
        return reader;
      }),
    );
    const deadline = Date.now() + SECONDS * 1000;
    let sent = 0;
    const worker = async (index: number) => {
      const r = random(SEED + index);
      while (Date.now() < deadline && failures.length < 20) {
        const request = randomRequest(r, sessions);
        sent++;
        let response: Response;
        try {
          response = await fetch(`${server.url}${request.route}`, {
            method: request.method,
            headers: request.headers,
            ...(request.body !== undefined && request.method !== 'GET' ? { body: request.body as BodyInit } : {}),
          });
        } catch (error) {
          failures.push(`${request.method} ${request.route}: no answer (${(error as Error).message})`);
          continue;
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.headers.get('content-type') === 'text/event-stream') {
          // A stream opened: that is its answer.
          await response.body?.cancel();
          continue;
        }
        const text = await response.text();
        const what = `${request.method} ${request.route} ${String(request.body ?? '').slice(0, 120)} → ${response.status} ${text.slice(0, 200)}`;
        if (!DOCUMENTED.has(response.status)) {
          failures.push(`undocumented status: ${what}`);
          continue;
        }
        if (request.route === '/metrics' && response.status === 200) continue;
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          failures.push(`not JSON: ${what}`);
          continue;
        }
        if (response.status === 200) continue;
        if (!CODES.has(body?.error?.code) || typeof body.error.message !== 'string') {
          failures.push(`undocumented error: ${what}`);
        } else if (response.status === 500 && !(request.path && CRASHING.has(request.path))) {
          failures.push(`500 from a function that does not crash: ${what}`);
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, index) => worker(index)));
    for (const stream of streams) await stream.cancel().catch(() => {});

    const histogram = [...statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}: ${count}`);
    console.log(`fuzz: ${sent} requests; ${histogram.join(', ')}`);
    assert.deepEqual(failures, [], `seed ${SEED}`);
    assert.ok(sent > 100, 'the run sent a fair number of requests');
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    const added = await fetch(`${server.url}/api/mutation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'notes:add', args: { text: 'after the fuzz' } }),
    });
    assert.equal(added.status, 200);
  });
});
