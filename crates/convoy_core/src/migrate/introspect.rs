//! What the database says of the app's tables, read when a schema is set: the stage each managed
//! table is at (and a relational table's columns), and an unmanaged table's columns and key.

use crate::database::Database;
use crate::error::{ConvoyError, Result};
use crate::schema::{Column, FieldColumn, Schema, Stage, Table};
use crate::sql::quote_ident;

/// Reads everything [`Schema`] leaves to the database: stages first, then unmanaged tables.
pub async fn introspect(database: &Database, schema: &mut Schema) -> Result<()> {
    introspect_stages(database, schema).await?;
    introspect_unmanaged(database, schema).await
}

/// Serves each managed table at the stage its bookkeeping records (GRADUATION.md: the database
/// decides, not the declaration); a relational table's fields must all have their columns, and
/// the columns the database holds NOT NULL are noted (their fields are never missing).
async fn introspect_stages(database: &Database, schema: &mut Schema) -> Result<()> {
    let client = database.connection().await?;
    let has_stages: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = 'convoy' AND table_name = 'tables' AND column_name = 'stage')",
            &[],
        )
        .await?
        .get(0);
    let recorded: Vec<(String, String)> = if has_stages {
        client
            .query("SELECT name, stage FROM convoy.tables", &[])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    } else {
        Vec::new()
    };
    let graduations = graduations(&client).await?;
    for table in schema.tables.iter_mut().filter(|table| table.managed) {
        let has_data: Option<bool> = client
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute
                 WHERE attrelid = c.oid AND attname = 'data' AND NOT attisdropped)
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&quote_ident(&table.name)?],
            )
            .await?
            .map(|row| row.get(0));
        let recorded = recorded
            .iter()
            .find(|(name, _)| *name == table.name)
            .map(|(_, stage)| stage.as_str());
        table.graduation_step = None;
        table.stage = match (recorded, has_data) {
            (Some("relational"), _) | (None, Some(false)) => Stage::Relational,
            (Some(_), _) | (None, Some(true)) => Stage::Documents,
            // Not created yet: sync creates it as declared.
            (None, None) => table.stage,
        };
        table.reads_columns = table.stage == Stage::Relational;
        if recorded == Some("graduating") {
            if let Some((step, columns)) = graduations
                .iter()
                .find(|(name, ..)| *name == table.name)
                .map(|(_, step, columns)| (step, columns))
            {
                // The graduation's own plan says which columns exist, whatever the app declares now.
                table.field_columns.clone_from(columns);
                table.graduation_step = Some(step.clone());
                table.reads_columns = step == "columns";
            }
        }
        if !table.reads_columns {
            continue;
        }
        let columns: Vec<(String, bool)> = client
            .query(
                "SELECT a.attname::text, a.attnotnull FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&quote_ident(&table.name)?],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        if columns.is_empty() {
            // Not created yet: sync creates it as declared.
            continue;
        }
        let name = table.name.clone();
        for field in &mut table.field_columns {
            let Some((_, not_null)) = columns.iter().find(|(column, _)| *column == field.column)
            else {
                return Err(ConvoyError::InvalidArgs(format!(
                    "the relational table {name} has no column {} for its field {}: run `npx convoy migrate` to add it",
                    field.column, field.field
                )));
            };
            field.enforced_not_null = *not_null;
        }
    }
    Ok(())
}

/// Reads the columns and primary key of every unmanaged table; a table that does not exist is an
/// error now rather than at the first query.
pub async fn introspect_unmanaged(database: &Database, schema: &mut Schema) -> Result<()> {
    let unmanaged: Vec<&mut Table> = schema
        .tables
        .iter_mut()
        .filter(|table| !table.managed)
        .collect();
    if unmanaged.is_empty() {
        return Ok(());
    }
    let client = database.connection().await?;
    for table in unmanaged {
        let relation = quote_ident(&table.name)?;
        let columns = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&relation],
            )
            .await?;
        if columns.is_empty() {
            return Err(ConvoyError::InvalidArgs(format!(
                "the unmanaged table {} does not exist in the database (Convoy never creates unmanaged tables)",
                table.name
            )));
        }
        table.columns = columns
            .iter()
            .map(|row| Column {
                name: row.get(0),
                sql_type: row.get(1),
            })
            .collect();
        for field in &table.fields {
            if !table.columns.iter().any(|column| &column.name == field) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "the unmanaged table {} has no column {field}, which the schema names",
                    table.name
                )));
            }
        }
        table.primary_key = client
            .query(
                "SELECT a.attname::text FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
                &[&relation],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
    }
    Ok(())
}

/// Each graduation under way: its table, its step and the columns of its plan.
async fn graduations(
    client: &tokio_postgres::Client,
) -> Result<Vec<(String, String, Vec<FieldColumn>)>> {
    let exists: bool = client
        .query_one("SELECT to_regclass('convoy.graduations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    client
        .query(
            "SELECT table_name, step, plan::text FROM convoy.graduations",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            let plan: String = row.get(2);
            let columns = serde_json::from_str(&plan).map_err(|error| {
                ConvoyError::Internal(format!(
                    "convoy.graduations holds a plan Convoy cannot read: {error}"
                ))
            })?;
            Ok((row.get(0), row.get(1), columns))
        })
        .collect()
}
