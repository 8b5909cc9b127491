// The same functions as examples/app (PRODUCT.md), for the benchmark, plus a read-modify-write of
// a project (bench/graduate.mjs).

import { ConvoyError, defineRef } from '@avvos/convoy';
import { z } from 'zod';
import { mutation, query } from '../_generated/server';

export const createProject = mutation({
  input: { userId: defineRef('users'), name: z.string() },
  handler: async (ctx, input) => {
    return ctx.db.insert('projects', {
      userId: input.userId,
      name: input.name,
      status: 'draft',
      createdAt: Date.now(),
    });
  },
});

export const listProjects = query({
  input: { userId: defineRef('users') },
  handler: async (ctx, input) => {
    return ctx.db
      .query('projects')
      .withIndex('by_userId', (q) => q.eq('userId', input.userId))
      .order('desc', 'createdAt')
      .collect();
  },
});

/** A read-modify-write: read the project, then patch its name with one `+` more. */
export const touchProject = mutation({
  input: { id: defineRef('projects') },
  handler: async (ctx, { id }) => {
    const project = await ctx.db.get('projects', id);
    if (project === null) throw new ConvoyError('NOT_FOUND', `no project ${id}`);
    await ctx.db.patch(project._id, { name: `${project.name}+` });
  },
});
