/**
 * What a user writes instead of Convoy: node:http and a `pg` pool answering the same request with
 * the same SQL, on Convoy's wire protocol (SPEC.md §6), as carefully as a good hand-written server
 * would — arguments validated, the statement prepared once per connection, errors answered in the
 * protocol's envelope.
 *
 *   DATABASE_URL=postgresql://…/convoy_bench PORT=3801 node bench/handwritten-server.mjs
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

const MAX_BODY_BYTES = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const LIST_PROJECTS = {
  // Named, so `pg` prepares it once per connection, as Convoy does.
  name: 'projects:listProjects',
  text: `SELECT id, data, created_at FROM "projects" WHERE (data->'userId') = $1::jsonb ORDER BY (data->'createdAt') DESC, id DESC`,
};

const INSERT_PROJECT = {
  name: 'projects:createProject',
  text: 'INSERT INTO "projects" (id, data, created_at, updated_at) VALUES ($1, $2, $3, $3)',
};
const LOCK_COUNTER = {
  name: 'counters:lock',
  text: `SELECT id, data FROM "counters" WHERE (data->'name') = $1::jsonb FOR UPDATE`,
};
const READ_COUNTER = {
  name: 'counters:read',
  text: `SELECT id, data FROM "counters" WHERE (data->'name') = $1::jsonb`,
};
const UPDATE_COUNTER = {
  name: 'counters:update',
  text: 'UPDATE "counters" SET data = $2, updated_at = now() WHERE id = $1',
};

/** A UUIDv7, as Convoy writes: 48 bits of milliseconds, then random bits, version 7. */
function uuidV7(now) {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Convoy's change trigger on its tables announces every write made outside Convoy with a NOTIFY,
// which serializes commits; a server written without Convoy would have no such trigger. Saying
// what Convoy's own connections say keeps it quiet, so this server pays what Convoy pays.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 8, options: '-c convoy.writer=convoy' });

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function listProjects(args) {
  const userId = args?.userId;
  if (typeof userId !== 'string' || !UUID.test(userId)) {
    throw new HttpError(400, 'INVALID_ARGS', 'userId: expected an id of table "users" (a UUID string)');
  }
  const { rows } = await pool.query({ ...LIST_PROJECTS, values: [JSON.stringify(userId)] });
  return rows.map((row) => ({ _id: row.id, _creationTime: row.created_at.getTime(), ...row.data }));
}

async function createProject(args) {
  const { userId, name } = args ?? {};
  if (typeof userId !== 'string' || !UUID.test(userId)) {
    throw new HttpError(400, 'INVALID_ARGS', 'userId: expected an id of table "users" (a UUID string)');
  }
  if (typeof name !== 'string') throw new HttpError(400, 'INVALID_ARGS', 'name: expected a string');
  const now = Date.now();
  const id = uuidV7(now);
  const data = { userId, name, status: 'draft', createdAt: now };
  await pool.query({ ...INSERT_PROJECT, values: [id, data, new Date(now)] });
  return id;
}

/** The read-modify-write a careful developer writes: lock the row, update it, commit. */
async function increment(args) {
  const name = args?.name;
  if (typeof name !== 'string') throw new HttpError(400, 'INVALID_ARGS', 'name: expected a string');
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query({ ...LOCK_COUNTER, values: [JSON.stringify(name)] });
    if (rows.length !== 1) throw new HttpError(404, 'NOT_FOUND', `no counter ${name}`);
    const [{ id, data }] = rows;
    const value = data.value + 1;
    await client.query({ ...UPDATE_COUNTER, values: [id, { ...data, value }] });
    await client.query('COMMIT');
    return value;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * The same read-modify-write with Convoy's guarantee for any handler: serializable, re-run on a
 * serialization failure or deadlock (up to 10 attempts, 2 ms × 2ⁿ backoff with jitter).
 */
async function incrementSerializable(args) {
  const name = args?.name;
  if (typeof name !== 'string') throw new HttpError(400, 'INVALID_ARGS', 'name: expected a string');
  for (let attempt = 0; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
      const { rows } = await client.query({ ...READ_COUNTER, values: [JSON.stringify(name)] });
      if (rows.length !== 1) throw new HttpError(404, 'NOT_FOUND', `no counter ${name}`);
      const [{ id, data }] = rows;
      const value = data.value + 1;
      await client.query({ ...UPDATE_COUNTER, values: [id, { ...data, value }] });
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      if (!['40001', '40P01'].includes(error.code) || attempt === 9) throw error;
    } finally {
      client.release();
    }
    await new Promise((resolve) => setTimeout(resolve, 2 ** attempt * (1 + Math.random())));
  }
}

const MUTATIONS = {
  'projects:createProject': createProject,
  'counters:increment': increment,
  'counters:incrementSerializable': incrementSerializable,
};

async function handle(request) {
  if (request.method === 'GET' && request.url === '/health') {
    await pool.query('SELECT 1').catch(() => {
      throw new HttpError(503, 'UNAVAILABLE', 'the database does not answer');
    });
    return { ok: true };
  }
  if (request.method === 'POST' && request.url === '/api/mutation') {
    const body = await readJson(request);
    const mutation = MUTATIONS[body?.path];
    if (!mutation) throw new HttpError(404, 'NOT_FOUND', `unknown function ${JSON.stringify(body?.path)}`);
    return { value: await mutation(body.args) };
  }
  if (request.method !== 'POST' || request.url !== '/api/query') {
    throw new HttpError(404, 'NOT_FOUND', `no route for ${request.method} ${request.url}`);
  }
  const body = await readJson(request);
  if (body?.path !== 'projects:listProjects') {
    throw new HttpError(404, 'NOT_FOUND', `unknown function ${JSON.stringify(body?.path)}`);
  }
  return { value: await listProjects(body.args) };
}

async function readJson(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', 'the request body is over 1 MiB');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'INVALID_ARGS', 'the request body is not JSON');
  }
}

function send(response, status, payload) {
  const body = JSON.stringify(payload);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

const server = http.createServer((request, response) => {
  handle(request).then(
    (payload) => send(response, 200, payload),
    (error) => {
      if (error instanceof HttpError) {
        send(response, error.status, { error: { code: error.code, message: error.message } });
      } else {
        console.error(error);
        send(response, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
      }
    },
  );
});

server.listen(Number(process.env.PORT ?? 3801), '127.0.0.1', () => {
  console.log(`hand-written server listening on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    pool.end().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
