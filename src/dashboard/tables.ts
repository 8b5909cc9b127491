/**
 * The Tables view's list: each table of the schema with its stage as the database says it (the
 * core's bookkeeping in the `convoy` schema), its row count, its indexes and its fields' JSON
 * Schema, read in one snapshot.
 */
import { quoteIdent } from '../graduation/quote.js';
import type { SchemaDefinition, TableDefinition } from '../schema.js';
import type { ToolStatement } from '../server/native.js';
import { type JsonSchema, jsonSchemaOf } from './jsonSchema.js';

export type Read = (statements: ToolStatement[]) => Promise<Record<string, unknown>[][]>;

export type Stage = 'documents' | 'relational' | 'graduating' | 'unmanaged';

export interface TableInfo {
  name: string;
  stage: Stage;
  /** What the schema declares; a difference is the user's to resolve (`convoy graduate`). */
  declared: Stage;
  /** Counted up to `COUNT_LIMIT`; `rowsAtLeast` when there are more. */
  rows: number | null;
  rowsAtLeast: boolean;
  indexes: Array<{ name: string; fields: string[] }>;
  fields: JsonSchema;
}

/** A count stops here, so that the list answers at once whatever the tables hold. */
export const COUNT_LIMIT = 100_000;

function declaredStage(table: TableDefinition): Stage {
  if (table.isUnmanaged) return 'unmanaged';
  return table.storage === 'relational' ? 'relational' : 'documents';
}

export async function listTables(read: Read, schema: SchemaDefinition): Promise<TableInfo[]> {
  const names = Object.keys(schema.tables);
  const [[present] = [], ...found] = await read([
    [
      `SELECT to_regclass('convoy.tables') IS NOT NULL AS tables,
              to_regclass('convoy.graduations') IS NOT NULL AS graduations`,
      [],
    ],
    ...names.map((name): ToolStatement => ['SELECT to_regclass($1) IS NOT NULL AS present', [quoteIdent(name)]]),
  ]);
  const existing = new Set(names.filter((_, position) => found[position]?.[0]?.present === true));
  const statements: ToolStatement[] = [
    [
      present?.tables
        ? 'SELECT name, stage FROM convoy.tables'
        : 'SELECT NULL::text AS name, NULL::text AS stage WHERE false',
      [],
    ],
    [
      present?.graduations
        ? 'SELECT table_name FROM convoy.graduations'
        : 'SELECT NULL::text AS table_name WHERE false',
      [],
    ],
    ...names
      .filter((name) => existing.has(name))
      .map(
        (name): ToolStatement => [
          `SELECT count(*)::int AS rows FROM (SELECT 1 FROM ${quoteIdent(name)} LIMIT ${COUNT_LIMIT + 1}) counted`,
          [],
        ],
      ),
  ];
  const [stages = [], graduations = [], ...counts] = await read(statements);
  const stageOf = new Map(stages.map((row) => [String(row.name), String(row.stage)]));
  const graduating = new Set(graduations.map((row) => String(row.table_name)));
  let counted = 0;
  return names.map((name) => {
    const table = schema.tables[name] as TableDefinition;
    const declared = declaredStage(table);
    const rows = existing.has(name) ? Number(counts[counted++]?.[0]?.rows ?? 0) : null;
    const recorded = stageOf.get(name);
    const stage: Stage = table.isUnmanaged
      ? 'unmanaged'
      : graduating.has(name)
        ? 'graduating'
        : recorded === 'relational' || recorded === 'graduating'
          ? recorded
          : recorded === undefined
            ? declared
            : 'documents';
    return {
      name,
      stage,
      declared,
      rows: rows === null ? null : Math.min(rows, COUNT_LIMIT),
      rowsAtLeast: rows !== null && rows > COUNT_LIMIT,
      indexes: table.indexes.map((index) => ({ name: index.name, fields: [...index.fields] })),
      fields: jsonSchemaOf(table.validator),
    };
  });
}
