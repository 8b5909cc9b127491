//! The storage layer: how each field of a table reaches SQL, whatever the table's stage —
//! documents (`data->'field'`) or columns (unmanaged tables). Everything the planner writes about
//! a field goes through here.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use super::ir::CompareOp;
use super::statement::{Param, Statement};
use crate::error::{ConvoyError, Result};
use crate::schema::{Schema, Table};
use crate::sql::{field_expr, quote_ident};

/// How a name in a query reads in SQL: in a managed table the system fields are columns and the
/// rest live in `data`; in an unmanaged table every field is a column of its own type.
pub(super) enum FieldRef {
    Id,
    CreationTime,
    Data(String),
    Column { expr: String, sql_type: String },
}

impl FieldRef {
    pub(super) fn parse(table: &Table, field: &str) -> Result<Self> {
        if !table.managed {
            // `_id` of an unmanaged table is its primary key, when that is one column.
            let name = match (field, table.primary_key.as_slice()) {
                ("_id", [key]) => key.as_str(),
                _ => field,
            };
            let column = table
                .columns
                .iter()
                .find(|column| column.name == name)
                .ok_or_else(|| {
                    ConvoyError::InvalidArgs(format!(
                        "table {:?} has no column {field:?}",
                        table.name
                    ))
                })?;
            return Ok(Self::Column {
                expr: quote_ident(&column.name)?,
                sql_type: column.sql_type.clone(),
            });
        }
        match field {
            "_id" => Ok(Self::Id),
            "_creationTime" => Ok(Self::CreationTime),
            "" => Err(ConvoyError::InvalidArgs(
                "a field name cannot be empty".into(),
            )),
            field if field.starts_with('_') => Err(ConvoyError::InvalidArgs(format!(
                "unknown system field {field:?} (there are _id and _creationTime)"
            ))),
            field => Ok(Self::Data(field_expr(field)?)),
        }
    }

    /// The field compared with a value: system fields keep their column types (so the primary
    /// key and creation time can use their btrees), document fields compare as JSONB.
    pub(super) fn compare_with_value(
        &self,
        op: CompareOp,
        value: &Value,
        statement: &mut Statement,
    ) -> Result<String> {
        Ok(match self {
            Self::Id => {
                let Some(id) = value.as_str().and_then(|text| Uuid::parse_str(text).ok()) else {
                    return Err(ConvoyError::InvalidArgs(format!(
                        "_id must be compared with an id, not {value}"
                    )));
                };
                format!("id {} {}", op.sql(), statement.bind(Param::Uuid(id)))
            }
            Self::CreationTime => {
                let Some(millis) = value
                    .as_f64()
                    .filter(|millis| millis.is_finite() && *millis >= 0.0)
                else {
                    return Err(ConvoyError::InvalidArgs(format!(
                        "_creationTime must be compared with a number of milliseconds, not {value}"
                    )));
                };
                let time = UNIX_EPOCH + Duration::from_secs_f64(millis / 1000.0);
                format!(
                    "created_at {} {}",
                    op.sql(),
                    statement.bind(Param::Time(time))
                )
            }
            Self::Data(expr) => {
                format!(
                    "{expr} {} {}::jsonb",
                    op.sql(),
                    statement.bind(Param::Json(value.clone()))
                )
            }
            // The value cast to the column's own type, so the table's btree indexes apply.
            Self::Column { expr, sql_type } => format!(
                "{expr} {} ({}::jsonb #>> '{{}}')::{sql_type}",
                op.sql(),
                statement.bind(Param::Json(value.clone()))
            ),
        })
    }

    /// The field as a JSONB value, for comparisons between two fields.
    pub(super) fn as_jsonb(&self) -> String {
        match self {
            Self::Id => "to_jsonb(id::text)".to_owned(),
            Self::CreationTime => "to_jsonb(extract(epoch FROM created_at) * 1000)".to_owned(),
            Self::Data(expr) => expr.clone(),
            Self::Column { expr, .. } => format!("to_jsonb({expr})"),
        }
    }

    pub(super) fn order_expr(&self) -> &str {
        match self {
            Self::Id => "id",
            Self::CreationTime => "created_at",
            Self::Data(expr) | Self::Column { expr, .. } => expr,
        }
    }
}

/// What a query sorts by, as SQL.
pub enum OrderKey {
    Id,
    CreationTime,
    /// A document field's expression, `(data->'field')`.
    Field(String),
    /// An unmanaged table's column, with its type (none: primary-key order), then the table's
    /// one-column primary key, with its type: the tiebreaker.
    Column {
        order: Option<(String, String)>,
        key: (String, String),
    },
}

pub(super) fn managed_table<'a>(schema: &'a Schema, name: &str) -> Result<&'a Table> {
    let table = schema.table(name)?;
    if !table.managed {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {name:?} is unmanaged (an existing table Convoy does not own); this works only on managed tables so far"
        )));
    }
    Ok(table)
}
