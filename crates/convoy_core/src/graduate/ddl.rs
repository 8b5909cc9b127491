//! The statements of each step of a graduation (GRADUATION.md § Running it online), built from
//! the table's plan: the columns of its fields at the relational stage.

use crate::migrate::relational::{check_comments, check_of, constraint_name, has_index_led_by};
use crate::plan::columns::{assignments_from_document, value_from_document};
use crate::reactivity::{Announcement, CHANNEL};
use crate::schema::{FieldColumn, Table};
use crate::sql::{quote_ident, quote_literal};

/// The trigger that keeps the columns equal to `data` while `data` is the truth.
pub(super) const SYNC_TRIGGER: &str = "convoy_graduate";

/// The trigger's function, one per table, in Convoy's schema.
pub(super) fn sync_function(table: &Table) -> Result<String> {
    Ok(format!(
        "convoy.{}",
        quote_ident(&format!("graduate_{}", table.name))?
    ))
}

type Result<T> = crate::error::Result<T>;

/// A constraint a step adds `NOT VALID` and a later one validates.
pub(super) struct Constraint {
    pub name: String,
    pub definition: String,
    /// A `CHECK (col IS NOT NULL)` that only proves `SET NOT NULL` and then goes.
    pub proves_not_null: Option<String>,
}

/// Expand: the columns (nullable: a change of the catalog only), the trigger that fills them
/// from `data` on every insert and update, and the constraints, not validated yet.
pub(super) fn expand(table: &Table) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let columns = table
        .field_columns
        .iter()
        .map(|column| {
            Ok(format!(
                "ADD COLUMN IF NOT EXISTS {} {}",
                quote_ident(&column.column)?,
                column.kind.sql()
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut statements = Vec::new();
    if !columns.is_empty() {
        statements.push(format!("ALTER TABLE {quoted} {}", columns.join(", ")));
    }
    let function = sync_function(table)?;
    let assignments = table
        .field_columns
        .iter()
        .map(|column| {
            Ok(format!(
                "    NEW.{} := {};\n",
                quote_ident(&column.column)?,
                value_from_document(column, "NEW.data")?
            ))
        })
        .collect::<Result<String>>()?;
    // Only when `data` changes: a write of the columns alone (the backfill) keeps what it wrote.
    statements.push(format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN\n  IF TG_OP = 'INSERT' OR NEW.data IS DISTINCT FROM OLD.data THEN\n{assignments}  END IF;\n  RETURN NEW;\nEND\n$$"
    ));
    statements.push(format!(
        "CREATE OR REPLACE TRIGGER {SYNC_TRIGGER} BEFORE INSERT OR UPDATE ON {quoted} \
         FOR EACH ROW EXECUTE FUNCTION {function}()"
    ));
    for constraint in constraints(table)? {
        statements.push(format!(
            "ALTER TABLE {quoted} ADD CONSTRAINT {} {} NOT VALID",
            quote_ident(&constraint.name)?,
            constraint.definition
        ));
    }
    // Noted as `.relational()` notes its CHECKs, so that later schema changes replace them.
    statements.extend(check_comments(table)?);
    Ok(statements)
}

/// Every constraint the relational table will have, plus the CHECKs that prove NOT NULL.
pub(super) fn constraints(table: &Table) -> Result<Vec<Constraint>> {
    let mut constraints = Vec::new();
    for column in &table.field_columns {
        let name = quote_ident(&column.column)?;
        if column.not_null {
            constraints.push(Constraint {
                name: constraint_name(&table.name, &column.column, "not_null"),
                definition: format!("CHECK ({name} IS NOT NULL)"),
                proves_not_null: Some(column.column.clone()),
            });
        }
        if let Some(check) = check_of(column)? {
            constraints.push(Constraint {
                name: constraint_name(&table.name, &column.column, "check"),
                definition: format!("CHECK ({check})"),
                proves_not_null: None,
            });
        }
        if let Some(parent) = &column.references {
            constraints.push(Constraint {
                name: constraint_name(&table.name, &column.column, "fkey"),
                definition: format!(
                    "FOREIGN KEY ({name}) REFERENCES {} (id) ON DELETE {}",
                    quote_ident(parent)?,
                    column.on_delete.sql()
                ),
                proves_not_null: None,
            });
        }
    }
    Ok(constraints)
}

/// One backfill batch: the columns of the next `$2` rows after `$1`, from their `data`.
pub(super) fn backfill_batch(table: &Table) -> Result<String> {
    let quoted = quote_ident(&table.name)?;
    Ok(format!(
        "WITH batch AS (SELECT id FROM {quoted} WHERE id > $1 ORDER BY id LIMIT $2) \
         UPDATE {quoted} AS t SET {} FROM batch WHERE t.id = batch.id RETURNING t.id",
        assignments_from_document(table, "t.data")?.join(", ")
    ))
}

/// The same for one row, to name the row a failed batch stumbled on.
pub(super) fn backfill_row(table: &Table) -> Result<String> {
    Ok(format!(
        "UPDATE {} AS t SET {} WHERE t.id = $1",
        quote_ident(&table.name)?,
        assignments_from_document(table, "t.data")?.join(", ")
    ))
}

/// Validate: every constraint checked over the rows (writers go on meanwhile), NOT NULL set
/// through the CHECK that proves it (no scan), and that CHECK dropped.
pub(super) fn validate(table: &Table) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let mut statements = Vec::new();
    let constraints = constraints(table)?;
    for constraint in &constraints {
        statements.push(format!(
            "ALTER TABLE {quoted} VALIDATE CONSTRAINT {}",
            quote_ident(&constraint.name)?
        ));
    }
    for constraint in &constraints {
        if let Some(column) = &constraint.proves_not_null {
            statements.push(format!(
                "ALTER TABLE {quoted} ALTER COLUMN {} SET NOT NULL",
                quote_ident(column)?
            ));
            statements.push(format!(
                "ALTER TABLE {quoted} DROP CONSTRAINT {}",
                quote_ident(&constraint.name)?
            ));
        }
    }
    Ok(statements)
}

/// The indexes of the relational table, each built without blocking writers: the schema's own,
/// then one per ref that none of them starts with. `(name, statement)`.
pub(super) fn indexes(table: &Table) -> Result<Vec<(String, String)>> {
    let quoted = quote_ident(&table.name)?;
    let mut indexes = Vec::new();
    for index in &table.indexes {
        let name = index.postgres_name(table);
        let statement = format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {quoted} ({})",
            quote_ident(&name)?,
            index.expressions(table)?
        );
        indexes.push((name, statement));
    }
    for column in refs(table) {
        if has_index_led_by(table, &column.field) {
            continue;
        }
        let name = constraint_name(&table.name, &column.column, "fkey_index");
        let statement = format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {quoted} ({})",
            quote_ident(&name)?,
            quote_ident(&column.column)?
        );
        indexes.push((name, statement));
    }
    Ok(indexes)
}

