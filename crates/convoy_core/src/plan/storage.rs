//! The storage layer: how each field of a table reaches SQL, whatever the table's stage —
//! documents (`data->'field'`), relational (a typed column per field, `columns`) or the user's
//! own columns (unmanaged tables). Everything the planner writes about a field goes through here.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use uuid::Uuid;

use super::columns;
use super::ir::CompareOp;
use super::statement::{Param, RowShape, Statement, DOCUMENT_COLUMNS};
use crate::error::{ConvoyError, Result};
use crate::schema::{ColumnKind, Schema, Stage, Table};
use crate::sql::{field_expr, quote_ident};

/// How a table keeps its rows. Every question the planner asks about a table's SQL — a field's
/// expression, the columns a row is read from, the order by default, the tiebreaker — is answered
/// here, once per layout: another stage of a table (GRADUATION.md) is another variant, not a
/// branch in every function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Convoy's documents: `id`, `data` (JSONB, where the fields live), `created_at`.
    Documents,
    /// A relational table: `id`, `created_at`, and a typed column per field; read and compared
    /// so that it answers as a document table holding the same data would.
    Relational,
    /// The user's own columns (an unmanaged table): each field is the column of that name.
    Columns,
}

impl Layout {
    /// How the table is read: from its columns once they can be trusted (a relational table, or
    /// a graduation's validated columns), else from `data`.
    pub(crate) fn of(table: &Table) -> Self {
        match (table.managed, table.stage, table.reads_columns) {
            (false, ..) => Self::Columns,
            (true, Stage::Relational, _) | (true, Stage::Documents, true) => Self::Relational,
            (true, Stage::Documents, false) => Self::Documents,
        }
    }

    /// How the table is written: where its truth is. While a table graduates, `data` stays the
    /// truth and a trigger keeps the columns equal to it.
    pub(crate) fn for_writes(table: &Table) -> Self {
        match (table.managed, table.stage) {
            (false, _) => Self::Columns,
            (true, Stage::Documents) => Self::Documents,
            (true, Stage::Relational) => Self::Relational,
        }
    }

    /// `id, data, created_at` of a managed table's row, `data` built from the columns when the
    /// table is relational.
    pub(super) fn document_columns(self, table: &Table) -> Result<String> {
        Ok(match self {
            // Planned once per table: every read of it selects the same.
            Self::Relational => super::statement::planned(
                &table.planned.document_columns,
                Stage::Relational,
                || {
                    Ok(format!(
                        "id, {} AS data, created_at",
                        columns::document_expr(table)?
                    ))
                },
            )?,
            Self::Documents | Self::Columns => DOCUMENT_COLUMNS.to_owned(),
        })
    }

    /// The field a query names, as SQL.
    pub(super) fn field(self, table: &Table, field: &str) -> Result<FieldRef> {
        match self {
            Self::Columns => {
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
                Ok(FieldRef::Column {
                    expr: quote_ident(&column.name)?,
                    sql_type: column.sql_type.clone(),
                })
            }
            Self::Documents | Self::Relational => match field {
                "_id" => Ok(FieldRef::Id),
                "_creationTime" => Ok(FieldRef::CreationTime),
                "" => Err(ConvoyError::InvalidArgs(
                    "a field name cannot be empty".into(),
                )),
                field if field.starts_with('_') => Err(ConvoyError::InvalidArgs(format!(
                    "unknown system field {field:?} (there are _id and _creationTime)"
                ))),
                field if self == Self::Documents => Ok(FieldRef::Data(field_expr(field)?)),
                field => Ok(match table.field_column(field) {
                    // A field the schema does not name has no column: it is missing from every row.
                    None => FieldRef::Data("NULL::jsonb".to_owned()),
                    Some(column) if column.kind == ColumnKind::Jsonb => {
                        FieldRef::Data(format!("t.{}", quote_ident(&column.column)?))
                    }
                    Some(column) => FieldRef::Typed {
                        expr: format!("t.{}", quote_ident(&column.column)?),
                        kind: column.kind,
                        null_is_json_null: column.null_is_json_null(),
                    },
                }),
            },
        }
    }

    /// What a query sorts by, `field` or the layout's default, with what keeps a page's place.
    pub(super) fn order_key(self, table: &Table, field: Option<&str>) -> Result<OrderKey> {
        match self {
            Self::Documents | Self::Relational => {
                Ok(match self.field(table, field.unwrap_or("_creationTime"))? {
                    FieldRef::Id => OrderKey::Id,
                    FieldRef::CreationTime => OrderKey::CreationTime,
                    FieldRef::Data(expr) | FieldRef::Column { expr, .. } => OrderKey::Field(expr),
                    FieldRef::Typed {
                        expr,
                        kind,
                        null_is_json_null,
                    } => OrderKey::Typed {
                        expr,
                        kind,
                        nulls_first: null_is_json_null,
                    },
                })
            }
            Self::Columns => {
                if !matches!(table.primary_key.as_slice(), [_]) {
                    return Err(ConvoyError::InvalidArgs(format!(
                        "paginate needs a primary key of one column to keep its place, and table {:?} has {}",
                        table.name,
                        if table.primary_key.is_empty() { "none" } else { "several" }
                    )));
                }
                let FieldRef::Column {
                    expr: key,
                    sql_type: key_type,
                } = self.field(table, "_id")?
                else {
                    unreachable!("an unmanaged table's fields are columns");
                };
                let order = match field {
                    None => None,
                    Some(field) => match self.field(table, field)? {
                        FieldRef::Column { expr, .. } if expr == key => None,
                        FieldRef::Column { expr, sql_type } => Some((expr, sql_type)),
                        _ => unreachable!("an unmanaged table's fields are columns"),
                    },
                };
                Ok(OrderKey::Column {
                    order,
                    key: (key, key_type),
                })
            }
        }
    }

