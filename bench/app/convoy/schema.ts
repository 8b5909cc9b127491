// PRODUCT.md's schema as the example app declares it, plus a table of counters for the
// read-modify-write benchmark.
import { defineSchema, defineTable } from '@avvos/convoy';
import { z } from 'zod';
import { schema as example } from '../../../examples/app/convoy/schema';

export const schema = defineSchema({
  ...example.tables,
  counters: defineTable({ name: z.string(), value: z.number() }).index('by_name', ['name']),
});
