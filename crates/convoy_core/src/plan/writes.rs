//! The statements that write a managed table's rows: the document whole into `data`, or, in a
//! relational table, each field into its column.

use super::columns::{assignments_from_document, value_from_document};
use super::statement::planned;
use super::storage::{managed_table, Layout};
use crate::error::Result;
use crate::schema::{Schema, Table};
use crate::sql::quote_ident;

/// A relational table's field columns, and their values taken from the JSONB `document`.
fn field_columns(table: &Table, document: &str) -> Result<(String, String)> {
    let mut names = String::new();
    let mut values = String::new();
    for column in &table.field_columns {
        names.push_str(", ");
        names.push_str(&quote_ident(&column.column)?);
        values.push_str(", ");
        values.push_str(&value_from_document(column, document)?);
    }
    Ok((names, values))
}

pub fn plan_insert(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    planned(&table.planned.insert, table.stage, || insert(table))
}

fn insert(table: &Table) -> Result<String> {
    let quoted = quote_ident(&table.name)?;
    if Layout::for_writes(table) == Layout::Relational {
        let (names, values) = field_columns(table, "incoming.document")?;
        return Ok(format!(
            "INSERT INTO {quoted} (id, created_at, updated_at{names}) \
             SELECT $1::uuid, $3::timestamptz, $3::timestamptz{values} \
             FROM (VALUES ($2::jsonb)) AS incoming (document)"
        ));
    }
    Ok(format!(
        "INSERT INTO {quoted} (id, data, created_at, updated_at) VALUES ($1, $2, $3, $3)"
    ))
}

/// Inserts many documents in one statement: `$1` ids, `$2` data, `$3` creation times, as arrays
/// of one length (group commit, see `group_commit`).
pub fn plan_insert_rows(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    planned(&table.planned.insert_rows, table.stage, || {
        insert_rows(table)
    })
}

fn insert_rows(table: &Table) -> Result<String> {
    let quoted = quote_ident(&table.name)?;
    let unnest = "FROM unnest($1::uuid[], $2::jsonb[], $3::timestamptz[]) AS incoming (id, document, created_at)";
    if Layout::for_writes(table) == Layout::Relational {
        let (names, values) = field_columns(table, "incoming.document")?;
        return Ok(format!(
            "INSERT INTO {quoted} (id, created_at, updated_at{names}) \
             SELECT incoming.id, incoming.created_at, incoming.created_at{values} {unnest}"
        ));
    }
    Ok(format!(
        "INSERT INTO {quoted} (id, data, created_at, updated_at) \
         SELECT id, document, created_at, created_at {unnest}"
    ))
}

/// Replaces one document's fields: `$1` id, `$2` data.
///
/// Writes travel pipelined ahead of the statement after them — COMMIT included — without waiting
/// for their answers, so a write that finds no row must fail inside Postgres, aborting the
/// transaction: `1 / count(*)` is a division by zero then. (The engine checks that the document
/// exists before it queues the write, so this is a safety net, not a path.)
pub fn plan_replace(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    planned(&table.planned.replace, table.stage, || replace(table))
}

fn replace(table: &Table) -> Result<String> {
    let quoted = quote_ident(&table.name)?;
    let update = if Layout::for_writes(table) == Layout::Relational {
        let assignments = assignments_from_document(table, "$2::jsonb")?;
        let mut set = assignments.join(", ");
        if !set.is_empty() {
            set.push_str(", ");
        }
        format!("UPDATE {quoted} SET {set}updated_at = now() WHERE id = $1")
    } else {
        format!("UPDATE {quoted} SET data = $2, updated_at = now() WHERE id = $1")
    };
    Ok(format!(
        "WITH changed AS ({update} RETURNING 1) SELECT 1 / count(*) FROM changed"
    ))
}

/// Deletes one document: `$1` id. A missing row fails as in [`plan_replace`].
pub fn plan_delete(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "WITH gone AS (DELETE FROM {} WHERE id = $1 RETURNING 1) SELECT 1 / count(*) FROM gone",
        quote_ident(&table.name)?
    ))
}
