//! A relational table's new rows sent as typed columns: each field's values as one array of its
//! column's own type, which Postgres stores as they come — no JSONB document to parse, no field
//! to take out of it, no cast. Group commit's lone inserts, the commonest write, go this way
//! (`group_commit`).
//!
//! A value is sent typed only where its conversion here is exactly what Postgres's own
//! `(document->>'field')::type` gives. Anything else — a field the table has no column for, a
//! string in a number column, an integer past `bigint`, a uuid spelt otherwise than
//! `8-4-4-4-12`, a number Postgres would call out of range, a key written with escapes or twice — and the
//! batch goes as JSONB documents instead (`plan_insert_rows`), which Postgres converts itself:
//! the same rows, the same errors.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::statement::planned;
use super::storage::{managed_table, Layout};
use crate::document::JsonbParam;
use crate::error::Result;
use crate::schema::{ColumnKind, Schema, Stage, Table};
use crate::sql::quote_ident;

/// The statement that inserts a relational table's rows from typed arrays, and the fields whose
/// values fill them: `$1` ids, `$2` creation times, then one array per field column.
#[derive(Debug)]
pub struct ColumnsInsert {
    pub sql: String,
    columns: Vec<(String, ColumnKind)>,
}

/// The typed insert of `table`, planned once; `None` while it is written as documents.
pub fn plan_insert_columns(schema: &Schema, table: &str) -> Result<Option<Arc<ColumnsInsert>>> {
    let table = managed_table(schema, table)?;
    if Layout::for_writes(table) != Layout::Relational {
        return Ok(None);
    }
    planned(&table.planned.insert_columns, Stage::Relational, || {
        Ok(Arc::new(columns_insert(table)?))
    })
    .map(Some)
}

fn columns_insert(table: &Table) -> Result<ColumnsInsert> {
    let mut names = String::new();
    let mut arrays = String::new();
    let mut aliases = String::new();
    let mut values = String::new();
    for (at, column) in table.field_columns.iter().enumerate() {
        // Aliases of their own: a column's name may be anything, `id` and `created_at` aside.
        let name = quote_ident(&column.column)?;
        let kind = column.kind.sql();
        write!(names, ", {name}").expect("writing to a String");
        write!(arrays, ", ${}::{kind}[]", at + 3).expect("writing to a String");
        write!(aliases, ", f{at}").expect("writing to a String");
        write!(values, ", incoming.f{at}").expect("writing to a String");
    }
    Ok(ColumnsInsert {
        sql: format!(
            "INSERT INTO {} (id, created_at, updated_at{names}) \
             SELECT incoming.id, incoming.created_at, incoming.created_at{values} \
             FROM unnest($1::uuid[], $2::timestamptz[]{arrays}) AS incoming (id, created_at{aliases})",
            quote_ident(&table.name)?
        ),
        columns: table
            .field_columns
            .iter()
            .map(|column| (column.field.clone(), column.kind))
            .collect(),
    })
}

/// One field column's values, a row each, in its column's type (`None` is SQL NULL).
#[derive(Debug)]
pub enum ColumnValues<'a> {
    Text(Vec<Option<String>>),
    Double(Vec<Option<f64>>),
    Bigint(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Uuid(Vec<Option<Uuid>>),
    Jsonb(Vec<Option<JsonbParam<'a>>>),
}

impl ColumnValues<'_> {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(values) => values,
            Self::Double(values) => values,
            Self::Bigint(values) => values,
            Self::Boolean(values) => values,
            Self::Uuid(values) => values,
            Self::Jsonb(values) => values,
        }
    }
}

impl ColumnsInsert {
    /// Every field column's values for these documents (JSON object texts), or `None` when one
    /// of them holds a value this cannot send typed exactly as Postgres would convert it.
    pub fn values<'a>(&self, documents: &[&'a str]) -> Option<Vec<ColumnValues<'a>>> {
        let mut columns: Vec<ColumnValues<'a>> = self
            .columns
            .iter()
            .map(|(_, kind)| empty(*kind, documents.len()))
            .collect();
        let mut row: Vec<Option<&'a str>> = vec![None; self.columns.len()];
        for document in documents {
            let Fields(fields) = serde_json::from_str(document).ok()?;
            row.fill(None);
            for (key, raw) in fields {
                // An undeclared key goes as a document; so does a key given twice, since
                // Postgres checks the value it drops too.
                let at = self.columns.iter().position(|(field, _)| field == key)?;
                if row[at].replace(raw.get()).is_some() {
                    return None;
                }
            }
            for (raw, values) in row.iter().zip(&mut columns) {
                push(values, *raw)?;
            }
        }
        Some(columns)
    }
}

fn empty<'a>(kind: ColumnKind, rows: usize) -> ColumnValues<'a> {
    match kind {
        ColumnKind::Text => ColumnValues::Text(Vec::with_capacity(rows)),
        ColumnKind::Double => ColumnValues::Double(Vec::with_capacity(rows)),
        ColumnKind::Bigint => ColumnValues::Bigint(Vec::with_capacity(rows)),
        ColumnKind::Boolean => ColumnValues::Boolean(Vec::with_capacity(rows)),
        ColumnKind::Uuid => ColumnValues::Uuid(Vec::with_capacity(rows)),
        ColumnKind::Jsonb => ColumnValues::Jsonb(Vec::with_capacity(rows)),
    }
}

