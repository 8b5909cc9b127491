//! The statements that write an unmanaged table's rows, named by their one-column primary key
//! (the twins of `writes` for document tables). The document travels as one JSONB parameter and
//! `jsonb_populate_record` turns it into the table's own column types, so every column keeps the
//! type the user gave it.

use crate::error::{ConvoyError, Result};
use crate::schema::Table;
use crate::sql::quote_ident;

/// The table named, when it is unmanaged.
pub fn unmanaged_table<'a>(schema: &'a crate::schema::Schema, name: &str) -> Result<&'a Table> {
    let table = schema.table(name)?;
    if table.managed {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {name:?} is a Convoy table: its documents are written by id"
        )));
    }
    Ok(table)
}

/// An unmanaged table's primary key column and its type, when the key is one column.
fn one_column_key(table: &Table) -> Result<(&str, &str)> {
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

/// The quoted columns of `names`, each one the table has.
fn columns_of<'a>(table: &Table, names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>> {
    names
        .into_iter()
        .map(|name| {
            if !table.columns.iter().any(|column| column.name == name) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {name:?}",
                    table.name
                )));
            }
            quote_ident(name)
        })
        .collect()
}

/// Inserts a row with only the columns `fields` names (`$1`: the document), so the table's own
/// defaults (serials, `now()`) fill the rest; returns the primary key as text (NULL without one).
/// With no column given it inserts the defaults alone and takes no parameter: `false` says so.
pub fn plan_insert_row<'a>(
    table: &Table,
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<(String, bool)> {
    let columns = columns_of(table, fields)?;
    let relation = quote_ident(&table.name)?;
    let returning = match table.primary_key.as_slice() {
        [key] => format!("{}::text", quote_ident(key)?),
        _ => "NULL::text".to_owned(),
    };
    if columns.is_empty() {
        return Ok((
            format!("INSERT INTO {relation} DEFAULT VALUES RETURNING {returning}"),
            false,
        ));
    }
    let list = columns.join(", ");
    Ok((
        format!(
            "INSERT INTO {relation} ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $1::jsonb) RETURNING {returning}"
        ),
        true,
    ))
}

/// Writes the columns `fields` names (the key excepted) of the row whose key is `$1` (as JSON),
/// from the document `$2`; returns a row when there was one. With no column to write it only
/// checks that the row is there, and takes `$1` alone: `false` says so.
pub fn plan_update_row<'a>(
    table: &Table,
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<(String, bool)> {
    let (key, key_type) = one_column_key(table)?;
    let columns = columns_of(table, fields.into_iter().filter(|name| *name != key))?;
    let relation = quote_ident(&table.name)?;
    let key = quote_ident(key)?;
    if columns.is_empty() {
        return Ok((
            format!("SELECT 1 FROM {relation} WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type}"),
            false,
        ));
    }
    let list = columns.join(", ");
    Ok((
        format!(
            "UPDATE {relation} SET ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $2::jsonb)) \
             WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1"
        ),
        true,
    ))
}

/// Deletes the row whose key is `$1` (as JSON); returns a row when there was one.
pub fn plan_delete_row(table: &Table) -> Result<String> {
    let (key, key_type) = one_column_key(table)?;
    Ok(format!(
        "DELETE FROM {} WHERE {} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1",
        quote_ident(&table.name)?,
        quote_ident(key)?
    ))
}
