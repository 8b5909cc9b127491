// A read-modify-write: read the counter by index, then patch it (serializable, retried on conflict).
import { z } from 'zod';
import { mutation } from '../_generated/server';

export const increment = mutation({
  input: { name: z.string() },
  handler: async (ctx, { name }) => {
    const counter = await ctx.db
      .query('counters')
      .withIndex('by_name', (q) => q.eq('name', name))
      .unique();
    if (!counter) throw new Error(`no counter ${name}`);
    await ctx.db.patch(counter._id, { value: counter.value + 1 });
    return counter.value + 1;
  },
});