    /// What a `SELECT` reads of each row, and what its rows then hold. With `sort_key`, a page's
    /// rows also carry their place (the sort key, and for columns the primary key, as JSON).
    pub(super) fn row_columns(
        self,
        table: &Table,
        sort_key: Option<&OrderKey>,
    ) -> Result<(String, RowShape)> {
        match self {
            Self::Documents | Self::Relational => {
                let sort_column = match sort_key {
                    Some(OrderKey::Field(expr)) => format!(", {expr}"),
                    Some(OrderKey::Typed { expr, .. }) => format!(", to_jsonb({expr})"),
                    _ => String::new(),
                };
                if self == Self::Relational {
                    // The columns as they are; the core writes each document from them.
                    let shape = super::column_documents::shape_of(table)?;
                    let first = if sort_column.is_empty() { 3 } else { 4 };
                    return Ok((
                        format!(
                            "id, NULL::jsonb AS data, created_at{sort_column}{}",
                            shape.select
                        ),
                        RowShape::Columns { first, shape },
                    ));
                }
                Ok((
                    format!("{}{sort_column}", self.document_columns(table)?),
                    RowShape::Document,
                ))
            }
            Self::Columns => {
                // The row as a document: its columns, plus `_id` when the key is one column.
                let mut columns = match table.primary_key.as_slice() {
                    [key] => format!(
                        "(to_jsonb(t) || jsonb_build_object('_id', t.{}))::text",
                        quote_ident(key)?
                    ),
                    _ => "to_jsonb(t)::text".to_owned(),
                };
                if let Some(OrderKey::Column { order, key }) = sort_key {
                    let sort = order.as_ref().map_or_else(
                        || "NULL::text".to_owned(),
                        |(expr, _)| format!("to_jsonb({expr})::text"),
                    );
                    write!(columns, ", to_jsonb({})::text, {sort}", key.0)
                        .expect("writing to a String");
                }
                Ok((columns, RowShape::JsonText))
            }
        }
    }

    /// The order of a query that names none: creation time for documents; an unmanaged table has
    /// no creation time, and reads in primary-key order (its tiebreaker).
    pub(super) fn default_order(self) -> Option<FieldRef> {
        match self {
            Self::Documents | Self::Relational => Some(FieldRef::CreationTime),
            Self::Columns => None,
        }
    }

    /// The column that makes every order total: the id, or a one-column primary key.
    pub(super) fn tiebreaker(self, table: &Table) -> Result<Option<String>> {
        Ok(match self {
            Self::Documents | Self::Relational => Some("id".to_owned()),
            Self::Columns => match table.primary_key.as_slice() {
                [key] => Some(quote_ident(key)?),
                _ => None,
            },
        })
    }
}

/// How a name in a query reads in SQL: in a managed table the system fields are columns and the
/// rest live in `data` (or, relational, in JSONB and typed columns); in an unmanaged table every
/// field is a column of its own type.
pub(super) enum FieldRef {
    Id,
    CreationTime,
    /// A JSONB expression: a document's `(data->'field')`, or a relational `jsonb` column.
    Data(String),
    /// A relational table's typed column, compared as its field compares in JSONB.
    Typed {
        expr: String,
        kind: ColumnKind,
        null_is_json_null: bool,
    },
    Column {
        expr: String,
        sql_type: String,
    },
}

impl FieldRef {
    /// The field `name` of `table`, as its layout keeps it.
    pub(super) fn parse(table: &Table, name: &str) -> Result<Self> {
        Layout::of(table).field(table, name)
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
            Self::Typed {
                expr,
                kind,
                null_is_json_null,
            } => columns::compare(expr, *kind, *null_is_json_null, op, value, statement)?,
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
            Self::Typed {
                expr,
                null_is_json_null,
                ..
            } => columns::as_jsonb(expr, *null_is_json_null),
            Self::Column { expr, .. } => format!("to_jsonb({expr})"),
        }
    }

    pub(super) fn order_expr(&self) -> &str {
        match self {
            Self::Id => "id",
            Self::CreationTime => "created_at",
            Self::Data(expr) | Self::Typed { expr, .. } | Self::Column { expr, .. } => expr,
        }
    }

    /// The `ORDER BY` term: JSON `null` sorts lowest in JSONB, so a column whose NULL is `null`
    /// puts its NULLs first ascending (Postgres puts NULLs last by default).
    pub(super) fn order_term(&self, dir: &str) -> String {
        match self {
            Self::Typed {
                expr,
                null_is_json_null: true,
                ..
            } => format!(
                "{expr} {dir} {}",
                if dir == "ASC" {
                    "NULLS FIRST"
                } else {
                    "NULLS LAST"
                }
            ),
            _ => format!("{} {dir}", self.order_expr()),
        }
    }
}

/// What a query sorts by, as SQL.
pub enum OrderKey {
    Id,
    CreationTime,
    /// A document field's expression, `(data->'field')`, or a relational `jsonb` column.
    Field(String),
    /// A relational table's typed column; its NULLs sort first ascending when they are JSON
    /// `null`, last when they are a missing field.
    Typed {
        expr: String,
        kind: ColumnKind,
        nulls_first: bool,
    },
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
