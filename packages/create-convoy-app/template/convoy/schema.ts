// The app's tables. Each is a table of JSONB documents in Postgres: add a field here and it is
// there on the next save, no migration. When the shape settles, `.relational()` gives a table
// typed columns (see Convoy's docs/graduation.md).
import { defineSchema, defineTable } from '@avvos/convoy';
import { z } from 'zod';

export const schema = defineSchema({
  items: defineTable({
    text: z.string().min(1).max(280),
  }),
});
