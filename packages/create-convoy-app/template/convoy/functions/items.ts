// The functions the page calls: `api.items.list`, `api.items.page` and `api.items.add`. A file
// here is a module of the api; each exported query or mutation is a function of it.
import { ConvoyError, paginationOptsValidator } from '@avvos/convoy';
import { z } from 'zod';
import { mutation, query } from '../_generated/server.js';

/** The ten newest items, newest first. Live: every page showing it updates when an item is added. */
export const list = query({
  handler: async (ctx) => {
    return ctx.db.query('items').order('desc').take(10);
  },
});

/** Every item, oldest first, a page at a time (`usePaginatedQuery`). */
export const page = query({
  input: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => {
    return ctx.db.query('items').order('asc').paginate(paginationOpts);
  },
});

export const add = mutation({
  input: { text: z.string().max(280) },
  handler: async (ctx, { text }) => {
    const trimmed = text.trim();
    // The client receives this error as it is thrown: the page shows its message.
    if (trimmed === '') throw new ConvoyError('INVALID_ARGS', 'Write something first.');
    return ctx.db.insert('items', { text: trimmed });
  },
});
