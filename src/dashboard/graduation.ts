/**
 * The Graduation view: a table's conformance report on demand (the code of
 * `convoy graduate --check`), where each graduation under way stands (the core's bookkeeping,
 * which the process running it updates batch by batch), and the commands of GRADUATION.md that
 * apply next. The dashboard only reads: a graduation is run from the terminal.
 */
import { type ConformanceReport, checkConformance, inspect } from '../graduation/conformance.js';
import type { SchemaDefinition, TableDefinition } from '../schema.js';
import { ConvoyError } from '../values/errors.js';
import type { Read } from './tables.js';

export interface GraduationProgress {
  table: string;
  step: string;
  rowsDone: number;
  rowsTotal: number;
  batchSize: number;
  startedAt: string;
  updatedAt: string;
  /** Rows per second since it started. */
  rate: number;
}

export async function graduationsUnderWay(read: Read): Promise<GraduationProgress[]> {
  const [[present] = []] = await read([["SELECT to_regclass('convoy.graduations') IS NOT NULL AS present", []]]);
  if (!present?.present) return [];
  const [rows = []] = await read([
    [
      `SELECT table_name, step, rows_done::float8 AS rows_done, rows_total::float8 AS rows_total, batch_size,
              started_at::text AS started_at, updated_at::text AS updated_at,
              extract(epoch FROM (updated_at - started_at))::float8 AS seconds
       FROM convoy.graduations ORDER BY table_name`,
      [],
    ],
  ]);
  return rows.map((row) => {
    const seconds = Number(row.seconds);
    return {
      table: String(row.table_name),
      step: String(row.step),
      rowsDone: Number(row.rows_done),
      rowsTotal: Number(row.rows_total),
      batchSize: Number(row.batch_size),
      startedAt: String(row.started_at),
      updatedAt: String(row.updated_at),
      rate: seconds > 0 ? Number(row.rows_done) / seconds : 0,
    };
  });
}

/** The report `convoy graduate <table> --check --json` prints. */
export async function conformanceReport(
  read: Read,
  schema: SchemaDefinition,
  name: string,
): Promise<ConformanceReport> {
  const table = Object.hasOwn(schema.tables, name) ? (schema.tables[name] as TableDefinition) : undefined;
  if (!table) throw new ConvoyError('NOT_FOUND', `the schema has no table ${JSON.stringify(name)}`);
  if (table.isUnmanaged) {
    throw new ConvoyError('INVALID_ARGS', `${name} is declared .unmanaged(): Convoy has nothing to graduate`);
  }
  const { state, target } = await inspect(read, name, table, schema);
  if (!state.exists) throw new ConvoyError('NOT_FOUND', `the database has no table ${name} yet`);
  if (!state.documents) {
    throw new ConvoyError('INVALID_ARGS', `${name} is not a table of documents: it has graduated already`);
  }
  return checkConformance(read, target);
}
