/**
 * Stacked optimistic updates and the results that wait for their mutations' answers
 * (src/client/subscriptions.ts), driven by hand, with no server and no timing: when the first of
 * two sent mutations answers, a result already holding both writes must not be shown with the
 * second's update played over it (the second note twice), nor lose the first note meanwhile.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OptimisticLocalStore } from '../src/client/optimistic.js';
import { Subscriptions } from '../src/client/subscriptions.js';

const list = { path: 'notes:list' } as never;

function adding(text: string) {
  return (store: OptimisticLocalStore) => {
    const notes = (store.getQuery(list, {} as never) ?? []) as string[];
    store.setQuery(list, {} as never, [...notes, `made-up ${text}`] as never);
  };
}

test('the first of two stacked answers leaves a result holding both waiting for the second', () => {
  const books = new Subscriptions();
  const shown: string[][] = [];
  const { subscription } = books.add('notes:list', {}, { onValue: (value) => shown.push(value as string[]) });
  books.publish(subscription, { value: ['a'] });
  const first = books.addUpdate(adding('1'));
  const second = books.addUpdate(adding('2'));
  first.sent();
  second.sent();
  assert.deepEqual(shown.at(-1), ['a', 'made-up 1', 'made-up 2']);

  // The server's next result holds both writes; the answers come after it, the first one first.
  books.publish(subscription, { value: ['a', '1', '2'] });
  first.drop();
  assert.deepEqual(shown.at(-1), ['a', 'made-up 1', 'made-up 2'], 'still waiting for the second answer');
  second.drop();
  assert.deepEqual(shown.at(-1), ['a', '1', '2'], 'both answered: the server’s result');

  for (const value of shown) {
    assert.ok(!(value.includes('2') && value.includes('made-up 2')), `2 twice: ${JSON.stringify(value)}`);
    assert.ok(value.includes('1') || value.includes('made-up 1') || value.length === 1, JSON.stringify(value));
  }
});

test('an answer releases a waiting result that no other sent mutation sets', () => {
  const books = new Subscriptions();
  const shown: string[][] = [];
  const { subscription } = books.add('notes:list', {}, { onValue: (value) => shown.push(value as string[]) });
  const other = books.add('notes:other', {}, { onValue: () => {} });
  books.publish(subscription, { value: ['a'] });
  books.publish(other.subscription, { value: [] });
  const first = books.addUpdate(adding('1'));
  first.sent();
  books.publish(subscription, { value: ['a', '1'] });
  assert.deepEqual(shown.at(-1), ['a', 'made-up 1'], 'waits for the answer');
  first.drop();
  assert.deepEqual(shown.at(-1), ['a', '1']);
});
