//! A relational row's document written by the core from its columns, as Postgres prints the
//! `jsonb_build_object` of them (`columns::document_expr`): keys in JSONB's order, Postgres's
//! spacing and escapes, numbers as JSONB's numeric prints them. So Postgres sends a query's rows
//! as their columns are, in binary, and builds and prints no JSON for them: building each
//! document was most of what a relational read cost Postgres beyond a document table's.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio_postgres::Row;
use uuid::Uuid;

use super::statement::planned;
use crate::document::JsonbText;
use crate::error::{ConvoyError, Result};
use crate::schema::{ColumnKind, Stage, Table};
use crate::sql::quote_ident;

/// A relational table's field columns as a read selects them, in the order of their documents'
/// keys.
#[derive(Debug, PartialEq, Eq)]
pub struct ColumnsShape {
    /// `, t."column"` for each field, in `fields`' order: what a `SELECT` adds for them.
    pub select: String,
    fields: Vec<ShapeField>,
}

#[derive(Debug, PartialEq, Eq)]
struct ShapeField {
    /// The key as JSON: quoted and escaped.
    key: String,
    kind: ColumnKind,
    /// SQL NULL is JSON `null` (a required, nullable field); otherwise the field is missing.
    null_is_json_null: bool,
}

/// The shape of `table`'s rows, planned once.
pub fn shape_of(table: &Table) -> Result<Arc<ColumnsShape>> {
    planned(&table.planned.column_shape, Stage::Relational, || {
        Ok(Arc::new(plan_shape(table)?))
    })
}

fn plan_shape(table: &Table) -> Result<ColumnsShape> {
    let mut columns: Vec<_> = table.field_columns.iter().collect();
    // JSONB keeps an object's keys shorter first, then bytewise.
    columns.sort_by(|a, b| {
        (a.field.len(), a.field.as_bytes()).cmp(&(b.field.len(), b.field.as_bytes()))
    });
    let mut select = String::new();
    for column in &columns {
        write!(select, ", t.{}", quote_ident(&column.column)?).expect("writing to a String");
    }
    let fields = columns
        .iter()
        .map(|column| {
            let mut key = String::new();
            escape_string(&mut key, &column.field);
            ShapeField {
                key,
                kind: column.kind,
                null_is_json_null: column.null_is_json_null(),
            }
        })
        .collect();
    Ok(ColumnsShape { select, fields })
}

impl ColumnsShape {
    /// The document of a row whose field columns start at `first`, as JSON text.
    pub fn document(&self, row: &Row, first: usize) -> Result<String> {
        let mut out = String::with_capacity(64 * self.fields.len() + 2);
        out.push('{');
        let mut written = 0;
        for (at, field) in self.fields.iter().enumerate() {
            let index = first + at;
            let start = out.len();
            out.push_str(if written == 0 { "" } else { ", " });
            out.push_str(&field.key);
            out.push_str(": ");
            if !write_value(&mut out, row, index, field.kind)? {
                if field.null_is_json_null {
                    out.push_str("null");
                } else {
                    // SQL NULL: the field is missing.
                    out.truncate(start);
                    continue;
                }
            }
            written += 1;
        }
        out.push('}');
        Ok(out)
    }
}

fn column<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index)
        .map_err(|error| ConvoyError::Internal(format!("reading column {index}: {error}")))
}

/// Writes the column's value as JSONB prints it; `false` when it is SQL NULL.
fn write_value(out: &mut String, row: &Row, index: usize, kind: ColumnKind) -> Result<bool> {
    match kind {
        ColumnKind::Text => match column::<Option<&str>>(row, index)? {
            Some(text) => escape_string(out, text),
            None => return Ok(false),
        },
        ColumnKind::Double => match column::<Option<f64>>(row, index)? {
            Some(number) => write_double(out, number),
            None => return Ok(false),
        },
        ColumnKind::Bigint => match column::<Option<i64>>(row, index)? {
            Some(number) => write!(out, "{number}").expect("writing to a String"),
            None => return Ok(false),
        },
        ColumnKind::Boolean => match column::<Option<bool>>(row, index)? {
            Some(flag) => out.push_str(if flag { "true" } else { "false" }),
            None => return Ok(false),
        },
        ColumnKind::Uuid => match column::<Option<Uuid>>(row, index)? {
            Some(id) => {
                out.push('"');
                out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
                out.push('"');
            }
            None => return Ok(false),
        },
        ColumnKind::Jsonb => match column::<Option<JsonbText>>(row, index)? {
            Some(json) => out.push_str(json.0),
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// A `double precision` as JSONB holds it: Postgres turns the float's shortest exact digits into
/// a numeric, printed without an exponent (Rust's `Display` prints the same digits the same way),
/// with no negative zero; NaN and the infinities, which a numeric cannot hold, as strings.
fn write_double(out: &mut String, number: f64) {
    if number.is_nan() {
        out.push_str("\"NaN\"");
    } else if number.is_infinite() {
        out.push_str(if number > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if number == 0.0 {
        out.push('0');
    } else {
        write!(out, "{number}").expect("writing to a String");
    }
}

/// A JSON string as Postgres's `escape_json` writes it.
fn escape_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            control if u32::from(control) < 0x20 => {
                write!(out, "\\u{:04x}", u32::from(control)).expect("writing to a String");
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_jsonb_numerics_do() {
        let printed = |number: f64| {
            let mut out = String::new();
            write_double(&mut out, number);
            out
        };
        assert_eq!(printed(1.5), "1.5");
        assert_eq!(printed(1_759_769_499_549.0), "1759769499549");
        assert_eq!(printed(1e21), "1000000000000000000000");
        assert_eq!(printed(1.5e-7), "0.00000015");
        assert_eq!(printed(-0.0), "0");
        assert_eq!(printed(f64::NAN), "\"NaN\"");
        assert_eq!(printed(f64::NEG_INFINITY), "\"-Infinity\"");
    }

    #[test]
    fn strings_escape_as_postgres_does() {
        let mut out = String::new();
        escape_string(&mut out, "a\"b\\c\n\u{1}é/");
        assert_eq!(out, r#""a\"b\\c\n\u0001é/""#);
    }
}
