// convoy/functions/notes.ts — everyone sees and writes only their own notes.
import { ConvoyError, defineRef } from '@avvos/convoy';
import { z } from 'zod';
import { mutation, type QueryCtx, query } from '../_generated/server.js';

/** The signed-in user's id; `ctx.auth` is typed from what `createContext` returns. */
function signedIn(ctx: Pick<QueryCtx, 'auth'>): string {
  if (!ctx.auth) throw new ConvoyError('UNAUTHORIZED', 'Sign in to read and write notes');
  return ctx.auth.userId;
}

export const mine = query({
  handler: async (ctx) => {
    return ctx.db
      .query('notes')
      .withIndex('by_owner', (q) => q.eq('ownerId', signedIn(ctx)))
      .order('desc')
      .collect();
  },
});

export const add = mutation({
  input: { text: z.string().min(1).max(2000) },
  handler: async (ctx, { text }) => {
    return ctx.db.insert('notes', { ownerId: signedIn(ctx), text });
  },
});

export const remove = mutation({
  input: { id: defineRef('notes') },
  handler: async (ctx, { id }) => {
    const note = await ctx.db.get(id);
    // Someone else's note looks exactly like a missing one.
    if (!note || note.ownerId !== signedIn(ctx)) throw new ConvoyError('NOT_FOUND', 'No such note');
    await ctx.db.delete(id);
    return null;
  },
});
