/**
 * The rules of a document table that SQL can check on its own: each field's presence, JSON type,
 * cast to its mapped column (GRADUATION.md § Mapping, read from `mapping.ts`), allowed values and
 * the documents its ref names, down into nested objects. Each rule is one SQL predicate over
 * `data`, and the same rule in JavaScript (`structuralReason`), so that a failure Zod finds in a
 * document is filed under the rule SQL found it by, and a row is never counted twice for one
 * failure.
 */
import type { z } from 'zod';
import type { TableDefinition } from '../schema.js';
import { isUuid } from '../values/id.js';
import { type FieldColumn, mapField, mapTable } from './mapping.js';
import { jsonAt, jsonbLiteral, quoteLiteral } from './quote.js';

/** Why a document does not fit its table's schema. */
export type Reason =
  | 'not_an_object'
  | 'missing'
  | 'null'
  | 'wrong_type'
  | 'not_castable'
  | 'not_allowed'
  | 'dangling_ref'
  | 'unknown_field'
  | 'refinement';

/** A field the rules reach: top-level, or inside an object field (`settings.theme`). */
export interface FieldNode {
  path: string[];
  label: string;
  column: FieldColumn;
  /** The declared keys of a strict object (`z.strictObject`): any other key is refused. */
  strictKeys?: string[];
}

export interface Check {
  /** Its position in the table's list: the SQL passes name failures by it. */
  index: number;
  /** The field (`settings.theme`), `(document)`, or `(unknown fields)` (`settings.(unknown fields)`). */
  label: string;
  path: string[];
  reason: Reason;
  /** The rule in words: `not one of 'draft', 'active'`. */
  rule: string;
  /** The rule's identity: a schema change that adds one may leave rows behind (`convoy dev`). */
  signature: string;
  node?: FieldNode;
  /** `dangling_ref`: the table whose `id` the field names. */
  references?: string;
  /**
   * The SQL predicate, over the JSON values `at(path)` gives. A `dangling_ref` predicate is only the
   * "is a valid id" half; the query adds the lookup (`refId`).
   */
  sql(at: JsonAt): string;
  /** `dangling_ref`: the id as `uuid`, or NULL where the value is no UUID string. */
  refId?(at: JsonAt): string;
}

/** A table of any schema; the mapping reads its shape only. */
export type AnyTable = TableDefinition<any, any, boolean>;

/**
 * SQL expressions of the JSON at a path of the document (`[]`: the document itself): its value,
 * its `jsonb_typeof` (NULL where nothing is there), and its `uuid`, NULL where it is no UUID
 * string (never a failed cast). A scan computes each once per row (`conformance.ts`).
 */
export interface JsonAt {
  value(path: readonly string[]): string;
  type(path: readonly string[]): string;
  uuid(path: readonly string[]): string;
}

/** The expressions over a jsonb expression: `inDocument('data').value(['a', 'b'])` is `data->'a'->'b'`. */
export function inDocument(data: string): JsonAt {
  return {
    value: (path) => jsonAt(data, path),
    type: (path) => typeOf(jsonAt(data, path)),
    uuid: (path) => uuidOf(jsonAt(data, path)),
  };
}

/** `jsonb_typeof` of a jsonb expression. */
export const typeOf = (value: string) => `jsonb_typeof(${value})`;

/** A jsonb expression as `uuid` where it is a UUID string (by the same test as `isUuid`), else NULL. */
export function uuidOf(value: string): string {
  // `#>> '{}'` is a string's text, or another value's JSON text, which no UUID pattern matches.
  return `CASE WHEN (${value} #>> '{}') ~ ${UUID_PATTERN} THEN (${value} #>> '{}')::uuid END`;
}

export const DOCUMENT_LABEL = '(document)';
export const UNKNOWN_FIELDS = '(unknown fields)';