fn refs(table: &Table) -> impl Iterator<Item = &FieldColumn> {
    table
        .field_columns
        .iter()
        .filter(|column| column.references.is_some())
}

/// Complete: the trigger goes and so does `data` (dropping a column changes the catalog only; its
/// expression indexes go with it), the stage becomes relational, and every process is told. One
/// transaction: no write can fall between the trigger and the columns.
pub(super) fn complete(table: &Table) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let name = quote_literal(&table.name)?;
    let mut statements = vec![
        format!("DROP TRIGGER IF EXISTS {SYNC_TRIGGER} ON {quoted}"),
        format!("ALTER TABLE {quoted} DROP COLUMN IF EXISTS data"),
        format!("UPDATE convoy.tables SET stage = 'relational' WHERE name = {name}"),
        format!("DELETE FROM convoy.graduations WHERE table_name = {name}"),
    ];
    for index in &table.indexes {
        statements.push(format!(
            "UPDATE convoy.indexes SET postgres_name = {} WHERE table_name = {name} AND index_name = {}",
            quote_literal(&index.postgres_name(table))?,
            quote_literal(&index.name)?
        ));
    }
    statements.push(notify_stages()?);
    Ok(statements)
}

/// Abort: what expand added goes — the trigger, the columns (their constraints and indexes with
/// them) — and the table is documents again, exactly as before.
pub(super) fn abort(table: &Table) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let name = quote_literal(&table.name)?;
    let mut statements = vec![format!("DROP TRIGGER IF EXISTS {SYNC_TRIGGER} ON {quoted}")];
    let columns = table
        .field_columns
        .iter()
        .map(|column| {
            Ok(format!(
                "DROP COLUMN IF EXISTS {}",
                quote_ident(&column.column)?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    if !columns.is_empty() {
        statements.push(format!("ALTER TABLE {quoted} {}", columns.join(", ")));
    }
    statements.push(format!(
        "UPDATE convoy.tables SET stage = 'documents' WHERE name = {name}"
    ));
    statements.push(format!(
        "DELETE FROM convoy.graduations WHERE table_name = {name}"
    ));
    statements.push(notify_stages()?);
    Ok(statements)
}

/// Tells every Convoy process on the database to read the stages again.
pub(super) fn notify_stages() -> Result<String> {
    let payload =
        Announcement::Stages.payload("convoy-graduate", &crate::schema::Schema::default());
    Ok(format!(
        "SELECT pg_notify({}, {})",
        quote_literal(CHANNEL)?,
        quote_literal(&payload)?
    ))
}

/// Convoy's bookkeeping of graduations under way: the step, where the backfill is, the plan.
pub(super) const BOOKKEEPING: &str = "
CREATE SCHEMA IF NOT EXISTS convoy;
CREATE TABLE IF NOT EXISTS convoy.graduations (
  table_name text PRIMARY KEY,
  step text NOT NULL,
  position uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  rows_done bigint NOT NULL DEFAULT 0,
  rows_total bigint NOT NULL DEFAULT 0,
  batch_size integer NOT NULL DEFAULT 0,
  plan jsonb NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)";
