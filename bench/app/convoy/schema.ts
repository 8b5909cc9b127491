// PRODUCT.md's schema, plus a table of counters for the read-modify-write benchmark.
import { defineRef, defineSchema, defineTable } from '@avvos/convoy';
import { z } from 'zod';

export const schema = defineSchema({
  users: defineTable({
    name: z.string(),
    email: z.string(),
    createdAt: z.number(),
  }),
  projects: defineTable({
    name: z.string(),
    userId: defineRef('users'),
    status: z.enum(['draft', 'active', 'archived']),
    createdAt: z.number(),
  }).index('by_userId', ['userId']),
  counters: defineTable({ name: z.string(), value: z.number() }).index('by_name', ['name']),
});
