//! Pagination with keyset cursors: a page ends at a row's sort key and id, and the next page
//! starts strictly after them. Rows inserted meanwhile never shift a page (no OFFSET), and the
//! cursor names the query it belongs to, so one query's cursor cannot be used with another.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
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
    /// The sort key is JSON `null`, which `k` alone cannot tell from a missing field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    n: bool,
    /// The id, in a managed table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Uuid>,
    /// The primary key as JSON, in an unmanaged table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Value>,
}

/// The parsed plan's hash: the same query has the same fingerprint whatever order its JSON came
/// in, on every process.
fn fingerprint(plan: &QueryPlan) -> String {
    use sha2::Digest as _;
    let canonical = serde_json::to_vec(plan).expect("a plan serializes");
    let digest = sha2::Sha256::digest(canonical);
    digest[..8].iter().fold(String::new(), |mut hex, byte| {
        write!(hex, "{byte:02x}").expect("writing to a String");
        hex
    })
}

fn encode(cursor: &Cursor) -> String {
    let json = serde_json::to_vec(cursor).expect("a cursor serializes");
    URL_SAFE_NO_PAD.encode(json)
}

fn decode(text: &str, expected_query: &str) -> Result<Cursor> {
    let invalid =
        || ConvoyError::InvalidArgs("the pagination cursor is not one this query returned".into());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.q != expected_query {
        return Err(invalid());
    }
    Ok(cursor)
}

impl Cursor {
    /// The sort key: `None` for a missing field, `Some(Value::Null)` for JSON `null`.
    fn key(&self) -> Option<Value> {
        if self.n {
            Some(Value::Null)
        } else {
            self.k.clone()
        }
    }
}

/// One page: `{"page": [...], "isDone": bool, "continueCursor": "..."}`.
pub fn plan_page(
    schema: &Schema,
    plan: &QueryPlan,
    cursor: Option<&str>,
    num_items: u32,
) -> Result<(Statement, String)> {
    if num_items == 0 || num_items > MAX_PAGE_SIZE {
        return Err(ConvoyError::InvalidArgs(format!(
            "paginate: numItems must be 1 to {MAX_PAGE_SIZE}, not {num_items}"
        )));
    }
    let query = fingerprint(plan);
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
    write!(statement.sql, " LIMIT {limit}").expect("writing to a String");
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
        OrderKey::Field(expr) => match cursor.key().as_ref() {
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
        OrderKey::Typed {
            expr,
            kind,
            nulls_first,
        } => {
            // NULLs come last ascending when they are missing fields, first when they are `null`.
            let nulls_last = desc == *nulls_first;
            // A column's NULL that is JSON `null` reads back as NULL, whichever way it was told.
            let key = cursor.key().filter(|key| !(key.is_null() && *nulls_first));
            match key.as_ref() {
                Some(value) => {
                    let (left, right) = super::columns::operands(expr, *kind, value, statement)?
                        .ok_or_else(invalid)?;
                    let null_side = if nulls_last {
                        format!(" OR {expr} IS NULL")
                    } else {
                        String::new()
                    };
                    format!("(({left}, id) {id_op} ({right}, {id}){null_side})")
                }
                None if nulls_last => format!("({expr} IS NULL AND id {id_op} {id})"),
                None => format!("(({expr} IS NULL AND id {id_op} {id}) OR {expr} IS NOT NULL)"),
            }
        }
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
    shape: &super::RowShape,
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
        let parts = Parts::of_shaped_row(row, shape)?;
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
                OrderKey::Field(_) | OrderKey::Typed { .. } => {
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
                n: matches!(k, Some(Value::Null)),
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
            n: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> QueryPlan {
        QueryPlan::from_json(json).unwrap()
    }

    #[test]
    fn a_fingerprint_is_the_plans_not_its_texts() {
        let one = plan(r#"{"table":"notes","order":{"dir":"desc","field":"n"}}"#);
        let reordered = plan(r#"{"order":{"field":"n","dir":"desc"},"table":"notes"}"#);
        let other = plan(r#"{"table":"notes","order":{"dir":"asc","field":"n"}}"#);
        assert_eq!(fingerprint(&one), fingerprint(&reordered));
        assert_ne!(fingerprint(&one), fingerprint(&other));
        // Cursors are URL-safe: they travel in query strings as they are.
        let cursor = encode(&Cursor {
            q: fingerprint(&one),
            k: Some(Value::from("a/b+c?")),
            n: false,
            id: Some(Uuid::nil()),
            p: None,
        });
        assert!(cursor
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_".contains(&byte)));
        assert!(decode("ab!d", &fingerprint(&one)).is_err());
    }

    #[test]
    fn a_cursor_only_continues_its_own_query() {
        let cursor = encode(&Cursor {
            q: fingerprint(&plan(r#"{"table":"a"}"#)),
            k: None,
            n: false,
            id: Some(Uuid::nil()),
            p: None,
        });
        assert!(decode(&cursor, &fingerprint(&plan(r#"{"table":"a"}"#))).is_ok());
        assert!(decode(&cursor, &fingerprint(&plan(r#"{"table":"b"}"#))).is_err());
        assert!(decode("not a cursor", &fingerprint(&plan(r#"{"table":"a"}"#))).is_err());
    }
}
