/**
 * The conformance report of `convoy graduate <table> --check` (GRADUATION.md § The conformance
 * report): every document of a table checked against the table's current Zod schema and its refs.
 *
 * Two passes. The fast pass is one SQL scan over one snapshot: each rule of `checks.ts` counted
 * with its first ids. The exact pass reads every document in keyset batches (`ORDER BY id LIMIT n`
 * after the last id), runs the same SQL rules on each row and the table's Zod validator on its
 * document, and files each failure under one group per field and reason: a row that SQL and Zod
 * both find missing `name` counts once. The report's counts are the exact pass's; the fast
 * pass's stand beside them (and are all `convoy dev` runs when a schema change tightens a table).
 */
import type { z } from 'zod';
import type { OnDelete, SchemaDefinition, TableDefinition } from '../schema.js';
import type { ToolStatement } from '../server/native.js';
import {
  type AnyTable,
  type Check,
  DOCUMENT_LABEL,
  type FieldNode,
  fieldNodes,
  type JsonAt,
  type Reason,
  structuralReason,
  tableChecks,
  typeOf,
  UNKNOWN_FIELDS,
  uuidOf,
} from './checks.js';
import { type Fix, fixFor } from './fixes.js';
import { mapTable } from './mapping.js';
import { jsonAt, quoteIdent } from './quote.js';

/** Runs read-only statements in one snapshot; each statement's rows. */
export type Read = (statements: ToolStatement[]) => Promise<Record<string, unknown>[][]>;

export const SAMPLE_IDS = 5;

/** One line of the report: the rows of the table that break one rule of one field. */
export interface FailureGroup {
  /** The field (`settings.theme`), `(document)`, or `(unknown fields)`. */
  field: string;
  reason: Reason;
  /** The rule in words (for refinements, Zod's message). */
  rule: string;
  count: number;
  /** The first ids, in id order. */
  sampleIds: string[];
  /** Which pass found these rows: SQL, Zod, or both (each row counted once). */
  foundBy: Array<'sql' | 'zod'>;
  fix: Fix;
}

export interface FastPassResult {
  ms: number;
  documents: number;
  /** Rows that break at least one rule SQL checks. */
  failingDocuments: number;
  failures: Array<Pick<FailureGroup, 'field' | 'reason' | 'rule' | 'count' | 'sampleIds'>>;
  /** Per top-level ref: how many distinct documents of the referenced table the rows name today. */
  referenced: Record<string, number>;
}

/** A delete that works today and will be refused once the foreign keys exist. */
export interface ParentDeleteWarning {
  /** The table whose deletes will be refused. */
  parent: string;
  /** The table and field whose ref becomes the foreign key. */
  child: string;
  field: string;
  column: string;
  /** How many documents of `parent` the rows of `child` name today (known when `child` is the checked table). */
  referenced?: number;
  /** The ref's `onDelete`: only `restrict` (the default) refuses the delete. */
  onDelete: OnDelete;
  message: string;
}

export interface ConformanceReport {
  table: string;
  conforms: boolean;
  documents: number;
  failingDocuments: number;
  failures: FailureGroup[];
  fast: FastPassResult;
  exact: { ms: number; documents: number; batches: number };
  warnings: ParentDeleteWarning[];
  /** Rules only Zod checks (formats, lengths, refinements), per field: the exact pass covers them. */
  zodOnly: Array<{ field: string; rules: string[] }>;
  /** What the report could not check, and why. */
  notes: string[];
}

/** Where a table stands in the database before it is checked. */
export interface TableState {
  exists: boolean;
  /** It has `id uuid` and `data jsonb`: a table of documents. */
  documents: boolean;
  columns: Record<string, string>;
}

/** A table and its schema, with the database's view of the tables its refs name. */
export interface Target {
  name: string;
  table: AnyTable;
  schema: SchemaDefinition;
  checks: Check[];
  /** How each `dangling_ref` check finds its parents. */
  parents: Map<number, 'join' | 'no_table'>;
  notes: string[];
}

