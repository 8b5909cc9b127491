//! A relational table kept in step with its schema as the schema changes (fields added are
//! `relational::add_columns`): a field that becomes optional, or leaves the schema, loses its
//! column's NOT NULL, so that writes without it succeed; an enum whose values change gets its
//! CHECK replaced, validated when it only widened; a field whose type changed is reported, never
//! rewritten. Each statement is a change of the catalog only, its lock asked for briefly.

use std::collections::HashSet;

use super::relational::{check_comment, check_of, constraint_name, CHECK_COMMENT};
use crate::error::Result;
use crate::schema::{FieldColumn, Table};
use crate::sql::quote_ident;

/// Convoy's own columns, never a field's.
const OWN_COLUMNS: [&str; 4] = ["id", "data", "created_at", "updated_at"];

pub(super) async fn changes(
    client: &tokio_postgres::Client,
    table: &Table,
    notes: &mut Vec<String>,
) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let columns: Vec<(String, String, bool)> = client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table.name],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let checks: Vec<(String, Option<String>)> = client
        .query(
            "SELECT conname::text, obj_description(oid, 'pg_constraint') FROM pg_constraint
             WHERE conrelid = to_regclass($1) AND contype = 'c'",
            &[&quoted],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut statements = Vec::new();
    for field in &table.field_columns {
        let Some((_, data_type, not_null)) =
            columns.iter().find(|(name, ..)| *name == field.column)
        else {
            continue;
        };
        let column = quote_ident(&field.column)?;
        if data_type != field.kind.sql() {
            notes.push(format!(
                "{}.{} is now {} in the schema, but its column {} is {data_type}: Convoy never changes a column's type (that rewrites the table); \
                 ALTER it yourself, or give the field a new column with .relational({{ columns: {{ {}: '...' }} }})",
                table.name,
                field.field,
                field.kind.sql(),
                field.column,
                field.field
            ));
        }
        if *not_null && !field.not_null {
            statements.push(lock(format!(
                "ALTER TABLE {quoted} ALTER COLUMN {column} DROP NOT NULL"
            )));
        }
        statements.extend(check_changes(table, field, &checks, notes)?);
    }
    // Columns of fields the schema no longer has: kept with their data, but no longer required.
    let declared: HashSet<&str> = table
        .field_columns
        .iter()
        .map(|field| field.column.as_str())
        .collect();
    for (name, _, not_null) in &columns {
        if *not_null && !declared.contains(name.as_str()) && !OWN_COLUMNS.contains(&name.as_str()) {
            statements.push(lock(format!(
                "ALTER TABLE {quoted} ALTER COLUMN {} DROP NOT NULL",
                quote_ident(name)?
            )));
            notes.push(format!(
                "{}.{name} is no field of the schema any more: the column is kept with its data (Convoy never drops one), and no longer required",
                table.name
            ));
        }
    }
    Ok(statements)
}

/// The statements that bring a field's CHECK in line with the schema: replaced when its values
/// changed (the rows already there that break a narrowed one are kept), dropped when the field
/// has no allowed values any more, added when it has new ones.
fn check_changes(
    table: &Table,
    field: &FieldColumn,
    checks: &[(String, Option<String>)],
    notes: &mut Vec<String>,
) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let mut statements = Vec::new();
    let name = constraint_name(&table.name, &field.column, "check");
    let recorded = checks.iter().find(|(conname, _)| *conname == name);
    // Only a CHECK Convoy made and noted is Convoy's to replace.
    let recorded_source = recorded.and_then(|(_, comment)| {
        comment
            .as_deref()
            .and_then(|comment| comment.strip_prefix(CHECK_COMMENT))
    });
    let wanted = check_of(field)?;
    match (recorded, recorded_source, &wanted) {
        (Some(_), Some(source), Some(check)) if source == check => {}
        (Some(_), Some(_), Some(check)) => {
            statements.push(lock(format!(
                "ALTER TABLE {quoted} DROP CONSTRAINT {0}, ADD CONSTRAINT {0} CHECK ({check}) NOT VALID",
                quote_ident(&name)?
            )));
            statements.push(check_comment(table, field, check)?);
            statements.push(validate_if_rows_fit(&quoted, &name)?);
            notes.push(format!(
                "{}.{}: its allowed values changed, so its CHECK {name} was replaced; rows already there that break a narrowed one are kept, and new writes are checked",
                table.name, field.field
            ));
        }
        (Some(_), Some(_), None) => {
            statements.push(lock(format!(
                "ALTER TABLE {quoted} DROP CONSTRAINT {}",
                quote_ident(&name)?
            )));
        }
        (None, _, Some(check)) => {
            statements.push(lock(format!(
                "ALTER TABLE {quoted} ADD CONSTRAINT {} CHECK ({check}) NOT VALID",
                quote_ident(&name)?
            )));
            statements.push(check_comment(table, field, check)?);
            statements.push(validate_if_rows_fit(&quoted, &name)?);
        }
        _ => {}
    }
    Ok(statements)
}

/// Validates a CHECK added `NOT VALID`; when rows already there break it (a narrowed enum), it
/// stays not valid — new writes are checked, the old rows kept — instead of failing the sync.
fn validate_if_rows_fit(quoted_table: &str, name: &str) -> Result<String> {
    Ok(format!(
        "DO $$ BEGIN ALTER TABLE {quoted_table} VALIDATE CONSTRAINT {}; \
         EXCEPTION WHEN check_violation THEN RAISE NOTICE 'rows break the check; it stays NOT VALID'; END $$",
        quote_ident(name)?
    ))
}

fn lock(statement: String) -> String {
    format!("SET lock_timeout = '2s'; {statement}; RESET lock_timeout")
}
