// Not in PRODUCT.md: everyone's projects, newest first, a page at a time — what the example page's
// "Recent projects" list (usePaginatedQuery) reads.

import { paginationOptsValidator } from '@avvos/convoy';
import { query } from '../_generated/server.js';

export const recentProjects = query({
  input: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => {
    return ctx.db.query('projects').order('desc').paginate(paginationOpts);
  },
});