const columnsStatement = (table: string): ToolStatement => [
  `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
   WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
  [quoteIdent(table)],
];

function stateOf(rows: Record<string, unknown>[]): TableState {
  const columns = Object.fromEntries(rows.map((row) => [String(row.name), String(row.type)]));
  return { exists: rows.length > 0, documents: columns.id === 'uuid' && columns.data === 'jsonb', columns };
}

/** The table's state and the tables its refs name, in one snapshot. */
export async function inspect(
  read: Read,
  name: string,
  table: AnyTable,
  schema: SchemaDefinition,
  checks: Check[] = tableChecks(table),
): Promise<{ state: TableState; target: Target }> {
  const parentsOf = [...new Set(checks.flatMap((check) => (check.references ? [check.references] : [])))];
  const results = await read([columnsStatement(name), ...parentsOf.map(columnsStatement)]);
  const state = stateOf(results[0] ?? []);
  const parents = new Map<number, 'join' | 'no_table'>();
  const notes: string[] = [];
  const kept: Check[] = [];
  for (const check of checks) {
    if (check.references === undefined) {
      kept.push(check);
      continue;
    }
    const parent = stateOf(results[1 + parentsOf.indexOf(check.references)] ?? []);
    if (!parent.exists) {
      parents.set(check.index, 'no_table');
      kept.push({ ...check, rule: `the table ${check.references} does not exist, so no document of it has this id` });
    } else if (parent.columns.id === 'uuid') {
      parents.set(check.index, 'join');
      kept.push(check);
    } else {
      notes.push(
        `${check.label}: ${check.references}.id is ${parent.columns.id ?? 'missing'}, not uuid; its refs were not looked up`,
      );
    }
  }
  return { state, target: { name, table, schema, checks: kept, parents, notes } };
}

/**
 * The rows of `source` (the table, or one keyset batch of it) with each check's verdict: the
 * boolean column `f<position>` per check of `checks`, and per dangling-ref lookup the parent's id
 * `parent_<index>`. Each JSON value is taken out of `data` once per row (`j<n>`) and each
 * predicate evaluated once: `OFFSET 0` keeps Postgres from folding a subquery into the query
 * around it, which would evaluate every expression once per use.
 */
function verdicts(target: Target, checks: Check[], source: string, withData: boolean): string {
  // Each path's value (j<n>), type (k<n>) and uuid (u<n>), as the predicates ask for them.
  const paths = new Map<string, { n: number; type: boolean; uuid: boolean }>();
  const use = (path: readonly string[], what?: 'type' | 'uuid') => {
    const key = JSON.stringify(path);
    let entry = paths.get(key);
    if (!entry) {
      entry = { n: paths.size, type: false, uuid: false };
      paths.set(key, entry);
    }
    if (what) entry[what] = true;
    return entry.n;
  };
  const at: JsonAt = {
    value: (path) => `v.j${use(path)}`,
    type: (path) => `v.k${use(path, 'type')}`,
    uuid: (path) => `v.u${use(path, 'uuid')}`,
  };
  const joins: string[] = [];
  const columns = checks.map((check, position) => {
    const valid = check.sql(at);
    if (check.refId === undefined || target.parents.get(check.index) === 'no_table') return `${valid} AS f${position}`;
    const alias = `parent_${check.index}`;
    joins.push(`LEFT JOIN ${quoteIdent(check.references!)} ${alias} ON ${alias}.id = ${check.refId(at)}`);
    return `(${valid} AND ${alias}.id IS NULL) AS f${position}, ${alias}.id AS ${alias}`;
  });
  const entries = [...paths].map(([key, entry]) => ({ path: JSON.parse(key) as string[], ...entry }));
  const data = withData ? ['t.data'] : [];
  const values = entries.map(({ path, n }) => `${jsonAt('t.data', path)} AS j${n}`);
  const derived = entries.flatMap(({ n, type, uuid }) => [
    ...(type ? [`${typeOf(`e.j${n}`)} AS k${n}`] : []),
    ...(uuid ? [`${uuidOf(`e.j${n}`)} AS u${n}`] : []),
  ]);
  const extracted = `SELECT ${['t.id', ...data, ...values].join(', ')} FROM ${source} t OFFSET 0`;
  const typed = `SELECT ${['e.*', ...derived].join(', ')} FROM (${extracted}) e OFFSET 0`;
  const outer = ['v.id', ...(withData ? ['v.data'] : []), ...columns].join(',\n  ');
  return `SELECT ${outer}\nFROM (${typed}) v\n${joins.join('\n')}`;
}

/**
 * The fast pass: one scan of the table in one snapshot, every rule counted. With `samples`, the
 * first ids of each rule's rows too (and, per ref, how many parents the rows name).
 */
export async function fastPass(
  read: Read,
  target: Target,
  { samples = true }: { samples?: boolean } = {},
): Promise<FastPassResult> {
  const started = performance.now();
  const { checks } = target;
  const flags = checks.map((_, position) => `f${position}`);
  const columns = [
    'count(*) AS documents',
    `count(*) FILTER (WHERE ${flags.length > 0 ? flags.join(' OR ') : 'false'}) AS failing`,
  ];
  for (const flag of flags) {
    columns.push(`count(*) FILTER (WHERE ${flag}) AS c${flag}`);
    if (samples)
      columns.push(`to_jsonb((array_agg(id ORDER BY id) FILTER (WHERE ${flag}))[1:${SAMPLE_IDS}]) AS s${flag}`);
  }
  const refs = checks.filter((check) => check.refId !== undefined && target.parents.get(check.index) === 'join');
  if (samples) for (const check of refs) columns.push(`count(DISTINCT parent_${check.index}) AS r${check.index}`);
  const statement =
    `SELECT ${columns.join(',\n  ')}\n` +
    `FROM (${verdicts(target, checks, quoteIdent(target.name), false)}\nOFFSET 0) f`;
  const [rows] = await read([[statement, []]]);
  const row = rows?.[0] ?? {};
  const failures: FastPassResult['failures'] = [];
  checks.forEach((check, position) => {
    const count = Number(row[`cf${position}`] ?? 0);
    if (count === 0) return;
    failures.push({
      field: check.label,
      reason: check.reason,
      rule: check.rule,
      count,
      sampleIds: (row[`sf${position}`] as string[] | null) ?? [],
    });
  });
  const referenced: Record<string, number> = {};
  for (const check of refs) {
    if (row[`r${check.index}`] !== undefined) referenced[check.label] = Number(row[`r${check.index}`]);
  }
  return {
    ms: Math.round(performance.now() - started),
    documents: Number(row.documents ?? 0),
    failingDocuments: Number(row.failing ?? 0),
    failures,
    referenced,
  };
}

interface Group extends Omit<FailureGroup, 'foundBy' | 'fix'> {
  order: number;
  check?: Check;
  node?: FieldNode;
  foundBy: Set<'sql' | 'zod'>;
  /** `unknown_field`: the undeclared keys met, with how many rows had each. */
  keys?: Map<string, number>;
}

interface Issue {
  path: PropertyKey[];
  code?: string;
  message: string;
  keys?: string[];
}

const REASON_ORDER: Reason[] = [
  'not_an_object',
  'missing',
  'null',
  'wrong_type',
  'not_castable',
  'not_allowed',
  'dangling_ref',
  'unknown_field',
  'refinement',
];

/** Files each Zod issue of a document under a group: a structural rule, or a refinement. */
class Classifier {
  private readonly nodes = new Map<string, FieldNode>();
  private readonly checks = new Map<string, Check>();
  private readonly order = new Map<string, number>();

  constructor(target: Target) {
    fieldNodes(target.table).forEach((node, position) => {
      this.nodes.set(JSON.stringify(node.path), node);
      this.order.set(node.label, position + 1);
    });
    for (const check of target.checks) this.checks.set(groupKey(check.label, check.reason), check);
  }

  checkFor(label: string, reason: Reason): Check | undefined {
    return this.checks.get(groupKey(label, reason));
  }

  orderOf(label: string, reason: Reason): number {
    const field = label === DOCUMENT_LABEL ? 0 : label === UNKNOWN_FIELDS ? 1e6 : (this.order.get(label) ?? 1e5);
    return field * 100 + REASON_ORDER.indexOf(reason);
  }

  /** The group of one issue: its key, and what a new group of that key holds. */
  classify(issue: Issue, document: unknown): { label: string; reason: Reason; rule?: string; node?: FieldNode } {
    const path = issue.path.map(String);
    if (path.length === 0) {
      if (issue.code === 'unrecognized_keys') return { label: UNKNOWN_FIELDS, reason: 'unknown_field' };
      if (issue.code === 'invalid_type') return { label: DOCUMENT_LABEL, reason: 'not_an_object' };
      return { label: DOCUMENT_LABEL, reason: 'refinement', rule: issue.message };
    }
    // The deepest field the rules know on the issue's path; array positions end the walk.
    let node: FieldNode | undefined;
    let depth = 0;
    for (let length = 1; length <= path.length && typeof issue.path[length - 1] === 'string'; length++) {
      const found = this.nodes.get(JSON.stringify(path.slice(0, length)));
      if (found) {
        node = found;
        depth = length;
      }
    }
    if (node === undefined) return { label: path[0]!, reason: 'refinement', rule: issue.message };
    if (issue.code === 'unrecognized_keys' && depth === path.length && node.strictKeys) {
      return { label: `${node.label}.${UNKNOWN_FIELDS}`, reason: 'unknown_field', node };
    }
    const reason = structuralReason(node, document);
    if (reason !== undefined) return { label: node.label, reason, node };
    const rest = issue.path
      .slice(depth)
      .map((key) => (typeof key === 'number' ? '[]' : `.${String(key)}`))
      .join('');
    return { label: `${node.label}${rest}`, reason: 'refinement', rule: issue.message, node };
  }
}

const groupKey = (label: string, reason: Reason, rule = '') =>
  `${label}\u0000${reason}${reason === 'refinement' ? `\u0000${rule}` : ''}`;

export interface ExactPassOptions {
  /** Documents per batch (default 5,000). */
  batchSize?: number;
  /** Called after each batch with the documents checked so far. */
  onProgress?: (checked: number) => void;
}

/** The exact pass: every document, in keyset batches, by the SQL rules and the Zod validator. */
export async function exactPass(read: Read, target: Target, options: ExactPassOptions = {}) {
  const started = performance.now();
  const batchSize = options.batchSize ?? 5000;
  // Zod sees every rule SQL checks but one: whether a ref's document exists. The batches ask
  // Postgres that; `structuralReason` files each Zod issue under the rule SQL would.
  const lookups = target.checks.filter((check) => check.reason === 'dangling_ref');
  const batchSql = (after: boolean) => {
    const source =
      `(SELECT id, data FROM ${quoteIdent(target.name)}${after ? ' WHERE id > $1::uuid' : ''} ` +
      `ORDER BY id LIMIT ${batchSize})`;
    return `${verdicts(target, lookups, source, true)}\nORDER BY v.id`;
  };
  const fetchBatch = async (after: string | undefined) => {
    const [rows] = await read([[batchSql(after !== undefined), after === undefined ? [] : [after]]]);
    return (rows ?? []) as Array<Record<string, unknown> & { id: string; data: unknown }>;
  };

  const classifier = new Classifier(target);
  const validator = target.table.validator as z.ZodType;
  const groups = new Map<string, Group>();
  let documents = 0;
  let failingDocuments = 0;
  let batches = 0;

  const groupOf = (label: string, reason: Reason, rule: string | undefined, node: FieldNode | undefined) => {
    const key = groupKey(label, reason, rule);
    let group = groups.get(key);
    if (!group) {
      const check = reason === 'refinement' ? undefined : classifier.checkFor(label, reason);
      group = {
        field: label,
        reason,
        rule: rule ?? check?.rule ?? reason.replaceAll('_', ' '),
        count: 0,
        sampleIds: [],
        order: classifier.orderOf(node?.label ?? label, reason),
        foundBy: new Set(),
        ...(check ? { check } : {}),
        ...(node ? { node } : {}),
      };
      groups.set(key, group);
    }
    return { key, group };
  };

  let next = fetchBatch(undefined);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    batches++;
    // Read the next batch while this one is validated.
    next = rows.length === batchSize ? fetchBatch(rows.at(-1)!.id) : Promise.resolve([]);
    next.catch(() => {});
    for (const row of rows) {
      const seen = new Set<string>();
      for (const [position, check] of lookups.entries()) {
        if (row[`f${position}`] !== true) continue;
        const { key, group } = groupOf(check.label, check.reason, undefined, check.node);
        group.foundBy.add('sql');
        if (!seen.has(key)) {
          seen.add(key);
          group.count++;
          if (group.sampleIds.length < SAMPLE_IDS) group.sampleIds.push(row.id);
        }
      }
      const result = validator.safeParse(row.data);
      if (!result.success) {
        for (const issue of result.error.issues as Issue[]) {
          const found = classifier.classify(issue, row.data);
          const { key, group } = groupOf(found.label, found.reason, found.rule, found.node);
          group.foundBy.add('zod');
          if (issue.code === 'unrecognized_keys') {
            group.keys ??= new Map();
            for (const name of issue.keys ?? []) group.keys.set(name, (group.keys.get(name) ?? 0) + 1);
          }
          if (!seen.has(key)) {
            seen.add(key);
            group.count++;
            if (group.sampleIds.length < SAMPLE_IDS) group.sampleIds.push(row.id);
          }
        }
      }
      if (seen.size > 0) failingDocuments++;
    }
    documents += rows.length;
    options.onProgress?.(documents);
  }

  const failures = [...groups.values()]
    .sort((a, b) => a.order - b.order || a.field.localeCompare(b.field) || a.rule.localeCompare(b.rule))
    .map((group): FailureGroup => {
      const keys = group.keys ? [...group.keys].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) : undefined;
      const rule = keys ? `${group.rule}: ${keys.map(([name, count]) => `${name} (${count})`).join(', ')}` : group.rule;
      return {
        field: group.field,
        reason: group.reason,
        rule,
        count: group.count,
        sampleIds: group.sampleIds,
        foundBy: (['sql', 'zod'] as const).filter((pass) => group.foundBy.has(pass)),
        fix: fixFor(target.name, {
          field: group.field,
          reason: group.reason,
          rule: group.rule,
          ...(group.check ? { check: group.check } : {}),
          ...(group.node ? { node: group.node } : {}),
          ...(keys ? { keys: keys.map(([name]) => name) } : {}),
        }),
      };
    });
  return {
    ms: Math.round(performance.now() - started),
    documents,
    failingDocuments,
    batches,
    failures,
  };
}

/** How the deletes of referenced parents change once the foreign keys exist. */
export function parentDeleteWarnings(
  name: string,
  schema: SchemaDefinition,
  referenced: Record<string, number> = {},
): ParentDeleteWarning[] {
  const warnings: ParentDeleteWarning[] = [];
  for (const [child, table] of Object.entries(schema.tables)) {
    if (table.isUnmanaged) continue;
    for (const column of mapTable(table as TableDefinition)) {
      const parent = column.references;
      if (parent === undefined || (child !== name && parent !== name)) continue;
      const onDelete = column.onDelete ?? 'restrict';
      const count = child === name ? referenced[column.field] : undefined;
      const which =
        count === undefined
          ? `a document of ${parent} that ${child}.${column.field} names`
          : `any of the ${count.toLocaleString('en-US')} document${count === 1 ? '' : 's'} of ${parent} that ${child}.${column.field} names today`;
      const when = child === name ? `once ${name} is graduated` : `once ${child} is graduated too`;
      const constraint = `FOREIGN KEY ${child}(${column.column}) REFERENCES ${parent}(id)`;
      const message =
        onDelete === 'restrict'
          ? `${when}, a delete of ${which} is refused with CONFLICT (${constraint}); delete or repoint the ${child} documents first, or give the ref an onDelete`
          : onDelete === 'cascade'
            ? `${when}, a delete of ${which} deletes the ${child} documents that name it too (${constraint} ON DELETE CASCADE)`
            : `${when}, a delete of ${which} empties ${child}.${column.field} where it is named (${constraint} ON DELETE SET NULL)`;
      warnings.push({
        parent,
        child,
        field: column.field,
        column: column.column,
        ...(count === undefined ? {} : { referenced: count }),
        onDelete,
        message,
      });
    }
  }
  return warnings;
}

export interface ConformanceOptions extends ExactPassOptions {
  /** Called once the fast pass has counted, before the exact pass starts. */
  onFastPass?: (fast: FastPassResult) => void;
}

/** Both passes over a table of documents (see `inspect` for the table's state first). */
export async function checkConformance(
  read: Read,
  target: Target,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const fast = await fastPass(read, target);
  options.onFastPass?.(fast);
  const exact = await exactPass(read, target, options);
  // Each row is counted once, by the exact pass; the fast pass says which groups SQL saw too.
  const seenBySql = new Set(fast.failures.map((failure) => `${failure.field}\u0000${failure.reason}`));
  for (const group of exact.failures) {
    if (seenBySql.has(`${group.field}\u0000${group.reason}`) && !group.foundBy.includes('sql')) {
      group.foundBy = ['sql', ...group.foundBy];
    }
  }
  const zodOnly = fieldNodes(target.table)
    .filter((node) => node.column.zodOnly.length > 0)
    .map((node) => ({ field: node.label, rules: node.column.zodOnly }));
  return {
    table: target.name,
    conforms: exact.failingDocuments === 0,
    documents: exact.documents,
    failingDocuments: exact.failingDocuments,
    failures: exact.failures,
    fast,
    exact: { ms: exact.ms, documents: exact.documents, batches: exact.batches },
    warnings: parentDeleteWarnings(target.name, target.schema, fast.referenced),
    zodOnly,
    notes: target.notes,
  };
}
