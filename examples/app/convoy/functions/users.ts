// Not in PRODUCT.md's walkthrough, which assumes users exist: the example needs a way to add one.

import { z } from 'zod';
import { mutation, query } from '../_generated/server.js';

export const createUser = mutation({
  input: { name: z.string().min(1), email: z.string().email() },
  handler: async (ctx, input) => {
    return ctx.db.insert('users', { ...input, createdAt: Date.now() });
  },
});

export const listUsers = query({
  handler: async (ctx) => {
    return ctx.db.query('users').order('desc').take(50);
  },
});
