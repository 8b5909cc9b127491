//! Schema sync (SPEC §3), what `convoy dev` and `convoy migrate` run: create what is missing,
//! rebuild changed indexes, never drop or rewrite data; running it twice changes nothing. Also
//! the change trigger, and reading what the database says of unmanaged tables.

use serde::Serialize;

pub mod change_trigger;
mod evolve;
mod introspect;
pub(crate) mod relational;

pub use introspect::{introspect, introspect_unmanaged};

use crate::database::Database;
use crate::error::{ConvoyError, Result};
use crate::schema::{Index, Schema, Stage, Table};
use crate::sql::{quote_ident, quote_literal};

/// What sync found and did: the statements it ran (or, in a dry run, would run) and notes for
/// the user, such as tables the schema no longer names (kept, never dropped).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub statements: Vec<String>,
    pub notes: Vec<String>,
    pub applied: bool,
}

/// One advisory lock key for all schema syncs, so two processes starting at once take turns.
const SYNC_LOCK_KEY: i64 = 0x636f_6e76_6f79; // "convoy"

const BOOKKEEPING: &str = "
CREATE SCHEMA IF NOT EXISTS convoy;
CREATE TABLE IF NOT EXISTS convoy.tables (
  name text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  stage text NOT NULL DEFAULT 'documents'
);
CREATE TABLE IF NOT EXISTS convoy.indexes (
  table_name text NOT NULL,
  index_name text NOT NULL,
  fields jsonb NOT NULL,
  postgres_name text NOT NULL,
  PRIMARY KEY (table_name, index_name)
);";

/// Each keyed mutation's answer, recorded in its own transaction (`engine::idempotency`).
const MUTATION_RESULTS: &str = "CREATE TABLE IF NOT EXISTS convoy.mutation_results (
  key text PRIMARY KEY,
  result jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)";

/// Bookkeeping from before tables had stages: every table then held documents.
const BOOKKEEPING_STAGE: &str =
    "ALTER TABLE convoy.tables ADD COLUMN IF NOT EXISTS stage text NOT NULL DEFAULT 'documents'";

/// Installs (or refreshes) the change triggers (`change_trigger`) on every managed table, in one
/// transaction; returns the statements it ran, for `convoy migrate` to print.
pub async fn install_change_trigger(database: &Database, schema: &Schema) -> Result<Vec<String>> {
    let client = database.schema_connection().await?;
    let mut statements = vec![
        "CREATE SCHEMA IF NOT EXISTS convoy".to_owned(),
        change_trigger::CREATE_QUEUE.to_owned(),
    ];
    for table in schema.managed_tables() {
        statements.push(change_trigger::function(table)?);
        statements.extend(change_trigger::triggers(table)?);
    }
    // The table-wide function of before, once no trigger uses it.
    statements.push("DROP FUNCTION IF EXISTS convoy.notify_change()".to_owned());
    client
        .batch_execute(&format!("BEGIN;\n{};\nCOMMIT", statements.join(";\n")))
        .await?;
    Ok(statements)
}

/// The managed tables whose change triggers are missing or run another function than this
/// version's (or all of them, when the queue they fill is missing): what the production server
/// checks before it relies on them, since it never installs them itself.
pub async fn tables_without_change_trigger(
    database: &Database,
    schema: &Schema,
) -> Result<Vec<String>> {
    let client = database.connection().await?;
    let queue_exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&change_trigger::QUEUE],
        )
        .await?
        .get(0);
    if !queue_exists {
        return Ok(schema
            .managed_tables()
            .map(|table| table.name.clone())
            .collect());
    }
    let mut missing = Vec::new();
    for table in schema.managed_tables() {
        let expected = change_trigger::function(table)?;
        let body = expected.split("$$").nth(1).unwrap_or_default().to_owned();
        let installed: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_trigger t
                 JOIN pg_proc p ON p.oid = t.tgfoid
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE t.tgrelid = to_regclass($1) AND t.tgname = ANY($2)
                   AND n.nspname = 'convoy' AND p.proname = $3 AND p.prosrc = $4",
                &[
                    &quote_ident(&table.name)?,
                    &change_trigger::TRIGGERS.to_vec(),
                    &format!("notify_{}", table.name),
                    &body,
                ],
            )
            .await?
            .get(0);
        if installed < i64::try_from(change_trigger::TRIGGERS.len()).unwrap_or(i64::MAX) {
            missing.push(table.name.clone());
        }
    }
    Ok(missing)
}

pub async fn sync_schema(
    database: &Database,
    schema: &Schema,
    dry_run: bool,
) -> Result<SyncReport> {
    let client = database.schema_connection().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&SYNC_LOCK_KEY])
        .await?;
    let result = sync_locked(&client, schema, dry_run).await;
    // The lock is per session: release it even when sync failed, or the pooled connection keeps it.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&SYNC_LOCK_KEY])
        .await?;
    result
}

