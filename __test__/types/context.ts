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

// `@avvos/convoy/server` names the request and the function's type (SPEC §1).
import type { ConvoyRequest, CreateContext } from '../../src/server/index.js';

const checked = (async (req: ConvoyRequest, base) => ({
  ...base,
  auth: { userId: req.headers['x-user'] ?? null },
})) satisfies CreateContext;
export const fromChecked: string | null = ({} as Awaited<ReturnType<typeof checked>>).auth.userId;

export const named: CreateContext<{ auth: { userId: string } }> = async () => ({ auth: { userId: 'ada' } });
// @ts-expect-error the context named must be returned
export const wrong: CreateContext<{ auth: { userId: string } }> = async () => ({ auth: null });

// `defineContext` from the generated server.ts: `req` and `base` typed for the app, no annotations
// (PRODUCT.md's plain `createContext(req, base)` is TS7006 under `strict`).
import { defineContext } from '../../examples/auth/convoy/_generated/server.js';

export const typedContext = defineContext(async (req, base) => {
  const header: string | undefined = req.headers.authorization;
  const method: string = req.method;
  // `base.db` reads the app's tables…
  const notes = await base.db.query('notes').take(1);
  // @ts-expect-error …and is not a table of this app's
  await base.db.query('projects').take(1);
  // @ts-expect-error createContext runs for queries and streams too: base.db only reads
  await base.db.insert('notes', { ownerId: 'ada', text: 'hi' });
  return { auth: header ? { userId: header, method, notes: notes.length } : null };
});
export const typedAuth: { userId: string; method: string; notes: number } | null = (
  {} as Awaited<ReturnType<typeof typedContext>>
).auth;

// @ts-expect-error what createContext returns is added to ctx: it must be an object
export const notAnObject = defineContext(() => 'ada');

// Returning `base` with the additions, as PRODUCT.md does, types the additions alike.
export const spreadingBase = defineContext((_req, base) => ({ ...base, tenant: 'acme' }));
export const tenant: string = ({} as Awaited<ReturnType<typeof spreadingBase>>).tenant;
