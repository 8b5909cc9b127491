/**
 * A call's args: parsed from the JSON the core passes on, validated by the function's Zod shape
 * (strictly: an unknown arg is refused), and the ids among them that `defineRef` ties to a table.
 */
import { z } from 'zod';
import { describeIssues } from '../db/database.js';
import { refTableOf } from '../schema.js';
import { ConvoyError } from '../values/errors.js';
import type { AnyFunction } from './app.js';

const validators = new WeakMap<AnyFunction, z.ZodType>();

function argsValidator(fn: AnyFunction): z.ZodType {
  let validator = validators.get(fn);
  if (!validator) {
    validator = z.strictObject(fn.input);
    validators.set(fn, validator);
  }
  return validator;
}

/** The args the handler gets; `INVALID_ARGS` for text that is not JSON or args that do not fit. */
export function parsedArgs(fn: AnyFunction, path: string, argsJson: string): unknown {
  let args: unknown;
  try {
    args = JSON.parse(argsJson);
  } catch {
    throw new ConvoyError('INVALID_ARGS', 'args must be JSON');
  }
  const parsed = argsValidator(fn).safeParse(args);
  if (!parsed.success) {
    throw new ConvoyError('INVALID_ARGS', `invalid args for ${path}: ${describeIssues(parsed.error.issues)}`, {
      issues: parsed.error.issues,
    });
  }
  return parsed.data;
}

/**
 * The ids among a call's args that are declared `defineRef(table)` (directly, optional, nullable
 * or in an array), with their tables: ctx.db keeps each to its table.
 */
export function refsIn(fn: AnyFunction, args: unknown): Map<string, string> {
  const refs = new Map<string, string>();
  if (typeof args !== 'object' || args === null) return refs;
  const visit = (validator: z.ZodType, value: unknown) => {
    const table = refTableOf(validator);
    if (table !== undefined) {
      if (typeof value === 'string') refs.set(value, table);
      return;
    }
    // By Zod's own description of the schema, not instanceof: the app's bundle may hold its own
    // copy of Zod.
    const def = (validator as { _zod?: { def?: { type?: string; innerType?: z.ZodType; element?: z.ZodType } } })._zod
      ?.def;
    if ((def?.type === 'optional' || def?.type === 'nullable') && def.innerType) {
      visit(def.innerType, value);
    } else if (def?.type === 'array' && def.element && Array.isArray(value)) {
      for (const element of value) visit(def.element, element);
    }
  };
  for (const [name, validator] of Object.entries(fn.input)) {
    visit(validator as z.ZodType, (args as Record<string, unknown>)[name]);
  }
  return refs;
}
