//! `ctx.db.raw`: the app's own SQL, with every interpolated value a bind parameter. Parameters
//! arrive as JSON and are encoded as the type Postgres inferred for them; rows leave as JSON
//! objects keyed by column name.

use std::error::Error;
use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ConvoyError, Result};
use crate::schema::Schema;

type BoxError = Box<dyn Error + Sync + Send>;

/// Microseconds between the Unix epoch and Postgres's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A JSON value bound as whatever type the statement's parameter has.
#[derive(Debug)]
pub struct JsonParam<'a>(pub &'a Value);

fn mismatch(value: &Value, ty: &Type) -> BoxError {
    format!("{value} cannot be bound as {ty}; cast the parameter in SQL, e.g. ${{…}}::text").into()
}

impl ToSql for JsonParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        let value = self.0;
        if value.is_null() {
            return Ok(IsNull::Yes);
        }
        match *ty {
            Type::BOOL => out.put_u8(u8::from(
                value.as_bool().ok_or_else(|| mismatch(value, ty))?,
            )),
            Type::INT2 => out.put_i16(
                integer(value, ty)?
                    .try_into()
                    .map_err(|_| mismatch(value, ty))?,
            ),
            Type::INT4 => out.put_i32(
                integer(value, ty)?
                    .try_into()
                    .map_err(|_| mismatch(value, ty))?,
            ),
            Type::INT8 => out.put_i64(integer(value, ty)?),
            Type::FLOAT4 => out.put_f32(value.as_f64().ok_or_else(|| mismatch(value, ty))? as f32),
            Type::FLOAT8 => out.put_f64(value.as_f64().ok_or_else(|| mismatch(value, ty))?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                out.put_slice(
                    value
                        .as_str()
                        .ok_or_else(|| mismatch(value, ty))?
                        .as_bytes(),
                );
            }
            Type::JSON | Type::JSONB => {
                if *ty == Type::JSONB {
                    out.put_u8(1);
                }
                out.put_slice(value.to_string().as_bytes());
            }
            Type::UUID => {
                let id = value.as_str().and_then(|text| Uuid::parse_str(text).ok());
                out.put_slice(id.ok_or_else(|| mismatch(value, ty))?.as_bytes());
            }
            // Times cross as milliseconds since the Unix epoch, as `_creationTime` does.
            Type::TIMESTAMPTZ | Type::TIMESTAMP => {
                let millis = value.as_f64().ok_or_else(|| mismatch(value, ty))?;
                out.put_i64((millis * 1000.0) as i64 - POSTGRES_EPOCH_MICROS);
            }
            _ => return Err(mismatch(value, ty)),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn integer(value: &Value, ty: &Type) -> std::result::Result<i64, BoxError> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                .map(|n| n as i64)
        })
        .ok_or_else(|| mismatch(value, ty))
}

/// One column of a row, as JSON text.
struct JsonColumn(String);

