/**
 * Type tests: what `createContext` in convoy/server.ts returns types `ctx` in every handler
 * (examples/auth's `auth: { userId: string } | null`). Checked by `tsc`, never run.
 */
import { mutation, query } from '../../examples/auth/convoy/_generated/server.js';

export const typed = query({
  handler: async (ctx) => {
    const userId: string | undefined = ctx.auth?.userId;
    // @ts-expect-error auth may be null (an anonymous caller)
    void ctx.auth.userId;
    // @ts-expect-error createContext adds no such field
    void ctx.auth?.email;
    // @ts-expect-error not a field of the context
    void ctx.session;
    return userId ?? null;
  },
});

export const writes = mutation({
  handler: async (ctx) => {
    if (!ctx.auth) return null;
    ctx.afterCommit(() => {});
    return ctx.db.insert('notes', { ownerId: ctx.auth.userId, text: 'hi' });
  },
});
