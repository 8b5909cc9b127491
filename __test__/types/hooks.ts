// Type tests of the client's `subscribe` and the React hooks: checked by `tsc -p __test__/types`,
// which passes only if every @ts-expect-error line is an error.
import { z } from 'zod';
import type { ConvoyClient } from '../../src/client/index.js';
import { type FunctionReferenceFor, functionBuildersFor } from '../../src/functions.js';
import { paginationOptsValidator } from '../../src/pagination.js';
import { skipToken, useMutation, usePaginatedQuery, useQuery } from '../../src/react/index.js';
import { defineRef, defineSchema, defineTable } from '../../src/schema.js';
import type { Id } from '../../src/values/id.js';

const schema = defineSchema({
  users: defineTable({ name: z.string() }),
  projects: defineTable({ name: z.string(), userId: defineRef('users') }).index('by_userId', ['userId']),
});
const { query, mutation } = functionBuildersFor<typeof schema>();

const listProjects = query({
  input: { userId: defineRef('users') },
  handler: (ctx, { userId }) =>
    ctx.db
      .query('projects')
      .withIndex('by_userId', (q) => q.eq('userId', userId))
      .collect(),
});
const pageProjects = query({
  input: { userId: defineRef('users'), paginationOpts: paginationOptsValidator },
  handler: (ctx, { userId, paginationOpts }) =>
    ctx.db
      .query('projects')
      .withIndex('by_userId', (q) => q.eq('userId', userId))
      .paginate(paginationOpts),
});
const rename = mutation({
  input: { id: defineRef('projects'), name: z.string() },
  handler: async (ctx, { id, name }) => {
    await ctx.db.patch(id, { name });
    return true;
  },
});

const api = {
  listProjects: { path: 'p:listProjects', kind: 'query' } as FunctionReferenceFor<typeof listProjects>,
  pageProjects: { path: 'p:pageProjects', kind: 'query' } as FunctionReferenceFor<typeof pageProjects>,
  rename: { path: 'p:rename', kind: 'mutation' } as FunctionReferenceFor<typeof rename>,
};
declare const client: ConvoyClient;
declare const userId: Id<'users'>;

// subscribe: args and the value are typed by the reference.
const stop: () => void = client.subscribe(api.listProjects, { userId }, (projects) => {
  const name: string | undefined = projects[0]?.name;
  void name;
  // @ts-expect-error projects have no email
  void projects[0]?.email;
});
stop();
// @ts-expect-error userId must be an id of users
client.subscribe(api.listProjects, { userId: 1 }, () => {});
// @ts-expect-error a mutation cannot be subscribed to
client.subscribe(api.rename, { id: '' as Id<'projects'>, name: '' }, () => {});

export function Hooks() {
  const projects = useQuery(api.listProjects, { userId });
  const names: string[] | undefined = projects.data?.map((project) => project.name);
  const stale: boolean = projects.isStale;
  const state: 'connecting' | 'open' | 'reconnecting' | 'closed' = projects.connectionState;
  void [names, stale, state, projects.isLoading, projects.error?.code];
  useQuery(api.listProjects, skipToken);
  // @ts-expect-error missing userId
  useQuery(api.listProjects, {});
  // @ts-expect-error a mutation is not a query
  useQuery(api.rename, { id: '' as Id<'projects'>, name: '' });

  const renameProject = useMutation(api.rename);
  const done: Promise<boolean> = renameProject({ id: '' as Id<'projects'>, name: 'x' });
  void done;
  // @ts-expect-error name must be a string
  void renameProject({ id: '' as Id<'projects'>, name: 1 });
  // The latest call's state narrows on status, as TanStack's does.
  const pendingNow: boolean = renameProject.isPending;
  void pendingNow;
  if (renameProject.status === 'success') {
    const renamed: boolean = renameProject.data;
    void renamed;
  }
  if (renameProject.status === 'error') {
    const code: string = renameProject.error.code;
    void code;
  }
  // @ts-expect-error data may be undefined before narrowing
  const notYet: boolean = renameProject.data;
  void notYet;
  renameProject.reset();
  renameProject.mutate({ id: '' as Id<'projects'>, name: 'x' });
  // An optimistic update reads and writes the live queries with their own types.
  const renameNow = useMutation(api.rename).withOptimisticUpdate((store, { id, name }) => {
    const projects = store.getQuery(api.listProjects, { userId });
    if (projects === undefined) return;
    store.setQuery(
      api.listProjects,
      { userId },
      projects.map((project) => (project._id === id ? { ...project, name } : project)),
    );
    // @ts-expect-error the value must be the query's result type
    store.setQuery(api.listProjects, { userId }, [{ name: 1 }]);
    // @ts-expect-error a mutation's args are not a query's
    store.getQuery(api.listProjects, { id });
    for (const { args, value } of store.getAllQueries(api.listProjects)) {
      const who: Id<'users'> = args.userId;
      const count: number | undefined = value?.length;
      void who;
      void count;
    }
  });
  const renamedNow: Promise<boolean> = renameNow({ id: '' as Id<'projects'>, name: 'y' });
  void renamedNow;
  // The client takes the same update as an option.
  void client.mutation(
    api.rename,
    { id: '' as Id<'projects'>, name: 'z' },
    {
      optimisticUpdate: (store, args) => {
        const name: string = args.name;
        void name;
        void store.getQuery(api.listProjects, { userId });
      },
    },
  );

  const pages = usePaginatedQuery(api.pageProjects, { userId }, { initialNumItems: 10 });
  const first: string | undefined = pages.results[0]?.name;
  const status: 'LoadingFirstPage' | 'CanLoadMore' | 'LoadingMore' | 'Exhausted' = pages.status;
  pages.loadMore(10);
  void [first, status];
  usePaginatedQuery(
    api.pageProjects,
    // @ts-expect-error paginationOpts is the hook's to send
    { userId, paginationOpts: { numItems: 1, cursor: null } },
    { initialNumItems: 1 },
  );
  return null;
}
