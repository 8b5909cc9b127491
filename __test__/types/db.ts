// Type tests: `tsc -p __test__/types` passes only if every @ts-expect-error line is an error.
import { z } from 'zod';
import type { ConvoyClient } from '../../src/client/index.js';
import { type FunctionReferenceFor, functionBuildersFor } from '../../src/functions.js';
import { defineRef, defineSchema, defineTable } from '../../src/schema.js';
import type { Id } from '../../src/values/id.js';

const schema = defineSchema({
  users: defineTable({ name: z.string(), email: z.string(), createdAt: z.number() }),
  projects: defineTable({
    name: z.string(),
    userId: defineRef('users'),
    status: z.enum(['draft', 'active', 'archived']),
    createdAt: z.number(),
  }).index('by_userId', ['userId']),
  events: defineTable({ event: z.string(), level: z.number().nullable() }).unmanaged(),
});

const { query, mutation } = functionBuildersFor<typeof schema>();

export const createProject = mutation({
  input: { userId: defineRef('users'), name: z.string() },
  handler: async (ctx, input) => {
    // @ts-expect-error a table that is not in the schema
    ctx.db.query('nope');
    const project = { userId: input.userId, name: input.name, status: 'draft' as const, createdAt: 1 };
    // Each expectation stays on one line, so that formatting never moves the error off it.
    // @ts-expect-error a field the table does not define
    await ctx.db.insert('projects', { ...project, extra: 1 });
    // @ts-expect-error a status outside the enum
    await ctx.db.insert('projects', { ...project, status: 'done' });
    // @ts-expect-error the id says users, and users have no status
    await ctx.db.patch(input.userId, { status: 'active' });
    await ctx.db.patch(input.userId, { name: 'Ada' });
    const user = await ctx.db.get(input.userId);
    const email: string | undefined = user?.email;
    void email;
    // The table named first, as Convex also allows; an unmanaged table's row by its primary key.
    const named = await ctx.db.get('users', input.userId);
    const name: string | undefined = named?.name;
    void name;
    // @ts-expect-error an id of users is not an id of projects
    await ctx.db.get('projects', input.userId);
    await ctx.db.patch('users', input.userId, { name: 'Grace' });
    // @ts-expect-error users have no status
    await ctx.db.patch('users', input.userId, { status: 'active' });
    const event = await ctx.db.get('events', 42);
    const level: number | null | undefined = event?.level;
    void level;
    await ctx.db.patch('events', 42, { level: 3 });
    // @ts-expect-error a level is a number
    await ctx.db.patch('events', 42, { level: 'high' });
    await ctx.db.replace('events', '42', { event: 'signup', level: null });
    await ctx.db.delete('events', 42);
    // @ts-expect-error a primary key is a string or a number
    await ctx.db.delete('events', { id: 42 });
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
    // @ts-expect-error an index the table does not have
    ctx.db.query('projects').withIndex('by_status');
    // @ts-expect-error a field the index does not cover
    ctx.db.query('projects').withIndex('by_userId', (q) => q.eq('status', 'draft'));
    // @ts-expect-error queries cannot write
    ctx.db.insert;
    return ctx.db
      .query('projects')
      .withIndex('by_userId', (q) => q.eq('userId', input.userId))
      .filter((q) => q.eq(q.field('status'), 'active'))
      .order('desc', 'createdAt')
      .collect();
  },
});

const api = {
  projects: {
    createProject: { path: 'projects:createProject', kind: 'mutation' } as FunctionReferenceFor<typeof createProject>,
    listProjects: { path: 'projects:listProjects', kind: 'query' } as FunctionReferenceFor<typeof listProjects>,
  },
};

export async function clientCalls(client: ConvoyClient, userId: Id<'users'>) {
  const id: Id<'projects'> = await client.mutation(api.projects.createProject, { userId, name: 'Rocket' });
  // @ts-expect-error wrong arg type
  await client.mutation(api.projects.createProject, { userId, name: 42 });
  // @ts-expect-error missing arg
  await client.mutation(api.projects.createProject, { userId });
  // @ts-expect-error a query is not a mutation
  await client.mutation(api.projects.listProjects, { userId });
  const projects = await client.query(api.projects.listProjects, { userId });
  const status: 'draft' | 'active' | 'archived' = projects[0]!.status;
  const creation: number = projects[0]!._creationTime;
  void [id, status, creation];
}

const withExisting = defineSchema({
  events: defineTable({ event: z.string() }).unmanaged(),
  notes: defineTable({ text: z.string() }),
});
const existing = functionBuildersFor<typeof withExisting>();

export const recentEvents = existing.query({
  handler: async (ctx) => {
    const [event] = await ctx.db.query('events').order('desc', '_id').take(1);
    const name: string | undefined = event?.event;
    // @ts-expect-error an unmanaged row has no _creationTime
    event?._creationTime;
    const [note] = await ctx.db.query('notes').take(1);
    const created: number | undefined = note?._creationTime;
    void [name, created];
    return event;
  },
});
