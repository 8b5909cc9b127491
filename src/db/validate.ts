/**
 * What a write must pass before it reaches the core: the table's Zod schema, no system fields,
 * Convex's size and depth limits, and (for an unmanaged table) a primary key that names a row.
 */
import type { z } from 'zod';
import type { TableDefinition } from '../schema.js';
import { ConvoyError } from '../values/errors.js';

export type AnyTable = TableDefinition<any, any, boolean>;

/** Convex's published limits, which users moving over expect at least (DESIGN.md § Limits). */
export const DOCUMENT_LIMITS = { maxBytes: 1024 * 1024, maxDepth: 16 } as const;

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

function systemFieldsIn(value: Record<string, unknown>): string[] {
  return Object.keys(value).filter((key) => key === '_id' || key === '_creationTime');
}

function refuseSystemFields(value: Record<string, unknown>): void {
  const system = systemFieldsIn(value);
  if (system.length > 0) {
    throw new ConvoyError('INVALID_ARGS', `${system.join(' and ')} cannot be written: Convoy sets them`);
  }
}

/** How deep `value` nests, counted up to one past the limit (so a hostile depth costs nothing). */
function depthOf(value: unknown, depth = 0): number {
  if (typeof value !== 'object' || value === null || depth > DOCUMENT_LIMITS.maxDepth) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, depth + 1));
    if (deepest > DOCUMENT_LIMITS.maxDepth) break;
  }
  return deepest;
}

function validated(tableName: string, table: AnyTable, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConvoyError('INVALID_ARGS', `a document of ${tableName} must be an object`);
  }
  refuseSystemFields(value as Record<string, unknown>);
  const result = (table.validator as z.ZodType).safeParse(value);
  if (!result.success) {
    throw new ConvoyError('INVALID_ARGS', `invalid document for ${tableName}: ${describeIssues(result.error.issues)}`, {
      issues: result.error.issues,
    });
  }
  return result.data as Record<string, unknown>;
}

/** The document as JSON text, once it passed the table's schema and the size and depth limits. */
export function serialized(tableName: string, table: AnyTable, value: unknown): string {
  const document = validated(tableName, table, value);
  const depth = depthOf(document);
  if (depth > DOCUMENT_LIMITS.maxDepth) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `a document of ${tableName} is nested more than ${DOCUMENT_LIMITS.maxDepth} levels deep (the limit)`,
    );
  }
  const json = JSON.stringify(document);
  const bytes = Buffer.byteLength(json);
  if (bytes > DOCUMENT_LIMITS.maxBytes) {
    throw new ConvoyError(
      'INVALID_ARGS',
      `a document of ${tableName} is ${bytes} bytes; the limit is ${DOCUMENT_LIMITS.maxBytes} bytes (1 MiB)`,
    );
  }
  return json;
}

/** The top-level fields an issue is about (an unknown key names itself). */
function fieldsOfIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys' && issue.path.length === 0) return issue.keys;
  return issue.path.length > 0 ? [String(issue.path[0])] : [];
}

/**
 * A patched document as JSON text, once the whole of it passed the table's schema. A patch writes
 * the whole document, so a field that was already invalid in the stored document (written before
 * the schema tightened, or by SQL) fails a patch of another field: the message says so, names
 * those fields, and points to the report that lists every such document.
 */
export function serializedPatch(
  tableName: string,
  table: AnyTable,
  id: string,
  merged: Record<string, unknown>,
  changed: readonly string[],
): string {
  try {
    return serialized(tableName, table, merged);
  } catch (error) {
    const issues = (error as { data?: { issues?: z.core.$ZodIssue[] } }).data?.issues;
    if (!(error instanceof ConvoyError) || issues === undefined) throw error;
    const stale = issues.filter((issue) => {
      const fields = fieldsOfIssue(issue);
      return fields.length > 0 && fields.every((field) => !changed.includes(field));
    });
    if (stale.length === 0) throw error;
    const fields = [...new Set(stale.flatMap(fieldsOfIssue))];
    const ownIssues = issues.filter((issue) => !stale.includes(issue));
    const check = `npx convoy graduate ${tableName} --check`;
    const already =
      `${fields.join(', ')} ${fields.length === 1 ? 'was' : 'were'} already invalid in the stored document ` +
      `(${describeIssues(stale)})`;
    const message =
      ownIssues.length === 0
        ? `patch of ${tableName} ${id}: the patch is valid, but ${already}, and a patch writes the whole document. ` +
          `Correct ${fields.length === 1 ? 'it' : 'them'} in the same patch; \`${check}\` lists every document that no longer fits the schema`
        : `invalid document for ${tableName}: ${describeIssues(ownIssues)}; besides, ${already}: \`${check}\` lists every such document`;
    throw new ConvoyError('INVALID_ARGS', message, { issues, alreadyInvalid: fields });
  }
}

/** `patch`'s changes: an object without system fields (each field is checked once merged). */
export function changesOf(partial: unknown): Record<string, unknown> {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new ConvoyError('INVALID_ARGS', 'patch: the changes must be an object');
  }
  refuseSystemFields(partial as Record<string, unknown>);
  return partial as Record<string, unknown>;
}

/** An unmanaged table's changed columns, each checked against its field, as JSON for the core. */
export function serializedChanges(tableName: string, table: AnyTable, changes: Record<string, unknown>): string {
  // The given columns only; NULL is written as null.
  const result = table.validator.partial().safeParse(changes);
  if (!result.success) {
    throw new ConvoyError('INVALID_ARGS', `invalid changes for ${tableName}: ${describeIssues(result.error.issues)}`, {
      issues: result.error.issues,
    });
  }
  return JSON.stringify(result.data);
}

/** An unmanaged table's primary key, as JSON for the core. */
export function keyJson(tableName: string, key: unknown): string {
  if (typeof key !== 'string' && !(typeof key === 'number' && Number.isFinite(key))) {
    throw new ConvoyError('INVALID_ARGS', `a row of ${tableName} is named by its primary key: a string or a number`);
  }
  return JSON.stringify(key);
}

export function withoutSystemFields(document: Record<string, unknown>): Record<string, unknown> {
  const { _id, _creationTime, ...fields } = document;
  return fields;
}
