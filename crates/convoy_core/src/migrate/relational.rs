//! The DDL of a relational table (GRADUATION.md § Mapping): a typed column per field, NOT NULL
//! for required fields, CHECKs for enums and JSON kinds, foreign keys for refs with an index on
//! each, and later fields added as columns without blocking writers.

use crate::error::Result;
use crate::schema::{ColumnKind, FieldColumn, Table};
use crate::sql::{quote_ident, quote_literal};

/// Postgres cuts names at 63 bytes; cut ours first, so the name we print is the name it keeps.
pub(crate) fn constraint_name(table: &str, column: &str, suffix: &str) -> String {
    let mut name = format!("{table}_{column}");
    while name.len() > 63 - suffix.len() - 1 {
        name.pop();
    }
    format!("{name}_{suffix}")
}

/// `CREATE TABLE` for a new relational table, with its CHECKs; the foreign keys come after
/// every table of the sync exists ([`foreign_keys`]), since a ref may name a table created later
/// in the same sync, or the table itself.
pub(super) fn create_table(table: &Table) -> Result<String> {
    let mut lines = vec![
        "id uuid PRIMARY KEY".to_owned(),
        "created_at timestamptz NOT NULL DEFAULT now()".to_owned(),
        "updated_at timestamptz NOT NULL DEFAULT now()".to_owned(),
    ];
    for column in &table.field_columns {
        let not_null = if column.not_null { " NOT NULL" } else { "" };
        lines.push(format!(
            "{} {}{not_null}",
            quote_ident(&column.column)?,
            column.kind.sql()
        ));
    }
    for column in &table.field_columns {
        if let Some(check) = check_of(column)? {
            lines.push(format!(
                "CONSTRAINT {} CHECK ({check})",
                quote_ident(&constraint_name(&table.name, &column.column, "check"))?
            ));
        }
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n)",
        quote_ident(&table.name)?,
        lines.join(",\n  ")
    ))
}

/// What Convoy notes on each CHECK it makes: the condition it stands for, so that a later sync
/// can tell whether the schema still asks for it (Postgres rewrites a CHECK's text as it stores
/// it). `COMMENT ON CONSTRAINT` for each of `table`'s CHECKs.
pub(crate) fn check_comments(table: &Table) -> Result<Vec<String>> {
    let mut statements = Vec::new();
    for column in &table.field_columns {
        if let Some(check) = check_of(column)? {
            statements.push(check_comment(table, column, &check)?);
        }
    }
    Ok(statements)
}

pub(crate) fn check_comment(table: &Table, column: &FieldColumn, check: &str) -> Result<String> {
    Ok(format!(
        "COMMENT ON CONSTRAINT {} ON {} IS {}",
        quote_ident(&constraint_name(&table.name, &column.column, "check"))?,
        quote_ident(&table.name)?,
        quote_literal(&format!("{CHECK_COMMENT}{check}"))?
    ))
}

/// How Convoy's notes on its CHECKs begin.
pub(crate) const CHECK_COMMENT: &str = "convoy: ";

/// The foreign keys of a new table's refs, and the index each one needs: Postgres indexes the
/// referenced key, not the referring column, and a delete of a parent must find its children
/// without a scan. Refs to tables Convoy does not manage stay unchecked.
pub(super) fn foreign_keys(table: &Table, managed: &[&str]) -> Result<Vec<String>> {
    let mut statements = Vec::new();
    for column in &table.field_columns {
        let Some(parent) = column.references.as_deref() else {
            continue;
        };
        if !managed.contains(&parent) {
            continue;
        }
        statements.push(format!(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} (id) ON DELETE {}",
            quote_ident(&table.name)?,
            quote_ident(&constraint_name(&table.name, &column.column, "fkey"))?,
            quote_ident(&column.column)?,
            quote_ident(parent)?,
            column.on_delete.sql()
        ));
        if !has_index_led_by(table, &column.field) {
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                quote_ident(&constraint_name(&table.name, &column.column, "fkey_index"))?,
                quote_ident(&table.name)?,
                quote_ident(&column.column)?
            ));
        }
    }
    Ok(statements)
}

/// Whether one of the schema's indexes starts with `field`, and so serves its foreign key too.
pub(crate) fn has_index_led_by(table: &Table, field: &str) -> bool {
    table
        .indexes
        .iter()
        .any(|index| index.fields.first().map(String::as_str) == Some(field))
}

