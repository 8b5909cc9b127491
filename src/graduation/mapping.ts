/**
 * The mapping of GRADUATION.md § Mapping: which typed column each field of a table becomes, with
 * the constraint the database then enforces. Read from the table's Zod schema, by Zod's own
 * description of it (`_zod.def`), not `instanceof`: the app's bundle may hold its own copy of Zod.
 *
 * It is the plan both `.relational()` tables and `convoy graduate` start from (issues 12 and 13);
 * nothing here touches the database.
 */
import type { z } from 'zod';
import { type OnDelete, refOnDeleteOf, refTableOf, type TableDefinition } from '../schema.js';

/** Columns every Convoy table keeps for itself; no field's column may take one of these names. */
export const RESERVED_COLUMNS = ['id', 'data', 'created_at', 'updated_at'] as const;

export type ColumnType = 'text' | 'double precision' | 'bigint' | 'boolean' | 'uuid' | 'jsonb';

export interface FieldColumn {
  field: string;
  column: string;
  type: ColumnType;
  /** Required (and not nullable): the column is `NOT NULL`. */
  notNull: boolean;
  /** The field may be left out: SQL NULL means "missing". */
  optional: boolean;
  /** The field may hold `null`. Optional and nullable together map to `jsonb`, where SQL NULL is
   * missing and JSON `null` is null. */
  nullable: boolean;
  /** The values an enum or literal allows: a `CHECK (col IN (...))`, which can change online. */
  allowed?: Array<string | number | boolean>;
  /** `defineRef(table)`: a foreign key to that table's `id`, with an index on the column. */
  references?: string;
  /** `defineRef(table, { onDelete })`: what deleting the referenced row does. */
  onDelete?: OnDelete;
  /** For `jsonb` columns of one JSON kind: `CHECK (jsonb_typeof(col) = …)`. */
  jsonbKind?: 'object' | 'array';
  /** Where the name came from: the field's snake_case, a rename around a reserved column, or the
   * schema's own choice. */
  named: 'snake_case' | 'renamed' | 'chosen';
  /** Rules Zod checks and SQL cannot (formats, lengths, refinements): they stay in Zod. */
  zodOnly: string[];
}

interface Def {
  type?: string;
  innerType?: z.ZodType;
  format?: string;
  checks?: Array<{ _zod?: { def?: { check?: string; format?: string } } }>;
  values?: unknown[];
  entries?: Record<string, string | number>;
}

const defOf = (validator: z.ZodType): Def => (validator as unknown as { _zod?: { def?: Def } })._zod?.def ?? {};

/** `userId` → `user_id`, `createdAt` → `created_at`, `HTMLTitle` → `html_title`. */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * The column of every field of `table`, in the order the fields are declared. `chosen` names
 * (the schema's overrides) win; a snake_case name that would take one of Convoy's own columns
 * (`createdAt` → `created_at`) becomes `<name>_field` (`created_at_field`); two fields that would
 * share a column are refused.
 */
export function mapTable(table: TableDefinition, chosen: Record<string, string> = {}): FieldColumn[] {
  const columns: FieldColumn[] = [];
  const taken = new Map<string, string>();
  for (const [field, validator] of Object.entries(table.shape)) {
    const mapped = mapField(field, validator as z.ZodType);
    const wanted = chosen[field];
    if (wanted !== undefined) {
      if ((RESERVED_COLUMNS as readonly string[]).includes(wanted)) {
        throw new Error(`column ${wanted} for field ${field}: Convoy keeps that column for itself`);
      }
      mapped.column = wanted;
      mapped.named = 'chosen';
    } else if ((RESERVED_COLUMNS as readonly string[]).includes(mapped.column)) {
      mapped.column = `${mapped.column}_field`;
      mapped.named = 'renamed';
    }
    const other = taken.get(mapped.column);
    if (other !== undefined) {
      throw new Error(
        `fields ${other} and ${field} would both be column ${mapped.column}: choose another name for one of them`,
      );
    }
    taken.set(mapped.column, field);
    columns.push(mapped);
  }
  return columns;
}

/** One field's column, before the table's names are settled. */
export function mapField(field: string, validator: z.ZodType): FieldColumn {
  let optional = false;
  let nullable = false;
  let inner = validator;
  // Optional and nullable wrap the value's own validator, in either order.
  for (;;) {
    const def = defOf(inner);
    if (def.type === 'optional' && def.innerType) optional = true;
    else if (def.type === 'nullable' && def.innerType) nullable = true;
    else break;
    inner = def.innerType;
  }
  const base = {
    field,
    column: snakeCase(field),
    notNull: !optional && !nullable,
    optional,
    nullable,
    named: 'snake_case' as const,
  };
  const def = defOf(inner);
  const zodOnly = (def.checks ?? [])
    .map((check) => check._zod?.def)
    .filter((check) => check && !(check.check === 'number_format' && check.format === 'safeint'))
    .map((check) => (check?.format ? `${check.check} ${check.format}` : String(check?.check)));
  const column = (type: ColumnType, extra: Partial<FieldColumn> = {}): FieldColumn => ({
    ...base,
    type,
    zodOnly,
    ...extra,
  });
  // "Missing" and "null" are two different things only a jsonb column can keep apart.
  if (optional && nullable) return column('jsonb');
  const table = refTableOf(inner);
  if (table !== undefined) {
    const onDelete = refOnDeleteOf(inner);
    if (onDelete === 'setNull' && !optional) {
      throw new Error(
        `field ${field}: onDelete "setNull" leaves the field empty, so the field must be optional (defineRef(...).optional())`,
      );
    }
    return column('uuid', { references: table, onDelete });
  }
  switch (def.type) {
    case 'string':
      return column('text');
    case 'number': {
      const integer =
        def.format === 'safeint' ||
        (def.checks ?? []).some(
          (check) => check._zod?.def?.check === 'number_format' && check._zod.def.format === 'safeint',
        );
      return column(integer ? 'bigint' : 'double precision');
    }
    case 'boolean':
      return column('boolean');
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      return column(values.every((value) => typeof value === 'string') ? 'text' : 'jsonb', { allowed: values });
    }
    case 'literal': {
      const values = (def.values ?? []) as Array<string | number | boolean>;
      const type: ColumnType = values.every((value) => typeof value === 'string')
        ? 'text'
        : values.every((value) => typeof value === 'boolean')
          ? 'boolean'
          : values.every((value) => typeof value === 'number')
            ? 'double precision'
            : 'jsonb';
      return column(type, { allowed: values });
    }
    case 'object':
      return column('jsonb', { jsonbKind: 'object' });
    case 'array':
      return column('jsonb', { jsonbKind: 'array' });
    default:
      // Unions, records, passthrough, anything else: JSON as it is.
      return column('jsonb');
  }
}
