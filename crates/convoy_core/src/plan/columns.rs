//! A relational table's fields as typed columns (GRADUATION.md § Mapping): the document read
//! back from them, the columns written from a document, and a column compared with a value
//! exactly as the same field compares in JSONB — so a relational table answers every query as
//! a document table holding the same data does (SPEC §3), while its btree indexes still apply.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;
use uuid::Uuid;

use super::ir::CompareOp;
use super::statement::{Param, Statement};
use crate::document::has_nul;
use crate::error::{ConvoyError, Result};
use crate::schema::{ColumnKind, FieldColumn, Table};
use crate::sql::{quote_ident, quote_literal};

/// `jsonb_build_object` takes at most 100 arguments: 50 fields a call.
const FIELDS_PER_OBJECT: usize = 50;

/// The row's fields as one JSONB object, as a document table keeps them in `data`: a column
/// that is SQL NULL is a missing field (left out), except where NULL is the JSON `null`.
pub(super) fn document_expr(table: &Table) -> Result<String> {
    if table.field_columns.is_empty() {
        return Ok("'{}'::jsonb".to_owned());
    }
    let mut objects = Vec::new();
    for chunk in table.field_columns.chunks(FIELDS_PER_OBJECT) {
        let pairs = chunk
            .iter()
            .map(|column| {
                Ok(format!(
                    "{}, t.{}",
                    quote_literal(&column.field)?,
                    quote_ident(&column.column)?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        objects.push(format!("jsonb_build_object({})", pairs.join(", ")));
    }
    let mut expr = objects.join(" || ");
    // The fields a row may lack; a column the database holds NOT NULL never lacks its field.
    let missing = table
        .field_columns
        .iter()
        .filter(|column| !column.enforced_not_null && !column.null_is_json_null())
        .map(|column| {
            Ok(format!(
                "CASE WHEN t.{} IS NULL THEN {} END",
                quote_ident(&column.column)?,
                quote_literal(&column.field)?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    if !missing.is_empty() {
        write!(
            expr,
            " - array_remove(ARRAY[{}]::text[], NULL)",
            missing.join(", ")
        )
        .expect("writing to a String");
        expr = format!("({expr})");
    }
    Ok(expr)
}

/// The column's value taken from a document (`document` is a JSONB expression): JSON `null`
/// and a missing field are both SQL NULL in a typed column; a `jsonb` column keeps JSON `null`.
pub(crate) fn value_from_document(column: &FieldColumn, document: &str) -> Result<String> {
    let key = quote_literal(&column.field)?;
    Ok(match column.kind {
        ColumnKind::Jsonb => format!("({document}->{key})"),
        ColumnKind::Text => format!("({document}->>{key})"),
        kind => format!("({document}->>{key})::{}", kind.sql()),
    })
}

/// `"column" = value` for every field column of `table`, each value taken from `document`: the
/// assignments of an `UPDATE` that writes a document into its columns.
pub(crate) fn assignments_from_document(table: &Table, document: &str) -> Result<Vec<String>> {
    table
        .field_columns
        .iter()
        .map(|column| {
            Ok(format!(
                "{} = {}",
                quote_ident(&column.column)?,
                value_from_document(column, document)?
            ))
        })
        .collect()
}

/// A typed column compared with a JSON value, with JSONB's answer for every row.
pub(super) fn compare(
    expr: &str,
    kind: ColumnKind,
    null_is_json_null: bool,
    op: CompareOp,
    value: &Value,
    statement: &mut Statement,
) -> Result<String> {
    refuse_nul(value)?;
    let column_rank = kind_rank(kind);
    // Rows that hold a value: the value's kind decides, or the comparison itself.
    let present = if rank(value) == column_rank {
        operands(expr, kind, value, statement)?.map_or(Outcome::Always(false), |(left, right)| {
            let sql = if op == CompareOp::Neq { "<>" } else { op.sql() };
            Outcome::Sql(format!("{left} {sql} {right}"))
        })
    } else {
        Outcome::Always(holds(op, column_rank.cmp(&rank(value))))
    };
    // Rows whose column is NULL: JSON `null` compares as the lowest value; a missing field is
    // unequal to every value and neither less nor greater (`IS DISTINCT FROM` and SQL NULL).
    let null_rows = if null_is_json_null {
        holds(op, 0.cmp(&rank(value)))
    } else {
        op == CompareOp::Neq
    };
    Ok(match (present, null_rows) {
        (Outcome::Always(true), true) => "TRUE".to_owned(),
        (Outcome::Always(true), false) => format!("{expr} IS NOT NULL"),
        (Outcome::Always(false), true) => format!("{expr} IS NULL"),
        (Outcome::Always(false), false) => "FALSE".to_owned(),
        (Outcome::Sql(sql), false) => sql,
        (Outcome::Sql(sql), true) => format!("({expr} IS NULL OR {sql})"),
    })
}

/// The column and the value as two SQL operands of the column's type, so the column's btree
/// indexes apply; `None` when the value cannot be one (and then no row equals it).
pub(super) fn operands(
    expr: &str,
    kind: ColumnKind,
    value: &Value,
    statement: &mut Statement,
) -> Result<Option<(String, String)>> {
    refuse_nul(value)?;
    Ok(typed_operands(expr, kind, value, statement))
}

/// A value holding NUL anywhere is refused, whatever it is compared with: Postgres refuses it in
/// a document (JSONB cannot hold it), and so a relational table must too.
fn refuse_nul(value: &Value) -> Result<()> {
    let holds_nul = match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(_) | Value::Object(_) => has_nul(&value.to_string()),
        _ => false,
    };
    if holds_nul {
        return Err(ConvoyError::InvalidArgs(
            "a value cannot hold the NUL character (\\u0000): Postgres refuses it".into(),
        ));
    }
    Ok(())
}

fn typed_operands(
    expr: &str,
    kind: ColumnKind,
    value: &Value,
    statement: &mut Statement,
) -> Option<(String, String)> {
    let same = |statement: &mut Statement, param: Param, cast: &str| {
        Some((
            expr.to_owned(),
            format!("{}::{cast}", statement.bind(param)),
        ))
    };
    match (kind, value) {
        (ColumnKind::Text, Value::String(text)) => {
            same(statement, Param::Text(text.clone()), "text")
        }
        (ColumnKind::Uuid, Value::String(text)) => match Uuid::parse_str(text) {
            // Ids are stored, and so compared, as their canonical lowercase text.
            Ok(id) if id.hyphenated().to_string() == *text => {
                same(statement, Param::Uuid(id), "uuid")
            }
            _ => Some((
                format!("{expr}::text"),
                format!("{}::text", statement.bind(Param::Text(text.clone()))),
            )),
        },
        (ColumnKind::Double, Value::Number(number)) => {
            same(statement, Param::Float(number.as_f64()?), "float8")
        }
        (ColumnKind::Bigint, Value::Number(number)) => match number.as_i64() {
            Some(integer) => same(statement, Param::Int(integer), "int8"),
            // A fraction, or beyond 64 bits: compared exactly, as JSONB compares numbers.
            None => Some((
                format!("{expr}::numeric"),
                format!(
                    "({}::jsonb)::numeric",
                    statement.bind(Param::Json(value.clone()))
                ),
            )),
        },
        (ColumnKind::Boolean, Value::Bool(flag)) => same(statement, Param::Bool(*flag), "boolean"),
        _ => None,
    }
}

/// The column as JSONB, for comparisons between two fields.
pub(super) fn as_jsonb(expr: &str, null_is_json_null: bool) -> String {
    if null_is_json_null {
        format!("COALESCE(to_jsonb({expr}), 'null'::jsonb)")
    } else {
        format!("to_jsonb({expr})")
    }
}

enum Outcome {
    Always(bool),
    Sql(String),
}

/// JSONB orders values of different kinds: null < string < number < boolean < array < object.
fn rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::String(_) => 1,
        Value::Number(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn kind_rank(kind: ColumnKind) -> u8 {
    match kind {
        ColumnKind::Text | ColumnKind::Uuid => 1,
        ColumnKind::Double | ColumnKind::Bigint => 2,
        ColumnKind::Boolean => 3,
        // `jsonb` columns compare as JSONB themselves and never come here.
        ColumnKind::Jsonb => 4,
    }
}

fn holds(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Neq => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Gte => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Lte => ordering != Ordering::Greater,
    }
}
