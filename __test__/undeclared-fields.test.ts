/**
 * Issue 16: filtering on a field the table does not declare returned `[]` — a typo in a field
 * name looked like an empty table. Now it is `INVALID_ARGS` naming the table's fields; declared
 * and system fields work as before, and a table Convoy does not manage is not held to its shape.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';
import { callOk } from './helpers/call.js';

const suite = behaviourSuite();

async function call(path: string, args: object) {
  const response = await fetch(`${suite.server.url}/api/query`, {
    method: 'POST',
    body: JSON.stringify({ path, args }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

describe('a filter or an order on a field the schema does not declare', { timeout: 30_000 }, () => {
  test('a filter on a misspelt field is INVALID_ARGS, naming the fields there are', async () => {
    await callOk(suite.server.url, 'mutation', 'notes:add', { text: 'hello', n: 1 });
    const answer = await call('hostile:filterBy', { field: 'txet', value: 'hello' });
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'INVALID_ARGS');
    assert.match(answer.body.error.message, /notes has no field "txet"/);
    assert.match(answer.body.error.message, /text, n, tags, meta, extra/);
  });

  test('an order by an undeclared field is INVALID_ARGS too', async () => {
    const answer = await call('hostile:orderBy', { field: 'createdAt' });
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'INVALID_ARGS');
    assert.match(answer.body.error.message, /order: notes has no field "createdAt"/);
  });

  test('declared fields and system fields filter as before', async () => {
    const found = await callOk(suite.server.url, 'query', 'hostile:filterBy', { field: 'text', value: 'hello' });
    assert.equal(found.length, 1);
    const byId = await callOk(suite.server.url, 'query', 'hostile:filterBy', { field: '_id', value: found[0]._id });
    assert.deepEqual(byId, found);
    const ordered = await callOk(suite.server.url, 'query', 'hostile:orderBy', { field: '_creationTime' });
    assert.equal(ordered.length, 1);
  });
});
