//! Pagination with keyset cursors: a page ends at a row's sort key and id, and the next page
//! starts strictly after them. Rows inserted meanwhile never shift a page (no OFFSET), and the
//! cursor names the query it belongs to, so one query's cursor cannot be used with another.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{build_select, order_key, OrderKey, Param, QueryPlan, Statement};
use crate::document::{JsonbText, Parts};
use crate::error::{ConvoyError, Result};
use crate::schema::Schema;

/// The most documents one page may hold.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// What a cursor holds: the query's fingerprint, and the last row's sort key and id.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// A hash of the table, index range, filter and order: a cursor only continues its own query.
    q: String,
    /// The sort key: a JSON value for a document field or an unmanaged table's column,
    /// microseconds for `_creationTime`, nothing when sorting by `_id`.
    k: Option<Value>,
    /// The id, in a managed table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    /// The primary key as JSON, in an unmanaged table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Value>,
}

fn fingerprint(plan_json_without_paging: &str) -> String {
    let hash = plan_json_without_paging
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

fn encode(cursor: &Cursor) -> String {
    let json = serde_json::to_vec(cursor).expect("a cursor serializes");
    base64_url(&json)
}

fn decode(text: &str, expected_query: &str) -> Result<Cursor> {
    let invalid =
        || ConvoyError::InvalidArgs("the pagination cursor is not one this query returned".into());
    let bytes = base64_url_decode(text).ok_or_else(invalid)?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.q != expected_query {
        return Err(invalid());
    }
    Ok(cursor)
}

/// One page: `{"page": [...], "isDone": bool, "continueCursor": "..."}`.
pub fn plan_page(
    schema: &Schema,
    plan: &QueryPlan,
    plan_json: &str,
    cursor: Option<&str>,
    num_items: u32,
) -> Result<(Statement, String)> {
    if num_items == 0 || num_items > MAX_PAGE_SIZE {
        return Err(ConvoyError::InvalidArgs(format!(
            "paginate: numItems must be 1 to {MAX_PAGE_SIZE}, not {num_items}"
        )));
    }
    let query = fingerprint(plan_json);
    let cursor = cursor
        .filter(|text| !text.is_empty())
        .map(|text| decode(text, &query))
        .transpose()?;
    let key = order_key(schema, plan)?;
    let mut statement = build_select(schema, plan, Some(&key), |statement| match &cursor {
        None => Ok(None),
        Some(cursor) => after_cursor(&key, plan.order.dir.is_desc(), cursor, statement).map(Some),
    })?;
    let limit = statement.bind(Param::Int(i64::from(num_items) + 1));
    statement.sql.push_str(&format!(" LIMIT {limit}"));
    Ok((statement, query))
}

/// The condition "strictly after the cursor in this order". Documents that lack the sort field
/// have a NULL key: Postgres sorts them last ascending and first descending, and so must this.
fn after_cursor(
    key: &OrderKey,
    desc: bool,
    cursor: &Cursor,
    statement: &mut Statement,
) -> Result<String> {
    let invalid =
        || ConvoyError::InvalidArgs("the pagination cursor is not one this query returned".into());
    let id_op = if desc { "<" } else { ">" };
    if let OrderKey::Column {
        order,
        key: (pk, pk_type),
    } = key
    {
        let place = cursor.p.clone().ok_or_else(invalid)?;
        let place = format!(
            "({}::jsonb #>> '{{}}')::{pk_type}",
            statement.bind(Param::Json(place))
        );
        let Some((expr, sql_type)) = order else {
            return Ok(format!("{pk} {id_op} {place}"));
        };
        return Ok(match cursor.k.as_ref() {
            Some(value) => {
                let value = format!(
                    "({}::jsonb #>> '{{}}')::{sql_type}",
                    statement.bind(Param::Json(value.clone()))
                );
                let null_side = if desc {
                    String::new()
                } else {
                    format!(" OR {expr} IS NULL")
                };
                format!("(({expr}, {pk}) {id_op} ({value}, {place}){null_side})")
            }
            None if desc => {
                format!("(({expr} IS NULL AND {pk} < {place}) OR {expr} IS NOT NULL)")
            }
            None => format!("({expr} IS NULL AND {pk} > {place})"),
        });
    }
    let id = statement.bind(Param::Uuid(cursor.id.ok_or_else(invalid)?));
    Ok(match key {
        OrderKey::Id => format!("id {id_op} {id}"),
        OrderKey::CreationTime => {
            let micros = cursor
                .k
                .as_ref()
                .and_then(Value::as_u64)
                .ok_or_else(invalid)?;
            let time = statement.bind(Param::Time(UNIX_EPOCH + Duration::from_micros(micros)));
            format!("(created_at, id) {id_op} ({time}, {id})")
        }
        OrderKey::Field(expr) => match cursor.k.as_ref() {
            Some(value) => {
                let value = statement.bind(Param::Json(value.clone()));
                // Ascending, the documents without the field come after every value.
                let null_side = if desc {
                    String::new()
                } else {
                    format!(" OR {expr} IS NULL")
                };
                format!("(({expr}, id) {id_op} ({value}::jsonb, {id}){null_side})")
            }
            None if desc => format!("(({expr} IS NULL AND id < {id}) OR {expr} IS NOT NULL)"),
            None => format!("({expr} IS NULL AND id > {id})"),
        },
        OrderKey::Column { .. } => unreachable!("handled above"),
    })
}

/// Builds the page from rows of `id, data, created_at, sort_key`, fetched one past the page;
/// `each` sees every document of the page on the way.
pub fn page_json(
    rows: &[tokio_postgres::Row],
    num_items: u32,
    key: &OrderKey,
    query: &str,
    previous_cursor: Option<&str>,
    mut each: impl FnMut(&Parts),
) -> Result<String> {
    let is_done = rows.len() <= num_items as usize;
    let page = &rows[..rows.len().min(num_items as usize)];
    if matches!(key, OrderKey::Column { .. }) {
        return unmanaged_page_json(page, is_done, query, previous_cursor);
    }
    let mut out = String::from("{\"page\":[");
    for (position, row) in page.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let parts = Parts::of_row(row, 0)?;
        each(&parts);
        parts.append_to(&mut out)?;
    }
    out.push_str("],\"isDone\":");
    out.push_str(if is_done { "true" } else { "false" });
    out.push_str(",\"continueCursor\":");
    let last = page.last();
    let cursor = match last {
        // An empty page has no last row: it ends where it began.
        None => previous_cursor.unwrap_or_default().to_owned(),
        Some(row) => {
            let id: Uuid = row
                .try_get(0)
                .map_err(|error| ConvoyError::Internal(error.to_string()))?;
            let k = match key {
                OrderKey::Id | OrderKey::Column { .. } => None,
                OrderKey::CreationTime => {
                    let time: SystemTime = row
                        .try_get(2)
                        .map_err(|error| ConvoyError::Internal(error.to_string()))?;
                    let micros = time
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_micros();
                    Some(Value::from(u64::try_from(micros).unwrap_or(u64::MAX)))
                }
                OrderKey::Field(_) => {
                    let text: Option<JsonbText> = row
                        .try_get(3)
                        .map_err(|error| ConvoyError::Internal(error.to_string()))?;
                    text.map(|text| serde_json::from_str(text.0))
                        .transpose()
                        .map_err(|error| ConvoyError::Internal(error.to_string()))?
                }
            };
            encode(&Cursor {
                q: query.to_owned(),
                k,
                id: Some(id),
                p: None,
            })
        }
    };
    out.push_str(&serde_json::Value::from(cursor).to_string());
    out.push('}');
    Ok(out)
}

