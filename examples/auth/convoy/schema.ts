// convoy/schema.ts
import { defineSchema, defineTable } from '@avvos/convoy';
import { z } from 'zod';

export const schema = defineSchema({
  notes: defineTable({
    // The `sub` of the signed-in user's token: whose note it is.
    ownerId: z.string(),
    text: z.string(),
  }).index('by_owner', ['ownerId']),
});
