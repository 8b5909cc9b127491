//! Writes to the rows of unmanaged (existing relational) tables, named by their primary key.

use super::writes::wrote_table;
use super::Engine;
use crate::document::JsonbParam;
use crate::error::{ConvoyError, Result};
use crate::schema::{Schema, Table};
use crate::sql::quote_ident;

pub(super) fn unmanaged_table<'a>(schema: &'a Schema, name: &str) -> Result<&'a Table> {
    let table = schema.table(name)?;
    if table.managed {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {name:?} is a Convoy table: its documents are written by id"
        )));
    }
    Ok(table)
}

/// An unmanaged table's primary key column and its type, when the key is one column.
pub(super) fn unmanaged_key(table: &Table) -> Result<(&str, &str)> {
    let [key] = table.primary_key.as_slice() else {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {:?} has no primary key of one column, so its rows cannot be named; use ctx.db.raw",
            table.name
        )));
    };
    let column = table
        .columns
        .iter()
        .find(|column| &column.name == key)
        .ok_or_else(|| ConvoyError::Internal(format!("no column {key:?} in {}", table.name)))?;
    Ok((key, &column.sql_type))
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
        let document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(document_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
            })?;
        let mut columns = Vec::with_capacity(document.len());
        for field in document.keys() {
            if !table.columns.iter().any(|column| &column.name == field) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {field:?}",
                    table.name
                )));
            }
            columns.push(quote_ident(field)?);
        }
        let relation = quote_ident(&table.name)?;
        let returning = match table.primary_key.as_slice() {
            [key] => format!("{}::text", quote_ident(key)?),
            _ => "NULL::text".to_owned(),
        };
        let list = columns.join(", ");
        let call = self.writing_call(call_id)?;
        let document = JsonbParam(document_json);
        let rows = if columns.is_empty() {
            let sql = format!("INSERT INTO {relation} DEFAULT VALUES RETURNING {returning}");
            self.run_with(&call, &sql, &[], ConvoyError::from).await?
        } else {
            let sql = format!(
                "INSERT INTO {relation} ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $1::jsonb) RETURNING {returning}"
            );
            self.run_with(&call, &sql, &[&document], ConvoyError::from)
                .await?
        };
        wrote_table(&call, &table.name);
        let id: Option<String> = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(id.unwrap_or_default())
    }

    /// Writes columns of an unmanaged table's row, found by its one-column primary key (`key_json`,
    /// the key as JSON): the fields `document_json` names, or with `every_field` all the fields
    /// the schema declares (those it leaves out become NULL). A missing row is `NOT_FOUND`.
    pub async fn update_unmanaged(
        &self,
        call_id: u32,
        table: &str,
        key_json: &str,
        document_json: &str,
        every_field: bool,
    ) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(document_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
            })?;
        let (key, key_type) = unmanaged_key(table)?;
        let mut names: Vec<&str> = if every_field {
            table.fields.iter().map(String::as_str).collect()
        } else {
            document.keys().map(String::as_str).collect()
        };
        names.retain(|name| *name != key);
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            if !table.columns.iter().any(|column| column.name == name) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {name:?}",
                    table.name
                )));
            }
            columns.push(quote_ident(name)?);
        }
        let relation = quote_ident(&table.name)?;
        let key = quote_ident(key)?;
        let list = columns.join(", ");
        let sql = if columns.is_empty() {
            // Nothing to write: only make sure the row is there.
            format!("SELECT 1 FROM {relation} WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type}")
        } else {
            format!(
                "UPDATE {relation} SET ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $2::jsonb)) \
                 WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1"
            )
        };
        let key_param = JsonbParam(key_json);
        let document = JsonbParam(document_json);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if columns.is_empty() {
            vec![&key_param]
        } else {
            vec![&key_param, &document]
        };
        self.write_named_row(call_id, table, &sql, &params, key_json)
            .await
    }

    /// Deletes an unmanaged table's row by its one-column primary key; a missing one is
    /// `NOT_FOUND`.
    pub async fn delete_unmanaged(&self, call_id: u32, table: &str, key_json: &str) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let (key, key_type) = unmanaged_key(table)?;
        let sql = format!(
            "DELETE FROM {} WHERE {} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1",
            quote_ident(&table.name)?,
            quote_ident(key)?
        );
        self.write_named_row(call_id, table, &sql, &[&JsonbParam(key_json)], key_json)
            .await
    }

    /// Runs a statement that writes the unmanaged row `key_json` names and answers a row if it
    /// found one: `NOT_FOUND` if not.
    pub(super) async fn write_named_row(
        &self,
        call_id: u32,
        table: &Table,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        key_json: &str,
    ) -> Result<()> {
        let call = self.writing_call(call_id)?;
        let rows = self.run_with(&call, sql, params, ConvoyError::from).await?;
        if rows.is_empty() {
            return Err(ConvoyError::NotFound(format!(
                "there is no row of {} with primary key {key_json}",
                table.name
            )));
        }
        wrote_table(&call, &table.name);
        Ok(())
    }
}
