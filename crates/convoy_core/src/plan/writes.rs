//! The statements that write a document table's rows.

use super::storage::managed_table;
use crate::error::Result;
use crate::schema::Schema;
use crate::sql::quote_ident;

pub fn plan_insert(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "INSERT INTO {} (id, data, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        quote_ident(&table.name)?
    ))
}

/// Inserts many documents in one statement: `$1` ids, `$2` data, `$3` creation times, as arrays
/// of one length (group commit, see `group_commit`).
pub fn plan_insert_rows(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "INSERT INTO {} (id, data, created_at, updated_at) \
         SELECT id, data, created_at, created_at \
         FROM unnest($1::uuid[], $2::jsonb[], $3::timestamptz[]) AS incoming (id, data, created_at)",
        quote_ident(&table.name)?
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
    Ok(format!(
        "WITH changed AS (UPDATE {} SET data = $2, updated_at = now() WHERE id = $1 RETURNING 1) \
         SELECT 1 / count(*) FROM changed",
        quote_ident(&table.name)?
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