const UUID_PATTERN = quoteLiteral('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$');
const MAX_SAFE_INTEGER = '9007199254740991';
/** How deep the rules follow nested objects; Convoy's documents nest at most 16 levels. */
const MAX_DEPTH = 16;

type JsonKind = 'string' | 'number' | 'boolean' | 'object' | 'array';

/** The JSON type a column takes, or undefined for jsonb that takes any. */
function expectedKind(column: FieldColumn): JsonKind | undefined {
  switch (column.type) {
    case 'text':
    case 'uuid':
      return 'string';
    case 'bigint':
    case 'double precision':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'jsonb':
      return column.jsonbKind;
  }
}

function jsonKindOf(value: unknown): JsonKind | 'null' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value as JsonKind;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const describeValue = (value: unknown) => (typeof value === 'string' ? `'${value}'` : JSON.stringify(value));

interface Def {
  type?: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
}
const defOf = (validator: z.ZodType | undefined): Def =>
  (validator as unknown as { _zod?: { def?: Def } } | undefined)?._zod?.def ?? {};

/** The validator under `.optional()` and `.nullable()`, whose shape nested rules follow. */
function unwrapped(validator: z.ZodType): z.ZodType {
  let inner = validator;
  for (let def = defOf(inner); (def.type === 'optional' || def.type === 'nullable') && def.innerType; ) {
    inner = def.innerType;
    def = defOf(inner);
  }
  return inner;
}

/** Every field the rules reach, parents before their nested fields. */
export function fieldNodes(table: AnyTable): FieldNode[] {
  const nodes: FieldNode[] = [];
  const visit = (path: string[], column: FieldColumn, validator: z.ZodType) => {
    const def = defOf(unwrapped(validator));
    const node: FieldNode = { path, label: path.join('.'), column };
    if (def.type === 'object' && def.shape && defOf(def.catchall).type === 'never') {
      node.strictKeys = Object.keys(def.shape);
    }
    nodes.push(node);
    if (def.type !== 'object' || !def.shape || path.length >= MAX_DEPTH) return;
    for (const [key, inner] of Object.entries(def.shape)) {
      visit([...path, key], mapField(key, inner), inner);
    }
  };
  const columns = mapTable(table as TableDefinition);
  for (const column of columns) visit([column.field], column, table.shape[column.field] as z.ZodType);
  return nodes;
}

