// Type tests of `.relational()` and `defineRef`'s options: the same documents, indexes and
// `ctx.db` as a document table; only the schema's own names are accepted.
import { z } from 'zod';
import { functionBuildersFor } from '../../src/functions.js';
import { defineRef, defineSchema, defineTable } from '../../src/schema.js';
import type { Id } from '../../src/values/id.js';

const schema = defineSchema({
  users: defineTable({ name: z.string(), createdAt: z.number() }).relational({ columns: { createdAt: 'created_on' } }),
  projects: defineTable({
    name: z.string(),
    userId: defineRef('users', { onDelete: 'cascade' }),
    reviewerId: defineRef('users', { onDelete: 'setNull' }).optional(),
  })
    .relational()
    .index('by_userId', ['userId']),
});

const { query } = functionBuildersFor<typeof schema>();

export const listProjects = query({
  input: { userId: defineRef('users') },
  handler: async (ctx, { userId }) => {
    const projects = await ctx.db
      .query('projects')
      .withIndex('by_userId', (q) => q.eq('userId', userId))
      .collect();
    const first = projects[0];
    const id: Id<'projects'> | undefined = first?._id;
    const created: number | undefined = first?._creationTime;
    const reviewer: Id<'users'> | undefined = first?.reviewerId;
    void [id, created, reviewer];
    // @ts-expect-error an index the table does not define
    ctx.db.query('projects').withIndex('by_name');
    return projects;
  },
});

// @ts-expect-error a column for a field the table does not define
defineTable({ name: z.string() }).relational({ columns: { nope: 'x' } });
// @ts-expect-error onDelete is restrict, cascade or setNull
defineRef('users', { onDelete: 'explode' });
