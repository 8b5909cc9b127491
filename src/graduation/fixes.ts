/**
 * The fix the conformance report offers for each group of failing rows: an SQL `UPDATE` to run
 * where SQL can repair the value, a default to fill in where a value is missing, or a mutation to
 * write where only the app knows the right value (a ref to repoint, an email to correct).
 */
import { type Check, type FieldNode, inDocument, type Reason } from './checks.js';
import { jsonAt, jsonbLiteral, pathArray, quoteIdent, quoteLiteral } from './quote.js';

export interface Fix {
  kind: 'update' | 'default' | 'mutation';
  /** What to do, in a sentence. */
  text: string;
  /** The statement to run (`update`, `default`), or the one that lists the rows (`mutation`). */
  sql?: string;
}

export interface FixableGroup {
  field: string;
  reason: Reason;
  rule: string;
  check?: Check;
  node?: FieldNode;
  /** `unknown_field`: the undeclared keys the documents hold. */
  keys?: string[];
}

/** A value of the field's type to fill in, or undefined where no value would be a guess. */
function defaultOf(node: FieldNode): unknown {
  const { column } = node;
  if (column.allowed !== undefined) return column.allowed[0];
  switch (column.type) {
    case 'text':
      return '';
    case 'double precision':
    case 'bigint':
      return 0;
    case 'boolean':
      return false;
    case 'jsonb':
      return column.jsonbKind === 'array' ? [] : column.jsonbKind === 'object' ? {} : undefined;
    default:
      return undefined;
  }
}

/** The predicate of a check over the plain column `data`, as an `UPDATE` or a `SELECT` takes it. */
function where(check: Check): string {
  const at = inDocument('data');
  if (check.references === undefined) return check.sql(at);
  // Compared as text (a uuid's text is lowercase), so that no value is ever cast.
  const id = `lower(${jsonAt('data', check.path)} #>> '{}')`;
  return `${check.sql(at)} AND NOT EXISTS (SELECT 1 FROM ${quoteIdent(check.references)} parent WHERE parent.id::text = ${id})`;
}

const update = (table: string, set: string, condition: string) =>
  `UPDATE ${quoteIdent(table)} SET data = ${set}, updated_at = now() WHERE ${condition};`;

const listing = (table: string, path: string[], condition: string) =>
  `SELECT id, ${path.length > 0 ? jsonAt('data', path) : 'data'} AS value FROM ${quoteIdent(table)} WHERE ${condition} ORDER BY id;`;

export function fixFor(table: string, group: FixableGroup): Fix {
  const { check, node } = group;
  const path = node?.path ?? [];
  const value = jsonAt('data', path);
  const field = group.field;
  const condition = check ? where(check) : undefined;
  const set = (expression: string) => `jsonb_set(data, ${pathArray(path)}, ${expression})`;
  const mutation = (text: string): Fix => ({
    kind: 'mutation',
    text,
    ...(condition ? { sql: listing(table, path, condition) } : {}),
  });

  switch (group.reason) {
    case 'missing':
    case 'null': {
      const filled = node ? defaultOf(node) : undefined;
      const loosen = group.reason === 'missing' ? `or make ${field} .optional()` : `or make ${field} .nullable()`;
      if (filled === undefined || !condition) {
        return mutation(`write a mutation that sets ${field} on these documents (ctx.db.patch), ${loosen}`);
      }
      return {
        kind: 'default',
        text: `fill in a default (here ${JSON.stringify(filled)}; choose yours), ${loosen}`,
        sql: update(table, set(jsonbLiteral(filled)), condition),
      };
    }
    case 'wrong_type': {
      const kind = node?.column.type;
      if (!condition || kind === undefined) break;
      if (kind === 'text') {
        return {
          kind: 'update',
          text: 'turn numbers and booleans into their text; any other value needs a mutation',
          sql: update(table, set(`to_jsonb(${value} #>> '{}')`), `jsonb_typeof(${value}) IN ('number', 'boolean')`),
        };
      }
      if (kind === 'double precision' || kind === 'bigint') {
        return {
          kind: 'update',
          text: 'turn strings that hold a number into the number; any other value needs a mutation',
          sql: update(
            table,
            set(`to_jsonb((${value} #>> '{}')::numeric)`),
            `jsonb_typeof(${value}) = 'string' AND (${value} #>> '{}') ~ '^\\s*-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?\\s*$'`,
          ),
        };
      }
      if (kind === 'boolean') {
        return {
          kind: 'update',
          text: "turn the strings 'true' and 'false' into booleans; any other value needs a mutation",
          sql: update(
            table,
            set(`to_jsonb((${value} #>> '{}')::boolean)`),
            `jsonb_typeof(${value}) = 'string' AND (${value} #>> '{}') IN ('true', 'false')`,
          ),
        };
      }
      break;
    }
    case 'not_castable':
      if (node?.column.type === 'bigint' && condition) {
        return {
          kind: 'update',
          text: 'round them to integers (a value beyond ±2^53 needs a mutation)',
          sql: update(
            table,
            set(`to_jsonb(round((${value})::numeric))`),
            `${condition} AND abs((${value})::numeric) <= 9007199254740991`,
          ),
        };
      }
      if (node?.column.type === 'uuid') {
        return mutation(
          `write a mutation that sets ${field} to the id of a document of ${node.column.references}` +
            `${node.column.optional ? ', or removes it' : ''} (ctx.db.patch); these are the rows`,
        );
      }
      break;
    case 'not_allowed': {
      const allowed = node?.column.allowed;
      if (!allowed || !condition) break;
      return {
        kind: 'update',
        text: `map them to ${JSON.stringify(allowed[0])} (or to the value each should have), or add their values to the schema`,
        sql: update(table, set(jsonbLiteral(allowed[0])), condition),
      };
    }
    case 'dangling_ref':
      return mutation(
        `delete these documents, or point ${field} at a document of ${check?.references ?? 'the referenced table'} that exists ` +
          '(ctx.db.delete / ctx.db.patch); these are the rows',
      );
    case 'unknown_field': {
      const keys = group.keys ?? [];
      if (keys.length === 0 || !condition) {
        return mutation('declare these fields in the schema, or remove them from the documents');
      }
      const stripped =
        path.length === 0
          ? `data${keys.map((key) => ` - ${quoteLiteral(key)}`).join('')}`
          : keys.reduce((expression, key) => `(${expression} #- ${pathArray([...path, key])})`, 'data');
      return {
        kind: 'update',
        text: `remove ${keys.join(', ')} from the documents, or declare ${keys.length === 1 ? 'it' : 'them'} in the schema`,
        sql: update(table, stripped, condition),
      };
    }
    case 'not_an_object':
      return mutation('replace these documents with objects, or delete them (ctx.db.replace / ctx.db.delete)');
    case 'refinement':
      return mutation(
        `write a mutation that corrects ${field} (ctx.db.patch): Zod checks this rule and SQL cannot, so no UPDATE can be offered`,
      );
  }
  return mutation(`write a mutation that corrects ${field} (ctx.db.patch)`);
}
