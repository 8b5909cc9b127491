//! Documents cross the core as JSON text, never as parsed values: Postgres sends JSONB in its
//! binary format (a version byte, then the text), the core splices in the system fields, and
//! JavaScript parses the result once.

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::{ConvoyError, Result};

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

/// The creation time encoded in a UUIDv7 (its first 48 bits are milliseconds since the epoch).
pub fn creation_time_of(id: &Uuid) -> SystemTime {
    match id.get_timestamp() {
        Some(timestamp) => {
            let (seconds, nanos) = timestamp.to_unix();
            UNIX_EPOCH + Duration::new(seconds, nanos)
        }
        None => SystemTime::now(),
    }
}

/// Appends `{"_id": …, "_creationTime": …, …fields}` for a row whose columns `id, data,
/// created_at` start at `first`.
pub fn append_document(out: &mut String, row: &Row, first: usize) -> Result<()> {
    let id: Uuid = row.try_get(first).map_err(internal)?;
    let data: JsonbText = row.try_get(first + 1).map_err(internal)?;
    let created_at: SystemTime = row.try_get(first + 2).map_err(internal)?;
    let fields = data.0.trim_start();
    let Some(rest) = fields.strip_prefix('{') else {
        return Err(ConvoyError::Internal(format!(
            "document {id} is not a JSON object; was it written outside Convoy?"
        )));
    };
    out.push_str("{\"_id\":\"");
    out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    out.push_str("\",\"_creationTime\":");
    out.push_str(&epoch_millis(created_at).to_string());
    if !rest.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    Ok(())
}

/// A JSON array of the rows' documents.
pub fn documents_json(rows: &[Row]) -> Result<String> {
    let mut out = String::with_capacity(rows.iter().map(|row| row.len() * 64).sum::<usize>() + 2);
    out.push('[');
    for (position, row) in rows.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        append_document(&mut out, row, 0)?;
    }
    out.push(']');
    Ok(out)
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
}
