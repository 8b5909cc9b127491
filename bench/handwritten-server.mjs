/**
 * What a user writes instead of Convoy: node:http and a `pg` pool answering the same request with
 * the same SQL, on Convoy's wire protocol (SPEC.md §6), as carefully as a good hand-written server
 * would — arguments validated, the statement prepared once per connection, errors answered in the
 * protocol's envelope.
 *
 *   DATABASE_URL=postgresql://…/convoy_bench PORT=3801 node bench/handwritten-server.mjs
 */
import http from 'node:http';
import pg from 'pg';

const MAX_BODY_BYTES = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const LIST_PROJECTS = {
  // Named, so `pg` prepares it once per connection, as Convoy does.
  name: 'projects:listProjects',
  text: `SELECT id, data, created_at FROM "projects" WHERE (data->'userId') = $1::jsonb ORDER BY (data->'createdAt') DESC, id DESC`,
};

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 8 });

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

async function handle(request) {
  if (request.method === 'GET' && request.url === '/health') {
    await pool.query('SELECT 1').catch(() => {
      throw new HttpError(503, 'UNAVAILABLE', 'the database does not answer');
    });
    return { ok: true };
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