async fn sync_locked(
    client: &tokio_postgres::Client,
    schema: &Schema,
    dry_run: bool,
) -> Result<SyncReport> {
    let mut report = SyncReport {
        applied: !dry_run,
        ..SyncReport::default()
    };
    let has_bookkeeping: bool = client
        .query_one("SELECT to_regclass('convoy.indexes') IS NOT NULL", &[])
        .await?
        .get(0);
    if !has_bookkeeping {
        report.statements.push(BOOKKEEPING.trim().to_owned());
        if !dry_run {
            client.batch_execute(BOOKKEEPING).await?;
        }
    } else if !has_stage_column(client).await? {
        report.statements.push(BOOKKEEPING_STAGE.to_owned());
        if !dry_run {
            client.batch_execute(BOOKKEEPING_STAGE).await?;
        }
    }
    let has_results: bool = client
        .query_one(
            "SELECT to_regclass('convoy.mutation_results') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !has_results {
        report.statements.push(MUTATION_RESULTS.to_owned());
        if !dry_run {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS convoy; {MUTATION_RESULTS}"
                ))
                .await?;
        }
    }

    // Statements are collected first and run in order, so a dry run prints exactly what a real
    // run would do. Foreign keys come last: a ref may name a table this sync creates.
    let mut plan: Vec<String> = Vec::new();
    let mut foreign_keys: Vec<String> = Vec::new();
    let managed: Vec<&str> = schema
        .managed_tables()
        .map(|table| table.name.as_str())
        .collect();
    for table in schema.managed_tables() {
        let context = TableSync {
            client,
            has_bookkeeping,
            managed: &managed,
        };
        plan_table(
            &context,
            table,
            &mut plan,
            &mut foreign_keys,
            &mut report.notes,
        )
        .await?;
    }
    plan.extend(foreign_keys);
    if has_bookkeeping {
        let known: Vec<String> = client
            .query("SELECT name FROM convoy.tables ORDER BY name", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for name in known {
            if !schema.tables.iter().any(|table| table.name == name) {
                report.notes.push(format!(
                    "table {name} is no longer in the schema; it was kept with its data (Convoy never drops tables)"
                ));
            }
        }
    }
    for statement in plan {
        if !dry_run {
            client.batch_execute(&statement).await?;
        }
        report.statements.push(statement);
    }
    Ok(report)
}

/// Whether `convoy.tables` records stages (bookkeeping written before stages existed does not).
async fn has_stage_column(client: &tokio_postgres::Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = 'convoy' AND table_name = 'tables' AND column_name = 'stage')",
            &[],
        )
        .await?
        .get(0))
}

/// What every table's sync needs to know of the others.
struct TableSync<'a> {
    client: &'a tokio_postgres::Client,
    has_bookkeeping: bool,
    /// The names of the schema's managed tables: the refs that may become foreign keys.
    managed: &'a [&'a str],
}

/// The stage a table is at: what the bookkeeping records; for a table it does not know, what
/// the columns show; for a new table, what the schema declares.
fn stage_of(table: &Table, recorded: Option<&str>, columns: &[(String, String)]) -> Stage {
    match recorded {
        Some("relational") => Stage::Relational,
        Some(_) => Stage::Documents,
        None if columns.is_empty() => table.stage,
        None if columns.iter().any(|(name, _)| name == "data") => Stage::Documents,
        None => Stage::Relational,
    }
}

/// Says so when a table is stored at another stage than the one it is declared at: sync never
/// converts a table (`convoy graduate` does).
fn stage_note(table: &Table, stage: Stage) -> Option<String> {
    match (table.stage, stage) {
        (Stage::Relational, Stage::Documents) => Some(format!(
            "table {0} is declared .relational() but holds documents: it is served as documents until you run `npx convoy graduate {0}` (check it first with `npx convoy graduate {0} --check`)",
            table.name
        )),
        (Stage::Documents, Stage::Relational) => Some(format!(
            "table {} is relational in the database but not declared .relational(): it is served from its columns as it is (Convoy never turns a table back into documents)",
            table.name
        )),
        _ => None,
    }
}

