//! Writes to the rows of unmanaged (existing relational) tables, named by their primary key; the
//! SQL comes from `plan::rows`.

use super::writes::wrote_table;
use super::Engine;
use crate::document::JsonbParam;
use crate::error::{ConvoyError, Result};
use crate::plan::rows::{plan_delete_row, plan_insert_row, plan_update_row, unmanaged_table};
use crate::schema::Table;

fn document_of(document_json: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(document_json).map_err(|error| {
        ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
    })
}

impl Engine {
    /// An insert into an existing relational table: only the given columns, so the table's own
    /// defaults (serials, `now()`) fill the rest. Returns the primary key as text, or "" without one.
    pub(super) async fn insert_unmanaged(
        &self,
        call_id: u32,
        table: &Table,
        document_json: &str,
    ) -> Result<String> {
        let document = document_of(document_json)?;
        let (sql, takes_document) = plan_insert_row(table, document.keys().map(String::as_str))?;
        let call = self.writing_call(call_id)?;
        let document = JsonbParam(document_json);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if takes_document {
            vec![&document]
        } else {
            Vec::new()
        };
        let rows = self
            .run_with(&call, &sql, &params, ConvoyError::from)
            .await?;
        wrote_table(&call, &table.name);
        let id: Option<String> = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(id.unwrap_or_default())
    }

    /// Writes columns of an unmanaged table's row, found by its one-column primary key (`key`): the fields `document_json` names, or with `every_field` all the fields
    /// the schema declares (those it leaves out become NULL). A missing row is `NOT_FOUND`.
    pub async fn update_unmanaged(
        &self,
        call_id: u32,
        table: &str,
        key: &serde_json::Value,
        document_json: &str,
        every_field: bool,
    ) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let document = document_of(document_json)?;
        let (sql, takes_document) = if every_field {
            plan_update_row(table, table.fields.iter().map(String::as_str))?
        } else {
            plan_update_row(table, document.keys().map(String::as_str))?
        };
        let document = JsonbParam(document_json);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if takes_document {
            vec![key, &document]
        } else {
            vec![key]
        };
        self.write_named_row(call_id, table, &sql, &params, key)
            .await
    }

    /// Deletes an unmanaged table's row by its one-column primary key; a missing one is
    /// `NOT_FOUND`.
    pub async fn delete_unmanaged(
        &self,
        call_id: u32,
        table: &str,
        key: &serde_json::Value,
    ) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let sql = plan_delete_row(table)?;
        self.write_named_row(call_id, table, &sql, &[key], key)
            .await
    }

    /// Runs a statement that writes the unmanaged row `key` names and answers a row if it
    /// found one: `NOT_FOUND` if not.
    async fn write_named_row(
        &self,
        call_id: u32,
        table: &Table,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        key: &serde_json::Value,
    ) -> Result<()> {
        let call = self.writing_call(call_id)?;
        let rows = self.run_with(&call, sql, params, ConvoyError::from).await?;
        if rows.is_empty() {
            return Err(ConvoyError::NotFound(format!(
                "there is no row of {} with primary key {key}",
                table.name
            )));
        }
        wrote_table(&call, &table.name);
        Ok(())
    }
}
