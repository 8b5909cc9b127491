//! Documents cross the core as JSON text, never as parsed values: Postgres sends JSONB in its
//! binary format (a version byte, then the text), the core splices in the system fields, and
//! JavaScript parses the result once.

use std::borrow::Cow;
use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ConvoyError, Result};
use crate::plan::RowShape;

/// The only JSONB binary format version Postgres has.
const JSONB_VERSION: u8 = 1;

/// JSONB read as its text, without parsing.
pub struct JsonbText<'a>(pub &'a str);

impl<'a> FromSql<'a> for JsonbText<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn Error + Sync + Send>> {
        let text = match (ty, raw.split_first()) {
            (&Type::JSONB, Some((&JSONB_VERSION, rest))) => rest,
            (&Type::JSONB, _) => return Err("unsupported JSONB format version".into()),
            _ => raw,
        };
        Ok(Self(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }
}

/// JSON text bound as a JSONB parameter; Postgres parses and checks it.
#[derive(Debug)]
pub struct JsonbParam<'a>(pub &'a str);

impl ToSql for JsonbParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[JSONB_VERSION]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }

    to_sql_checked!();
}

/// Milliseconds since the Unix epoch, with microseconds as the fraction (what `_creationTime` is).
pub fn epoch_millis(time: SystemTime) -> f64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    since.as_secs() as f64 * 1000.0 + f64::from(since.subsec_micros()) / 1000.0
}

/// The creation time encoded in a `UUIDv7` (its first 48 bits are milliseconds since the epoch).
pub fn creation_time_of(id: &Uuid) -> SystemTime {
    match id.get_timestamp() {
        Some(timestamp) => {
            let (seconds, nanos) = timestamp.to_unix();
            UNIX_EPOCH + Duration::new(seconds, nanos)
        }
        None => SystemTime::now(),
    }
}

/// A stored document's parts: the row's `id`, `created_at` (as `_creationTime`) and `data` (the
/// row's own text, or written by the core from a relational row's columns).
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    pub id: Uuid,
    pub creation_time: f64,
    pub data: Cow<'a, str>,
}

impl<'a> Parts<'a> {
    /// The parts of a row whose columns `id, data, created_at` start at `first`.
    pub fn of_row(row: &'a Row, first: usize) -> Result<Self> {
        let id: Uuid = row.try_get(first).map_err(internal)?;
        let data: JsonbText = row.try_get(first + 1).map_err(internal)?;
        let created_at: SystemTime = row.try_get(first + 2).map_err(internal)?;
        Ok(Self {
            id,
            creation_time: epoch_millis(created_at),
            data: Cow::Borrowed(data.0),
        })
    }

    /// The parts of a row of a query's `shape` (`id, data, created_at` first, or a relational
    /// row's columns).
    pub fn of_shaped_row(row: &'a Row, shape: &RowShape) -> Result<Self> {
        let RowShape::Columns { first, shape } = shape else {
            return Self::of_row(row, 0);
        };
        let id: Uuid = row.try_get(0).map_err(internal)?;
        let created_at: SystemTime = row.try_get(2).map_err(internal)?;
        Ok(Self {
            id,
            creation_time: epoch_millis(created_at),
            data: Cow::Owned(shape.document(row, *first)?),
        })
    }

    /// Appends `{"_id": …, "_creationTime": …, …fields}`.
    pub fn append_to(&self, out: &mut String) -> Result<()> {
        let Some(rest) = self.data.trim_start().strip_prefix('{') else {
            return Err(ConvoyError::Internal(format!(
                "document {} is not a JSON object; was it written outside Convoy?",
                self.id
            )));
        };
        out.push_str("{\"_id\":\"");
        out.push_str(
            self.id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        );
        out.push_str("\",\"_creationTime\":");
        out.push_str(&self.creation_time.to_string());
        if !rest.trim_start().starts_with('}') {
            out.push(',');
        }
        out.push_str(rest);
        Ok(())
    }

    pub fn to_json(&self) -> Result<String> {
        let mut out = String::with_capacity(self.data.len() + 72);
        self.append_to(&mut out)?;
        Ok(out)
    }
}

/// Appends `{"_id": …, "_creationTime": …, …fields}` for a row whose columns `id, data,
/// created_at` start at `first`.
pub fn append_document(out: &mut String, row: &Row, first: usize) -> Result<()> {
    Parts::of_row(row, first)?.append_to(out)
}

/// A JSON array of the rows' documents; `each` sees every document's parts on the way.
pub fn documents_json(
    rows: &[Row],
    shape: &RowShape,
    mut each: impl FnMut(&Parts),
) -> Result<String> {
    let mut out = String::with_capacity(rows.iter().map(|row| row.len() * 64).sum::<usize>() + 2);
    out.push('[');
    for (position, row) in rows.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let parts = Parts::of_shaped_row(row, shape)?;
        each(&parts);
        parts.append_to(&mut out)?;
    }
    out.push(']');
    Ok(out)
}

/// Whether JSON text holds a NUL character (`\u0000`), which Postgres refuses in JSONB.
pub fn has_nul(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            0 => return true,
            b'\\' if bytes.get(at + 1) == Some(&b'u') => {
                if bytes.get(at + 2..at + 6) == Some(b"0000".as_slice()) {
                    return true;
                }
                at += 6;
            }
            // Any other escape is two bytes; skipping both keeps `\\u0000` (a backslash, then
            // the text "u0000") from looking like a NUL.
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    false
}

/// A JSON array of rows that each hold one document as JSON text (unmanaged tables' rows).
pub fn json_texts(rows: &[Row]) -> Result<String> {
    let mut out = String::from("[");
    for (position, row) in rows.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let text: &str = row.try_get(0).map_err(internal)?;
        out.push_str(text);
    }
    out.push(']');
    Ok(out)
}

fn internal(error: tokio_postgres::Error) -> ConvoyError {
    ConvoyError::Internal(format!("unexpected row shape: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_time_comes_from_the_uuid() {
        let id = Uuid::now_v7();
        let from_id = epoch_millis(creation_time_of(&id));
        let now = epoch_millis(SystemTime::now());
        assert!((now - from_id).abs() < 1000.0, "{now} vs {from_id}");
    }

    #[test]
    fn finds_nul_characters_and_only_them() {
        assert!(has_nul(r#"{"a":"x\u0000y"}"#));
        assert!(has_nul("{\"a\":\"x\0\"}"));
        assert!(
            !has_nul(r#"{"a":"x\\u0000y"}"#),
            "an escaped backslash, then text"
        );
        assert!(!has_nul(r#"{"a":"\u0001\n\"\\"}"#));
        assert!(has_nul(r#"{"a":"\\\u0000"}"#));
    }
}