/// Adds one row's value (its raw JSON, or `None` when the field is missing) to its column.
fn push<'a>(values: &mut ColumnValues<'a>, raw: Option<&'a str>) -> Option<()> {
    // A missing field and JSON `null` are both SQL NULL in a typed column (`->>` gives NULL for
    // both); a `jsonb` column keeps `null` as JSON's (`->` gives it).
    let typed = raw.filter(|raw| *raw != "null");
    match values {
        ColumnValues::Jsonb(values) => values.push(raw.map(JsonbParam)),
        ColumnValues::Text(values) => push_converted(values, typed, text)?,
        ColumnValues::Double(values) => push_converted(values, typed, double)?,
        ColumnValues::Bigint(values) => push_converted(values, typed, bigint)?,
        ColumnValues::Boolean(values) => push_converted(values, typed, boolean)?,
        ColumnValues::Uuid(values) => push_converted(values, typed, uuid)?,
    }
    Some(())
}

/// Adds SQL NULL, or the value converted; `None` when it cannot be.
fn push_converted<T>(
    values: &mut Vec<Option<T>>,
    typed: Option<&str>,
    convert: fn(&str) -> Option<T>,
) -> Option<()> {
    let value = match typed {
        None => None,
        Some(raw) => Some(convert(raw)?),
    };
    values.push(value);
    Some(())
}

/// A JSON string's text (escapes decoded; a lone surrogate, which JSONB refuses, is not sent).
fn text(raw: &str) -> Option<String> {
    raw.starts_with('"')
        .then(|| serde_json::from_str(raw).ok())
        .flatten()
}

/// A JSON number as `double precision`: Rust's parse rounds correctly, as Postgres's does. What
/// Postgres refuses as out of range — past `f64`, or a nonzero value that underflows to zero — is
/// not sent; a zero is `0`, never `-0` (JSONB's numeric has no negative zero).
fn double(raw: &str) -> Option<f64> {
    if !raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return None;
    }
    let value: f64 = raw.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        let mantissa = raw.split(['e', 'E']).next().unwrap_or(raw);
        return (!mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'))).then_some(0.0);
    }
    Some(value)
}

/// A JSON number written as an integer, within `bigint` (`5.0` and `1e2` go as documents).
fn bigint(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn boolean(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A JSON string holding a uuid as `8-4-4-4-12` hex digits, either case: the spelling Postgres
/// and this parse alike. Every other spelling goes as a document, for Postgres to judge.
fn uuid(raw: &str) -> Option<Uuid> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let canonical = inner.len() == 36
        && inner.bytes().enumerate().all(|(at, b)| match at {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    canonical.then(|| Uuid::parse_str(inner).ok()).flatten()
}

/// A document's top-level fields as written, in order, each value its raw JSON; a key with
/// escapes in it fails to borrow and sends the batch as documents.
struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_postgres_would_refuse_or_change_are_not_sent_typed() {
        assert_eq!(double("1.5"), Some(1.5));
        assert_eq!(double("1e5"), Some(100_000.0));
        assert_eq!(double("-0"), Some(0.0));
        assert!(double("-0").is_some_and(f64::is_sign_positive));
        assert_eq!(double("0.000e10"), Some(0.0));
        assert_eq!(double("1e400"), None);
        assert_eq!(double("1e-400"), None);
        assert_eq!(double("5e-324"), Some(5e-324));
        assert_eq!(double("\"1.5\""), None);
        assert_eq!(bigint("42"), Some(42));
        assert_eq!(bigint("-0"), Some(0));
        assert_eq!(bigint("5.0"), None);
        assert_eq!(bigint("1e2"), None);
        assert_eq!(bigint("9223372036854775808"), None);
        assert_eq!(bigint("-"), None);
    }

    #[test]
    fn only_the_spelling_both_parse_alike_is_a_typed_uuid() {
        let id = "\"0190b3c1-7c9e-7abc-8def-0123456789ab\"";
        assert!(uuid(id).is_some());
        assert!(uuid(&id.to_uppercase()).is_some());
        assert_eq!(uuid("\"0190b3c17c9e7abc8def0123456789ab\""), None);
        assert_eq!(uuid("\"{0190b3c1-7c9e-7abc-8def-0123456789ab}\""), None);
        assert_eq!(
            uuid("\"urn:uuid:0190b3c1-7c9e-7abc-8def-0123456789ab\""),
            None
        );
        assert_eq!(uuid("\"0190b3c1-7c9e7abc-8def-0123456789ab\""), None);
    }

    #[test]
    fn strings_decode_their_escapes_and_refuse_lone_surrogates() {
        assert_eq!(text(r#""a\"b\u00e9""#).as_deref(), Some("a\"bé"));
        assert_eq!(text(r#""\ud83d\ude00""#).as_deref(), Some("😀"));
        assert_eq!(text(r#""\ud800""#), None);
        assert_eq!(text("12"), None);
    }
}
