/**
 * GRADUATION.md § Mapping: each field of a table, read from its Zod schema, becomes a typed column
 * with its constraint; PRODUCT.md's schema maps with no manual step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { mapField, mapTable, snakeCase } from '../src/graduation/mapping.js';
import { defineRef, defineTable } from '../src/schema.js';

const summary = (columns: ReturnType<typeof mapTable>) =>
  columns.map(({ field, column, type, notNull, allowed, references, named }) => ({
    field,
    column,
    type,
    notNull,
    ...(allowed ? { allowed } : {}),
    ...(references ? { references } : {}),
    named,
  }));

test("PRODUCT.md's projects map with no manual step: createdAt steps around Convoy's created_at", () => {
  const projects = defineTable({
    name: z.string(),
    userId: defineRef('users'),
    status: z.enum(['draft', 'active', 'archived']),
    createdAt: z.number(),
  });
  assert.deepEqual(summary(mapTable(projects)), [
    { field: 'name', column: 'name', type: 'text', notNull: true, named: 'snake_case' },
    { field: 'userId', column: 'user_id', type: 'uuid', notNull: true, references: 'users', named: 'snake_case' },
    {
      field: 'status',
      column: 'status',
      type: 'text',
      notNull: true,
      allowed: ['draft', 'active', 'archived'],
      named: 'snake_case',
    },
    { field: 'createdAt', column: 'created_at_field', type: 'double precision', notNull: true, named: 'renamed' },
  ]);
});

test('the schema may choose a column; a reserved one or two fields on one column are refused', () => {
  const users = defineTable({ createdAt: z.number(), created_at_field: z.string() });
  assert.throws(() => mapTable(users), /both be column created_at_field/);
  assert.deepEqual(
    mapTable(users, { createdAt: 'signed_up_ms' }).map((column) => [column.column, column.named]),
    [
      ['signed_up_ms', 'chosen'],
      ['created_at_field', 'snake_case'],
    ],
  );
  assert.throws(() => mapTable(users, { createdAt: 'updated_at' }), /Convoy keeps that column/);
});

test('types: integers, booleans, literals, objects and arrays', () => {
  assert.equal(mapField('n', z.number().int()).type, 'bigint');
  assert.equal(mapField('n', z.int()).type, 'bigint');
  assert.equal(mapField('n', z.number()).type, 'double precision');
  assert.equal(mapField('done', z.boolean()).type, 'boolean');
  assert.deepEqual([mapField('kind', z.literal('x')).type, mapField('kind', z.literal('x')).allowed], ['text', ['x']]);
  assert.equal(mapField('one', z.literal(1)).type, 'double precision');
  assert.deepEqual(
    [mapField('meta', z.object({ a: z.string() })).type, mapField('meta', z.object({})).jsonbKind],
    ['jsonb', 'object'],
  );
  assert.equal(mapField('tags', z.array(z.string())).jsonbKind, 'array');
  assert.equal(mapField('either', z.union([z.string(), z.number()])).type, 'jsonb');
});

test('optional and nullable: NOT NULL only when required, and both together keep missing and null apart', () => {
  const required = mapField('a', z.string());
  assert.deepEqual([required.notNull, required.optional, required.nullable], [true, false, false]);
  const optional = mapField('a', z.string().optional());
  assert.deepEqual([optional.type, optional.notNull, optional.optional], ['text', false, true]);
  const nullable = mapField('a', z.string().nullable());
  assert.deepEqual([nullable.type, nullable.notNull, nullable.nullable], ['text', false, true]);
  assert.equal(mapField('a', z.string().optional().nullable()).type, 'jsonb');
  assert.equal(mapField('a', z.string().nullable().optional()).type, 'jsonb');
  assert.equal(mapField('owner', defineRef('users').optional()).references, 'users');
});

test('rules SQL cannot see stay in Zod, and are named', () => {
  assert.deepEqual(mapField('email', z.string().email()).zodOnly, ['string_format email']);
  assert.deepEqual(mapField('n', z.number().int()).zodOnly, []);
});

test('snake_case of the usual spellings', () => {
  assert.deepEqual(['userId', 'createdAt', 'HTMLTitle', 'already_snake', 'a1B2'].map(snakeCase), [
    'user_id',
    'created_at',
    'html_title',
    'already_snake',
    'a1_b2',
  ]);
});