/// What a new table's columns are named where the name is not the field's `snake_case`.
pub(super) fn naming_notes(table: &Table) -> Vec<String> {
    table
        .field_columns
        .iter()
        .filter(|column| column.named.as_deref() == Some("renamed"))
        .map(|column| {
            format!(
                "{}.{} is the column {} ({} is one of Convoy's own columns); to name it otherwise: .relational({{ columns: {{ {}: '...' }} }})",
                table.name,
                column.field,
                column.column,
                column.column.trim_end_matches("_field"),
                column.field
            )
        })
        .collect()
}

/// Columns for fields added to a relational table that exists: nullable (adding one is a change
/// of the catalog only, with no rewrite), their CHECK and foreign key added `NOT VALID` and
/// validated apart (validation does not block writers), the ref's index built concurrently, and
/// every lock asked for with a short timeout so that the sync never queues behind, and so
/// blocks, the app's traffic. A required field's column stays nullable: the rows already there
/// have no value for it (`notes` says so).
pub(super) fn add_columns(
    table: &Table,
    existing: &[String],
    managed: &[&str],
    notes: &mut Vec<String>,
) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let mut statements = Vec::new();
    for column in &table.field_columns {
        if existing.contains(&column.column) {
            continue;
        }
        let name = quote_ident(&column.column)?;
        statements.push(format!(
            "SET lock_timeout = '2s'; ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS {name} {}; RESET lock_timeout",
            column.kind.sql()
        ));
        if column.not_null {
            notes.push(format!(
                "{}.{} is required, but the rows already there have no value for it: its column {} stays nullable (Convoy still refuses writes without it)",
                table.name, column.field, column.column
            ));
        }
        if let Some(check) = check_of(column)? {
            let constraint = quote_ident(&constraint_name(&table.name, &column.column, "check"))?;
            statements.push(format!(
                "SET lock_timeout = '2s'; ALTER TABLE {quoted} ADD CONSTRAINT {constraint} CHECK ({check}) NOT VALID; RESET lock_timeout"
            ));
            statements.push(check_comment(table, column, &check)?);
            statements.push(format!(
                "ALTER TABLE {quoted} VALIDATE CONSTRAINT {constraint}"
            ));
        }
        if let Some(parent) = column
            .references
            .as_deref()
            .filter(|parent| managed.contains(parent))
        {
            let constraint = quote_ident(&constraint_name(&table.name, &column.column, "fkey"))?;
            statements.push(format!(
                "SET lock_timeout = '2s'; ALTER TABLE {quoted} ADD CONSTRAINT {constraint} FOREIGN KEY ({name}) REFERENCES {} (id) ON DELETE {} NOT VALID; RESET lock_timeout",
                quote_ident(parent)?,
                column.on_delete.sql()
            ));
            statements.push(format!(
                "ALTER TABLE {quoted} VALIDATE CONSTRAINT {constraint}"
            ));
            if !has_index_led_by(table, &column.field) {
                statements.push(format!(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {quoted} ({name})",
                    quote_ident(&constraint_name(&table.name, &column.column, "fkey_index"))?
                ));
            }
        }
    }
    Ok(statements)
}

/// The CHECK a column needs: its allowed values, or its JSON kind.
pub(crate) fn check_of(column: &FieldColumn) -> Result<Option<String>> {
    let name = quote_ident(&column.column)?;
    if let Some(allowed) = &column.allowed {
        let values = allowed
            .iter()
            .map(|value| match value {
                // A mixed enum lives in a jsonb column: each value is compared as JSON.
                value if column.kind == ColumnKind::Jsonb => {
                    Ok(format!("{}::jsonb", quote_literal(&value.to_string())?))
                }
                serde_json::Value::String(text) => quote_literal(text),
                // Numbers and booleans as JSON text are SQL literals of their own.
                value => Ok(value.to_string()),
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Some(format!("{name} IN ({})", values.join(", "))));
    }
    if let Some(kind) = &column.jsonb_kind {
        return Ok(Some(format!(
            "jsonb_typeof({name}) = {}",
            quote_literal(kind)?
        )));
    }
    Ok(None)
}