/** The rules of `table`, in a fixed order. */
export function tableChecks(table: AnyTable): Check[] {
  const checks: Omit<Check, 'index'>[] = [];
  checks.push({
    label: DOCUMENT_LABEL,
    path: [],
    reason: 'not_an_object',
    rule: 'the document is not a JSON object',
    signature: 'document',
    sql: (at) => `${at.type([])} <> 'object'`,
  });
  const unknownFields = (path: string[], keys: string[], node?: FieldNode) => {
    const label = path.length === 0 ? UNKNOWN_FIELDS : `${path.join('.')}.${UNKNOWN_FIELDS}`;
    checks.push({
      label,
      path,
      reason: 'unknown_field',
      rule: `fields the schema does not declare${path.length === 0 ? '' : ` in ${path.join('.')}`}`,
      signature: `${label}|unknown|${[...keys].sort().join(',')}`,
      ...(node ? { node } : {}),
      // What is left once the declared keys are taken out: anything is a key the schema lacks.
      sql: (at) =>
        `CASE WHEN ${at.type(path)} = 'object' THEN (${at.value(path)} - ARRAY[${keys.map(quoteLiteral).join(', ')}]::text[]) ` +
        `<> '{}'::jsonb ELSE false END`,
    });
  };
  unknownFields([], Object.keys(table.shape));

  for (const node of fieldNodes(table)) {
    const { path, label, column } = node;
    const parent = path.slice(0, -1);
    const add = (reason: Reason, rule: string, signature: string, sql: (at: JsonAt) => string) =>
      checks.push({ label, path, reason, rule, signature: `${label}|${reason}|${signature}`, node, sql });
    if (!column.optional) {
      add(
        'missing',
        'missing (required)',
        '',
        // In an object, `->` gives SQL NULL exactly when the key is absent (JSON null is 'null').
        (at) => `(${at.type(parent)} = 'object' AND ${at.type(path)} IS NULL)`,
      );
    }
    if (!column.nullable) add('null', 'null (not nullable)', '', (at) => `${at.type(path)} = 'null'`);
    const kind = expectedKind(column);
    if (kind !== undefined) {
      add('wrong_type', `not a JSON ${kind}`, kind, (at) => `${at.type(path)} NOT IN (${quoteLiteral(kind)}, 'null')`);
    }
    if (column.type === 'uuid') {
      add(
        'not_castable',
        'not a UUID: will not cast to uuid',
        'uuid',
        (at) => `(${at.type(path)} = 'string' AND ${at.uuid(path)} IS NULL)`,
      );
    }
    if (column.type === 'bigint') {
      add(
        'not_castable',
        'not an integer within ±2^53: will not cast to bigint',
        'bigint',
        (at) =>
          `CASE WHEN ${at.type(path)} = 'number' THEN ` +
          `((${at.value(path)})::numeric % 1 <> 0 OR abs((${at.value(path)})::numeric) > ${MAX_SAFE_INTEGER}) ELSE false END`,
      );
    }
    if (column.allowed !== undefined) {
      const values = column.allowed;
      add('not_allowed', `not one of ${values.map(describeValue).join(', ')}`, JSON.stringify(values), (at) => {
        const value = at.value(path);
        const typed = kind === undefined ? `${at.type(path)} <> 'null'` : `${at.type(path)} = ${quoteLiteral(kind)}`;
        return `(${typed} AND ${value} NOT IN (${values.map(jsonbLiteral).join(', ')}))`;
      });
    }
    // Only a top-level ref becomes a foreign key; a ref nested in an object stays JSON.
    if (column.references !== undefined && path.length === 1) {
      const references = column.references;
      checks.push({
        label,
        path,
        reason: 'dangling_ref',
        rule: `no document of ${references} has this id`,
        signature: `${label}|dangling_ref|${references}`,
        node,
        references,
        sql: (at) => `${at.uuid(path)} IS NOT NULL`,
        refId: (at) => at.uuid(path),
      });
    }
    if (node.strictKeys !== undefined) unknownFields(path, node.strictKeys, node);
  }
  return checks.map((check, index) => ({ ...check, index }));
}

/** The value at `path` in `document`, and whether it is there at all. */
export function valueAt(document: unknown, path: readonly string[]): { present: boolean; value: unknown } {
  let value = document;
  for (const key of path) {
    if (!isObject(value) || !Object.hasOwn(value, key)) return { present: false, value: undefined };
    value = value[key];
  }
  return { present: true, value };
}

/**
 * The rule a field's value breaks, by the same tests as the SQL predicates above (dangling refs
 * and unknown fields aside: SQL and Zod report those themselves), or undefined when its failure
 * is one only Zod sees.
 */
export function structuralReason(node: FieldNode, document: unknown): Reason | undefined {
  const { column } = node;
  const { present, value } = valueAt(document, node.path);
  if (!present) {
    const parent = valueAt(document, node.path.slice(0, -1));
    return parent.present && isObject(parent.value) && !column.optional ? 'missing' : undefined;
  }
  if (value === null) return column.nullable ? undefined : 'null';
  const kind = expectedKind(column);
  if (kind !== undefined && jsonKindOf(value) !== kind) return 'wrong_type';
  if (column.type === 'uuid' && !isUuid(value)) return 'not_castable';
  if (column.type === 'bigint' && !Number.isSafeInteger(value)) return 'not_castable';
  if (column.allowed !== undefined && !column.allowed.includes(value as string | number | boolean)) {
    return 'not_allowed';
  }
  return undefined;
}