// One table's sync, read top to bottom in the order its statements run.
#[allow(clippy::too_many_lines)]
async fn plan_table(
    context: &TableSync<'_>,
    declared: &Table,
    plan: &mut Vec<String>,
    foreign_keys: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let client = context.client;
    let has_bookkeeping = context.has_bookkeeping;
    let quoted = quote_ident(&declared.name)?;
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&declared.name],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    // Bookkeeping rows are written only when missing or different, so that a dry run on a
    // database that matches the schema lists nothing at all (the production server's check).
    let recorded_stage: Option<String> = if has_bookkeeping {
        let stage = if has_stage_column(client).await? {
            "stage"
        } else {
            "'documents'"
        };
        client
            .query_opt(
                &format!("SELECT {stage} FROM convoy.tables WHERE name = $1"),
                &[&declared.name],
            )
            .await?
            .map(|row| row.get(0))
    } else {
        None
    };
    let stage = stage_of(declared, recorded_stage.as_deref(), &columns);
    notes.extend(stage_note(declared, stage));
    // The table as it is served: at its stage, whatever the declaration says.
    let table = &Table {
        stage,
        ..declared.clone()
    };
    let has = |column: &str, kind: &str| {
        columns
            .iter()
            .any(|(name, found)| name == column && found == kind)
    };
    match stage {
        Stage::Documents if columns.is_empty() => plan.push(format!(
            "CREATE TABLE IF NOT EXISTS {quoted} (\n  id uuid PRIMARY KEY,\n  data jsonb NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now(),\n  updated_at timestamptz NOT NULL DEFAULT now()\n)"
        )),
        Stage::Relational if columns.is_empty() => {
            plan.push(relational::create_table(table)?);
            plan.extend(relational::check_comments(table)?);
            notes.extend(relational::naming_notes(table));
            foreign_keys.extend(relational::foreign_keys(table, context.managed)?);
        }
        Stage::Documents if !(has("data", "jsonb") && has("id", "uuid")) => {
            return Err(ConvoyError::InvalidArgs(format!(
                "table {} already exists but is not a Convoy table (it needs `id uuid` and `data jsonb` columns); \
                 to read an existing table, declare it with .unmanaged()",
                table.name
            )));
        }
        Stage::Documents => {}
        Stage::Relational => {
            if !has("id", "uuid") {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {} already exists but is not a Convoy table (it needs an `id uuid` column); \
                     to read an existing table, declare it with .unmanaged()",
                    table.name
                )));
            }
            let existing: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
            plan.extend(relational::add_columns(
                table,
                &existing,
                context.managed,
                notes,
            )?);
            plan.extend(evolve::changes(client, table, notes).await?);
        }
    }
    if recorded_stage.is_none() {
        plan.push(format!(
            "INSERT INTO convoy.tables (name, stage) VALUES ({}, {}) ON CONFLICT DO NOTHING",
            quote_literal(&table.name)?,
            quote_literal(stage.as_str())?
        ));
    }

    let recorded_indexes: Vec<(String, String, String)> = if has_bookkeeping {
        client
            .query(
                "SELECT index_name, postgres_name, fields::text FROM convoy.indexes WHERE table_name = $1",
                &[&table.name],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    } else {
        Vec::new()
    };
    let recorded: Vec<(String, String)> = recorded_indexes
        .iter()
        .map(|(name, postgres_name, _)| (name.clone(), postgres_name.clone()))
        .collect();

    for index in &table.indexes {
        let postgres_name = index.postgres_name(table);
        let state: Option<bool> = client
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relname = $1 AND n.nspname = current_schema()",
                &[&postgres_name],
            )
            .await?
            .map(|row| row.get(0));
        let quoted_index = quote_ident(&postgres_name)?;
        match state {
            Some(true) => {}
            Some(false) => {
                // A concurrent build that was interrupted leaves an invalid index behind.
                plan.push(format!("DROP INDEX CONCURRENTLY IF EXISTS {quoted_index}"));
                plan.push(create_index(&quoted_index, &quoted, index, table)?);
            }
            None => plan.push(create_index(&quoted_index, &quoted, index, table)?),
        }
        let fields = serde_json::to_string(&index.fields).expect("a list of strings serializes");
        let same_record = recorded_indexes.iter().any(|(name, old, old_fields)| {
            name == &index.name
                && old == &postgres_name
                && serde_json::from_str::<Vec<String>>(old_fields)
                    .ok()
                    .as_ref()
                    == Some(&index.fields)
        });
        if !same_record {
            plan.push(format!(
            "INSERT INTO convoy.indexes (table_name, index_name, fields, postgres_name) VALUES ({}, {}, {}, {})
             ON CONFLICT (table_name, index_name) DO UPDATE SET fields = excluded.fields, postgres_name = excluded.postgres_name",
            quote_literal(&table.name)?,
            quote_literal(&index.name)?,
            quote_literal(&fields)?,
            quote_literal(&postgres_name)?
        ));
        }
        if let Some((_, old)) = recorded
            .iter()
            .find(|(name, old)| name == &index.name && old != &postgres_name)
        {
            notes.push(format!(
                "index {}.{} changed: built anew, the old one dropped",
                table.name, index.name
            ));
            plan.push(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                quote_ident(old)?
            ));
        }
    }
    for (name, old) in &recorded {
        if !table.indexes.iter().any(|index| &index.name == name) {
            notes.push(format!(
                "index {}.{name} is no longer in the schema: dropped (the data is untouched)",
                table.name
            ));
            plan.push(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                quote_ident(old)?
            ));
            plan.push(format!(
                "DELETE FROM convoy.indexes WHERE table_name = {} AND index_name = {}",
                quote_literal(&table.name)?,
                quote_literal(name)?
            ));
        }
    }
    Ok(())
}

fn create_index(
    quoted_index: &str,
    quoted_table: &str,
    index: &Index,
    table: &Table,
) -> Result<String> {
    // CONCURRENTLY: building an index on a live table must not block its writers.
    Ok(format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {quoted_index} ON {quoted_table} ({})",
        index.expressions(table)?
    ))
}
