/**
 * `paginationOptsValidator`: the input of a paginated query, as `usePaginatedQuery` sends it.
 *
 *   export const list = query({
 *     input: { paginationOpts: paginationOptsValidator },
 *     handler: (ctx, { paginationOpts }) => ctx.db.query('projects').order('desc').paginate(paginationOpts),
 *   });
 */
import { z } from 'zod';

export const paginationOptsValidator = z.object({
  numItems: z.number().int().min(1),
  cursor: z.string().nullable(),
});
