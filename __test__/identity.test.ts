/**
 * Who shares a live result (docs/security.md): streams whose `createContext` returned the same
 * plain data. A context JSON cannot fully describe never matches another stream's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identityOf } from '../src/server/identity.js';

const base = { db: {} };

test('equal plain contexts are one identity; the base (ctx.db) plays no part', () => {
  const ada = identityOf({ db: { other: true }, auth: { userId: 'ada', roles: ['admin'], since: new Date(0) } }, base);
  assert.equal(ada, identityOf({ auth: { userId: 'ada', roles: ['admin'], since: new Date(0) } }, base));
  assert.notEqual(ada, identityOf({ auth: { userId: 'grace', roles: ['admin'], since: new Date(0) } }, base));
  assert.notEqual(ada, identityOf({ auth: { userId: 'ada', roles: [], since: new Date(0) } }, base));
  assert.equal(identityOf({}, base), identityOf({ auth: undefined }, base));
});

test('a context with anything JSON would not show shares with nobody, not even itself', () => {
  class Session {
    #userId: string;
    constructor(userId: string) {
      this.#userId = userId;
    }
    get userId() {
      return this.#userId;
    }
  }
  const hidden: Record<string, unknown>[] = [
    { auth: new Session('ada') },
    { auth: { userId: 'ada', can: () => true } },
    { auth: new Map([['userId', 'ada']]) },
    { auth: { userId: 'ada', limit: Number.POSITIVE_INFINITY } },
    { auth: { [Symbol('userId')]: 'ada' } },
    { auth: { id: 1n } },
  ];
  for (const context of hidden) {
    const first = identityOf(context, base);
    assert.match(first, /^stream:/);
    assert.notEqual(first, identityOf(context, base));
  }
});