impl<'a> FromSql<'a> for JsonColumn {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        let json = match *ty {
            Type::BOOL => bool::from_sql(ty, raw)?.to_string(),
            Type::INT2 => i16::from_sql(ty, raw)?.to_string(),
            Type::INT4 => i32::from_sql(ty, raw)?.to_string(),
            Type::INT8 => i64::from_sql(ty, raw)?.to_string(),
            Type::OID => u32::from_sql(ty, raw)?.to_string(),
            Type::FLOAT4 => finite(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => finite(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Value::from(<&str>::from_sql(ty, raw)?).to_string()
            }
            Type::JSON => std::str::from_utf8(raw)?.to_owned(),
            Type::JSONB => std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_owned(),
            Type::UUID => format!("\"{}\"", Uuid::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ | Type::TIMESTAMP => {
                let micros = i64::from_sql(&Type::INT8, raw)? + POSTGRES_EPOCH_MICROS;
                finite(micros as f64 / 1000.0)
            }
            _ => {
                return Err(format!(
                    "columns of type {ty} are not converted yet; cast it, e.g. column::text"
                )
                .into())
            }
        };
        Ok(Self(json))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Self("null".to_owned()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn finite(number: f64) -> String {
    // JSON has no NaN or infinity.
    if number.is_finite() {
        number.to_string()
    } else {
        "null".to_owned()
    }
}

/// Postgres's binary NUMERIC (base-10000 digits) as a JSON number.
fn numeric(raw: &[u8]) -> std::result::Result<String, BoxError> {
    let word = |index: usize| -> std::result::Result<i16, BoxError> {
        let bytes = raw
            .get(index * 2..index * 2 + 2)
            .ok_or("truncated numeric")?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let digits = usize::try_from(word(0)?)?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let scale = usize::try_from(word(3)?)?;
    if sign == 0xC000 {
        return Ok("null".to_owned()); // NaN
    }
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    // Integer part: groups with weight ≥ 0.
    if weight < 0 {
        text.push('0');
    } else {
        for group in 0..=weight {
            let value = if (group as usize) < digits {
                word(4 + group as usize)?
            } else {
                0
            };
            if group == 0 {
                write!(text, "{value}")?;
            } else {
                write!(text, "{value:04}")?;
            }
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut group = weight + 1;
        while fraction.len() < scale {
            let value = if group >= 0 && (group as usize) < digits {
                word(4 + group as usize)?
            } else {
                0
            };
            write!(fraction, "{value:04}")?;
            group += 1;
        }
        fraction.truncate(scale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// The rows as a JSON array of objects, keyed by column name.
pub fn rows_json(rows: &[Row]) -> Result<String> {
    let mut out = String::from("[");
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push('{');
        for (position, column) in row.columns().iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            let value: JsonColumn = row.try_get(position).map_err(|error| {
                ConvoyError::Internal(format!(
                    "raw SQL: column {}: {}",
                    column.name(),
                    source_of(&error)
                ))
            })?;
            out.push_str(&Value::from(column.name()).to_string());
            out.push(':');
            out.push_str(&value.0);
        }
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

fn source_of(error: &tokio_postgres::Error) -> String {
    error
        .source()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

/// Turns a failure of the app's SQL into an error that helps: a parameter that cannot be bound
/// names itself, and a column that is really a document field shows how to reach it.
pub fn explain_failure(error: tokio_postgres::Error, schema: &Schema) -> ConvoyError {
    if let Some(db_error) = error.as_db_error() {
        if *db_error.code() == tokio_postgres::error::SqlState::UNDEFINED_COLUMN {
            let column = db_error.message().split('"').nth(1).unwrap_or_default();
            if let Some(table) = schema
                .managed_tables()
                .filter(|table| table.stage == crate::schema::Stage::Documents)
                .find(|table| table.fields.iter().any(|field| field == column))
            {
                // INVALID_ARGS, so that production's clients see the hint too (SPEC §5).
                return ConvoyError::InvalidArgs(format!(
                    "raw SQL: {}. {column} is a field of the managed table {}, stored in its data column: \
                     write data->>'{column}' for its text, or (data->'{column}') for its JSON value",
                    db_error.message(),
                    table.name
                ));
            }
            if let Some(hint) = relational_hint(column, schema) {
                return ConvoyError::InvalidArgs(format!(
                    "raw SQL: {}. {hint}",
                    db_error.message()
                ));
            }
            // The app's own SQL names a column that is not there: its mistake, not a stage change.
            return ConvoyError::Internal(format!("database error: {}", db_error.message()));
        }
        return ConvoyError::from(error);
    }
    if error.to_string().starts_with("error serializing parameter") {
        // A value that cannot be bound as its parameter's type.
        return ConvoyError::InvalidArgs(format!("raw SQL: {error}: {}", source_of(&error)));
    }
    ConvoyError::from(error)
}

/// What to write instead, when raw SQL names a relational table's field by its name (unquoted, so
/// Postgres folded it to lower case) or reaches for `data`, which relational tables do not have.
fn relational_hint(column: &str, schema: &Schema) -> Option<String> {
    let relational: Vec<&crate::schema::Table> = schema
        .managed_tables()
        .filter(|table| table.stage == crate::schema::Stage::Relational)
        .collect();
    if column == "data" && !relational.is_empty() {
        let names: Vec<&str> = relational.iter().map(|table| table.name.as_str()).collect();
        return Some(format!(
            "{} {} relational: each field is a column of its own (status, user_id), not in data",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" }
        ));
    }
    relational.iter().find_map(|table| {
        table
            .field_columns
            .iter()
            .find(|field| field.field.to_lowercase() == column && field.column != column)
            .map(|field| {
                format!(
                    "{} of the relational table {} is the column {}",
                    field.field, table.name, field.column
                )
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(digits: &[i16], weight: i16, sign: u16, scale: i16) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as i16, weight, sign as i16, scale]
            .iter()
            .chain(digits)
        {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_read_as_json_numbers() {
        assert_eq!(
            numeric(&numeric_bytes(&[12, 3456], 1, 0, 0)).unwrap(),
            "123456"
        );
        assert_eq!(
            numeric(&numeric_bytes(&[1, 2500], 0, 0x4000, 2)).unwrap(),
            "-1.25"
        );
        assert_eq!(numeric(&numeric_bytes(&[5000], -1, 0, 1)).unwrap(), "0.5");
        assert_eq!(numeric(&numeric_bytes(&[], 0, 0, 0)).unwrap(), "0");
        assert_eq!(numeric(&numeric_bytes(&[7], 2, 0, 0)).unwrap(), "700000000");
    }
}
