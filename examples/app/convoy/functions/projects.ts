// convoy/functions/projects.ts

import { defineRef } from '@avvos/convoy';
import { z } from 'zod';
import { mutation, query } from '../_generated/server.js';

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
