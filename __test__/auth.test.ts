/**
 * Bring your own auth (SPEC §7) with examples/auth, whose `createContext` verifies JWTs with jose:
 * every request and every sync stream is authenticated the way the app says; bad tokens are
 * `UNAUTHORIZED` before any handler runs; two users never see each other's results, live or not;
 * a client whose token expires while its stream is open gets a fresh one and carries on.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { ConvoyClient, type ConvoyError } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { createDatabase, type TestDatabase } from './helpers/postgres.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'auth');
const SECRET = 'a-test-secret-of-at-least-32-characters!';
const ISSUER = 'https://auth.example.com';
const AUDIENCE = 'convoy-notes';

let database: TestDatabase;
let server: ConvoyServer;
const clients: ConvoyClient[] = [];

interface TokenOptions {
  secret?: string;
  audience?: string;
  /** Expiry, in seconds since the epoch. */
  expires?: number;
}

function token(user: string, options: TokenOptions = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setIssuer(ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expires ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

async function call(kind: 'query' | 'mutation', name: string, args: object, bearer?: string) {
  const response = await fetch(`${server.url}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify({ path: `notes:${name}`, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function noteCount(): Promise<number> {
  return (await database.query('SELECT count(*)::int AS n FROM notes'))[0].n;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

function client(auth: () => Promise<string>): ConvoyClient {
  const created = new ConvoyClient(server.url, { auth });
  clients.push(created);
  return created;
}

/** Resolves with the first value of a subscription that passes `test`. */
function nextValue<T>(
  subscriber: ConvoyClient,
  test: (value: T) => boolean,
  onError: (error: ConvoyError) => void = () => {},
): Promise<T> & { stop(): void } {
  let unsubscribe = () => {};
  const promise = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for a value')), 10_000);
    unsubscribe = subscriber.subscribe(
      { path: 'notes:mine' } as any,
      {},
      (value) => {
        if (test(value as T)) {
          clearTimeout(timer);
          resolve(value as T);
        }
      },
      onError,
    );
  });
  return Object.assign(promise, { stop: () => unsubscribe() });
}

const texts = (notes: Array<{ text: string }>) => notes.map((note) => note.text);

describe('bring your own auth (examples/auth, jose)', () => {
  before(async () => {
    process.env.JWT_SECRET = SECRET;
    database = await createDatabase();
    server = await startConvoy({ appDir, databaseUrl: database.url, port: 0, log: () => {} });
  });

  after(async () => {
    for (const each of clients) each.close();
    await server?.stop();
    await database?.drop();
  });

  test("each user reads and writes only their own notes; ctx.auth comes from the token's subject", async () => {
    const [alice, bob] = await Promise.all([token('alice'), token('bob')]);
    assert.equal((await call('mutation', 'add', { text: 'from alice' }, alice)).status, 200);
    const added = await call('mutation', 'add', { text: 'from bob' }, bob);
    assert.equal(added.status, 200);
    assert.deepEqual(texts((await call('query', 'mine', {}, alice)).body.value), ['from alice']);
    assert.deepEqual(texts((await call('query', 'mine', {}, bob)).body.value), ['from bob']);
    // Bob's note is not there for Alice, not even to delete.
    const theft = await call('mutation', 'remove', { id: added.body.value }, alice);
    assert.equal(theft.status, 404);
    assert.equal(theft.body.error.code, 'NOT_FOUND');
    assert.deepEqual(texts((await call('query', 'mine', {}, bob)).body.value), ['from bob']);
  });

  test('no token, or a forged, tampered, expired, foreign or unsigned one: UNAUTHORIZED, nothing runs', async () => {
    const before = await noteCount();
    const valid = await token('alice');
    const [header, , signature] = valid.split('.');
    const claims = (sub: string) =>
      Buffer.from(
        JSON.stringify({ sub, iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 }),
      ).toString('base64url');
    const bad: Record<string, string> = {
      forged: await token('alice', { secret: 'another-secret-that-is-32-characters-long' }),
      tampered: `${header}.${claims('bob')}.${signature}`,
      expired: await token('alice', { expires: Math.floor(Date.now() / 1000) - 10 }),
      foreign: await token('alice', { audience: 'some-other-service' }),
      unsigned: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${claims('alice')}.`,
      garbage: 'not-a-token',
    };
    for (const [what, bearer] of Object.entries(bad)) {
      const answer = await call('mutation', 'add', { text: `with a ${what} token` }, bearer);
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.error.code, 'UNAUTHORIZED', what);
    }
    assert.equal(
      (await call('mutation', 'add', { text: 'expired' }, bad.expired)).body.error.message,
      'The token has expired',
    );
    const anonymous = await call('mutation', 'add', { text: 'anonymous' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.message, 'Sign in to read and write notes');
    assert.equal(await noteCount(), before, 'no refused call wrote anything');
  });

  test('a sync stream is authenticated once, when it opens: a bad token gets 401 and no stream', async () => {
    const forged = await token('alice', { secret: 'another-secret-that-is-32-characters-long' });
    const refused = await fetch(`${server.url}/api/sync`, { headers: { authorization: `Bearer ${forged}` } });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as any).error.code, 'UNAUTHORIZED');
    assert.match(refused.headers.get('content-type') ?? '', /application\/json/);

    const accepted = await fetch(`${server.url}/api/sync`, {
      headers: { authorization: `Bearer ${await token('alice')}` },
    });
    assert.equal(accepted.status, 200);
    assert.match(accepted.headers.get('content-type') ?? '', /text\/event-stream/);
    await accepted.body?.cancel();
  });

  test("live queries per user: Alice's write updates Alice and never shares or leaks to Bob", async () => {
    const alice = client(() => token('alice'));
    const bob = client(() => token('bob'));
    const bobValues: string[][] = [];
    const bobSees = nextValue<Array<{ text: string }>>(bob, (notes) => {
      bobValues.push(texts(notes));
      return true;
    });
    assert.deepEqual(texts(await bobSees), ['from bob']);
    const aliceSees = nextValue<Array<{ text: string }>>(alice, (notes) => texts(notes).includes('live for alice'));
    const aliceFirst = nextValue<Array<{ text: string }>>(alice, () => true);
    assert.deepEqual(texts(await aliceFirst), ['from alice']);
    aliceFirst.stop();
    // The same function with the same args, two identities: two live queries, not one.
    assert.equal(await metric('convoy_live_queries'), 2);
    await alice.mutation({ path: 'notes:add' } as any, { text: 'live for alice' });
    assert.deepEqual(texts(await aliceSees), ['live for alice', 'from alice']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(bobValues, [['from bob']], 'Bob received nothing of Alice’s');
    aliceSees.stop();
    bobSees.stop();
  });

  test('a token that expires while its stream is open is replaced, and the subscription carries on', async () => {
    // The first token expires in a second or two; later ones last.
    const shortLived = Math.floor(Date.now() / 1000) + 2;
    let asked = 0;
    const alice = client(async () => {
      asked++;
      return asked === 1 ? token('alice', { expires: shortLived }) : token('alice');
    });
    const errors: string[] = [];
    const sees = nextValue<Array<{ text: string }>>(
      alice,
      (notes) => texts(notes).includes('after expiry'),
      (error) => errors.push(error.code),
    );
    // Wait until the stream's token has expired, then write as Alice from elsewhere: the live
    // query runs again with the stream's (expired) token, is refused, and the client reconnects.
    while (Date.now() / 1000 < shortLived + 0.2) await new Promise((resolve) => setTimeout(resolve, 100));
    await call('mutation', 'add', { text: 'after expiry' }, await token('alice'));
    const notes = await sees;
    assert.ok(texts(notes).includes('after expiry'));
    assert.deepEqual(errors, ['UNAUTHORIZED'], 'the refusal was seen once, then a fresh token was used');
    assert.ok(asked >= 2, `auth() was asked again on reconnect (${asked} times)`);
    sees.stop();
  });
});