/// A page of an unmanaged table, from rows of `document, primary key, sort key` (JSON text).
fn unmanaged_page_json(
    page: &[tokio_postgres::Row],
    is_done: bool,
    query: &str,
    previous_cursor: Option<&str>,
) -> Result<String> {
    let column = |row: &tokio_postgres::Row, index: usize| -> Result<Option<String>> {
        row.try_get(index)
            .map_err(|error| ConvoyError::Internal(error.to_string()))
    };
    let json = |text: Option<String>| -> Result<Option<Value>> {
        text.map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| ConvoyError::Internal(error.to_string()))
    };
    let mut out = String::from("{\"page\":[");
    for (position, row) in page.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        out.push_str(&column(row, 0)?.unwrap_or_else(|| "null".into()));
    }
    out.push_str("],\"isDone\":");
    out.push_str(if is_done { "true" } else { "false" });
    let cursor = match page.last() {
        None => previous_cursor.unwrap_or_default().to_owned(),
        Some(row) => encode(&Cursor {
            q: query.to_owned(),
            k: json(column(row, 2)?)?,
            id: None,
            p: json(column(row, 1)?)?,
        }),
    };
    out.push_str(",\"continueCursor\":");
    out.push_str(&Value::from(cursor).to_string());
    out.push('}');
    Ok(out)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | (u32::from(*byte) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, symbol) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|candidate| candidate == symbol)? as u32;
            n |= value << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for length in 0..40u8 {
            let bytes: Vec<u8> = (0..length).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_url_decode(&base64_url(&bytes)).unwrap(), bytes);
        }
        assert!(base64_url_decode("a").is_none());
        assert!(base64_url_decode("ab!d").is_none());
    }

    #[test]
    fn a_cursor_only_continues_its_own_query() {
        let cursor = encode(&Cursor {
            q: fingerprint("a"),
            k: None,
            id: Some(Uuid::nil()),
            p: None,
        });
        assert!(decode(&cursor, &fingerprint("a")).is_ok());
        assert!(decode(&cursor, &fingerprint("b")).is_err());
        assert!(decode("not a cursor", &fingerprint("a")).is_err());
    }
}
