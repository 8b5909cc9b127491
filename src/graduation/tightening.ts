/**
 * What `convoy dev` says when a schema change tightens a table (PRODUCT.md's day 30: a field
 * becomes required, an enum narrows): the rules the new schema adds, counted over the stored
 * documents by the fast pass alone. Rules the change removed or kept are not counted: those
 * documents did not change their standing.
 */
import type { SchemaDefinition } from '../schema.js';
import { type Check, tableChecks } from './checks.js';
import { type FastPassResult, fastPass, inspect, type Read } from './conformance.js';

export interface TighteningNotice {
  table: string;
  documents: number;
  /** Documents that break at least one of the added rules. */
  failingDocuments: number;
  failures: FastPassResult['failures'];
}

/** Per table present in both schemas, the rules `after` has and `before` had not. */
export function addedRules(before: SchemaDefinition, after: SchemaDefinition): Map<string, Check[]> {
  const added = new Map<string, Check[]>();
  for (const [name, table] of Object.entries(after.tables)) {
    const previous = before.tables[name];
    if (table.isUnmanaged || previous === undefined || previous.isUnmanaged) continue;
    const known = new Set(tableChecks(previous).map((check) => check.signature));
    const checks = tableChecks(table).filter((check) => !known.has(check.signature));
    if (checks.length > 0) added.set(name, checks);
  }
  return added;
}

/** The tables whose stored documents break rules the change added, with how many break which. */
export async function tighteningNotices(
  read: Read,
  before: SchemaDefinition,
  after: SchemaDefinition,
): Promise<TighteningNotice[]> {
  const notices: TighteningNotice[] = [];
  for (const [name, checks] of addedRules(before, after)) {
    const table = after.tables[name]!;
    const { state, target } = await inspect(read, name, table, after, checks);
    if (!state.documents) continue;
    const fast = await fastPass(read, target, { samples: false });
    if (fast.failingDocuments > 0) {
      notices.push({
        table: name,
        documents: fast.documents,
        failingDocuments: fast.failingDocuments,
        failures: fast.failures,
      });
    }
  }
  return notices;
}

/** `projects: 12 of 40 documents no longer fit the schema (status: not one of … — 12); see them: …` */
export function describeNotice(notice: TighteningNotice): string {
  const groups = notice.failures.map((failure) => `${failure.field}: ${failure.rule} — ${failure.count}`).join('; ');
  return (
    `${notice.table}: ${notice.failingDocuments} of ${notice.documents} document${notice.documents === 1 ? '' : 's'} ` +
    `no longer fit the schema (${groups}); see them: npx convoy graduate ${notice.table} --check`
  );
}
