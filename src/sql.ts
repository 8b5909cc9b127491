/**
 * The `sql` template tag for `ctx.db.raw`: every interpolated value becomes a bind parameter,
 * never text. `sql.identifier(name)` is the one way to splice a name, double-quoted.
 */

const fragmentBrand = Symbol.for('@avvos/convoy/sql');

/** What `sql.identifier(name)` returns: a name to splice, double-quoted, rather than bind. */
export class SqlIdentifier {
  constructor(readonly name: string) {}
}

export class SqlFragment {
  readonly [fragmentBrand] = true;

  constructor(
    readonly strings: readonly string[],
    readonly values: readonly unknown[],
  ) {}

  /** The statement text with `$1 … $n` placeholders, and the values to bind to them. */
  toQuery(): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const text = this.render(values);
    return { text, values };
  }

  private render(values: unknown[]): string {
    let text = this.strings[0] ?? '';
    this.values.forEach((value, index) => {
      if (isSqlFragment(value)) {
        text += value.render(values);
      } else if (value instanceof SqlIdentifier) {
        text += quoteIdentifier(value.name);
      } else {
        values.push(value);
        text += `$${values.length}`;
      }
      text += this.strings[index + 1] ?? '';
    });
    return text;
  }
}

export function isSqlFragment(value: unknown): value is SqlFragment {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[fragmentBrand] === true;
}

function quoteIdentifier(name: string): string {
  if (name.length === 0 || name.includes('\0')) {
    throw new TypeError('sql.identifier: a name must be non-empty and may not contain NUL');
  }
  return `"${name.replaceAll('"', '""')}"`;
}

export interface SqlTag {
  (strings: TemplateStringsArray, ...values: unknown[]): SqlFragment;
  /** A table or column name chosen at run time, spliced double-quoted. */
  identifier(name: string): SqlIdentifier;
}

export const sql: SqlTag = Object.assign(
  (strings: TemplateStringsArray, ...values: unknown[]) => new SqlFragment([...strings], values),
  { identifier: (name: string) => new SqlIdentifier(name) },
);
