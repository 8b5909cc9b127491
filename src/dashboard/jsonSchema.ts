/**
 * Zod → JSON Schema for the dashboard's forms (zod 4's own `z.toJSONSchema`, reading the app's
 * validators by their `_zod` description, whichever copy of Zod built them). A `defineRef` is a
 * `z.custom`, which JSON Schema cannot say; it is shown as the uuid it is, naming its table.
 */
import { z } from 'zod';
import { refTableOf } from '../schema.js';

export type JsonSchema = Record<string, unknown>;

export function jsonSchemaOf(validator: z.ZodType): JsonSchema {
  try {
    return z.toJSONSchema(validator, {
      io: 'input',
      unrepresentable: 'any',
      override: ({ zodSchema, jsonSchema }) => {
        const table = refTableOf(zodSchema as unknown as z.ZodType);
        if (table === undefined) return;
        Object.assign(jsonSchema, { type: 'string', format: 'uuid', description: `an id of ${table}`, 'x-ref': table });
      },
    }) as JsonSchema;
  } catch (error) {
    return { description: `not expressible as JSON Schema: ${(error as Error).message}` };
  }
}

/** The JSON Schema of a function's args: its Zod shape, as the runtime checks it (strictly). */
export function argsSchemaOf(input: Record<string, unknown>): JsonSchema {
  return jsonSchemaOf(z.strictObject(input as z.ZodRawShape));
}
