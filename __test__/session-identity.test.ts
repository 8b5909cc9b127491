/**
 * Issue 15, finding 6: a sync session belongs to the identity `createContext` gave when its stream
 * opened. Another identity changing it, or naming it in a mutation, is 403 — whatever header the
 * app identifies callers by (here `x-api-key`, which the session check once ignored).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { behaviourSuite } from './helpers/behaviour-suite.js';
import { fieldText } from './helpers/storage.js';

const suite = behaviourSuite();

const streams: Array<ReadableStreamDefaultReader<string>> = [];

/** Opens a stream as `headers`, and returns its session id. */
async function openSession(headers: Record<string, string>): Promise<string> {
  const response = await fetch(`${suite.server.url}/api/sync`, {
    headers: { accept: 'text/event-stream', ...headers },
  });
  assert.equal(response.status, 200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  streams.push(reader);
  let text = '';
  for (;;) {
    const match = /data: \{"session":"([^"]+)"\}/.exec(text);
    if (match) return match[1] as string;
    const chunk = await reader.read();
    assert.ok(!chunk.done, 'the stream ended before naming its session');
    text += chunk.value;
  }
}

const change = (session: string, headers: Record<string, string>) =>
  fetch(`${suite.server.url}/api/sync/${session}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ add: [{ id: '1', path: 'notes:list', args: {} }] }),
  });

const mutation = (headers: Record<string, string>, text: string) =>
  fetch(`${suite.server.url}/api/mutation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ path: 'notes:add', args: { text } }),
  });

describe('finding 6: a session is bound to the identity that opened it', { timeout: 30_000 }, () => {
  after(async () => {
    for (const reader of streams) await reader.cancel().catch(() => {});
  });

  test('a context that is not plain data: its owner changes its stream and names it in a mutation; another is 403', async () => {
    const owner = { authorization: 'Bearer helper-owner', 'x-context-helper': '1' };
    const session = await openSession(owner);
    const changed = await change(session, owner);
    assert.equal(changed.status, 200, await changed.text());
    const named = await mutation({ ...owner, 'x-convoy-session': session }, 'helper context');
    assert.equal(named.status, 200, await named.text());
    const stranger = { authorization: 'Bearer helper-stranger', 'x-context-helper': '1' };
    assert.equal((await change(session, stranger)).status, 403);
    const refused = await mutation({ ...stranger, 'x-convoy-session': session }, 'not run');
    assert.equal(refused.status, 403);
    const [{ n }] = await suite.database.query(
      `SELECT count(*)::int AS n FROM notes WHERE ${fieldText('text')} = 'not run'`,
    );
    assert.equal(n, 0, 'refused before it ran');
  });

  test('a context that is not plain data, its owner known by neither Authorization nor Cookie: nobody else gets in', async () => {
    // Owner and stranger both send no Authorization and no Cookie: equal credentials prove nothing.
    const owner = { 'x-api-key': 'helper-owner', 'x-context-helper': '1' };
    const session = await openSession(owner);
    const stranger = { 'x-api-key': 'helper-stranger', 'x-context-helper': '1' };
    assert.equal((await change(session, stranger)).status, 403);
    assert.equal((await change(session, {})).status, 403);
    const refused = await mutation({ ...stranger, 'x-convoy-session': session }, 'not run either');
    assert.equal(refused.status, 403);
    const [{ n }] = await suite.database.query(
      `SELECT count(*)::int AS n FROM notes WHERE ${fieldText('text')} = 'not run either'`,
    );
    assert.equal(n, 0, 'refused before it ran');
  });

  for (const scheme of ['x-api-key', 'authorization'] as const) {
    const as = (user: string): Record<string, string> =>
      scheme === 'authorization' ? { authorization: `Bearer ${user}` } : { 'x-api-key': user };

    test(`under ${scheme}: another key, or none, is 403 on the victim's session; the owner is served`, async () => {
      const session = await openSession(as('victim'));
      for (const stranger of [as('attacker'), {}]) {
        const changed = await change(session, stranger);
        assert.equal(changed.status, 403);
        assert.equal(((await changed.json()) as any).error.code, 'FORBIDDEN');
        const named = await mutation(
          { ...stranger, 'x-convoy-session': session },
          `named by a stranger under ${scheme}`,
        );
        assert.equal(named.status, 403, 'a mutation naming the session');
      }
      const rows = await suite.database.query(
        `SELECT count(*)::int AS n FROM notes WHERE ${fieldText('text')} = 'named by a stranger under ${scheme}'`,
      );
      assert.equal(rows[0].n, 0, 'the refused mutations did not run');
      assert.equal((await change(session, as('victim'))).status, 200);
      const owned = await mutation(
        { ...as('victim'), 'x-convoy-session': session },
        `named by its owner under ${scheme}`,
      );
      assert.equal(owned.status, 200);
    });
  }
});
