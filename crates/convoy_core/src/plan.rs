//! The planner: the query IR that `ctx.db.query(...)` builds in JavaScript (docs/architecture.md)
//! becomes one parameterised statement. Names come from the schema and are quoted; every value
//! is a bind parameter.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{ConvoyError, Result};
use crate::schema::{Schema, Table};
use crate::sql::{field_expr, quote_ident};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryPlan {
    pub table: String,
    #[serde(default)]
    pub index: Option<IndexRange>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub order: Order,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexRange {
    pub name: String,
    #[serde(default)]
    pub eq: Vec<FieldValue>,
    #[serde(default)]
    pub range: Vec<RangeBound>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValue {
    pub field: String,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeBound {
    pub field: String,
    pub op: RangeOp,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompareOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl From<RangeOp> for CompareOp {
    fn from(op: RangeOp) -> Self {
        match op {
            RangeOp::Gt => Self::Gt,
            RangeOp::Gte => Self::Gte,
            RangeOp::Lt => Self::Lt,
            RangeOp::Lte => Self::Lte,
        }
    }
}

impl CompareOp {
    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            // `!=` would drop documents that lack the field (NULL); "is not equal" keeps them.
            Self::Neq => "IS DISTINCT FROM",
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Filter {
    Compare {
        cmp: CompareOp,
        left: Operand,
        right: Operand,
    },
    And {
        and: Vec<Filter>,
    },
    Or {
        or: Vec<Filter>,
    },
    Not {
        not: Box<Filter>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Operand {
    Field { field: String },
    Value { value: Value },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[serde(default)]
    pub dir: Direction,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

impl Direction {
    pub fn is_desc(self) -> bool {
        matches!(self, Self::Desc)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }
}

/// A bind parameter of a planned statement.
#[derive(Debug)]
pub enum Param {
    Json(Value),
    Uuid(Uuid),
    Time(SystemTime),
    Int(i64),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Json(value) => value,
            Self::Uuid(id) => id,
            Self::Time(time) => time,
            Self::Int(number) => number,
        }
    }
}

/// SQL text plus its parameters, ready for `prepare_cached`.
#[derive(Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    pub shape: RowShape,
}

/// What a statement's rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowShape {
    /// `id, data, created_at` of a managed table.
    Document,
    /// One column: the document as JSON text (an unmanaged table's row).
    JsonText,
}

impl Statement {
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(Param::as_sql).collect()
    }

    pub(crate) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }
}

pub const DOCUMENT_COLUMNS: &str = "id, data, created_at";

/// How a name in a query reads in SQL: in a managed table the system fields are columns and the
/// rest live in `data`; in an unmanaged table every field is a column of its own type.
enum FieldRef {
    Id,
    CreationTime,
    Data(String),
    Column { expr: String, sql_type: String },
}

impl FieldRef {
    fn parse(table: &Table, field: &str) -> Result<Self> {
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
    fn compare_with_value(
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
    fn as_jsonb(&self) -> String {
        match self {
            Self::Id => "to_jsonb(id::text)".to_owned(),
            Self::CreationTime => "to_jsonb(extract(epoch FROM created_at) * 1000)".to_owned(),
            Self::Data(expr) => expr.clone(),
            Self::Column { expr, .. } => format!("to_jsonb({expr})"),
        }
    }

    fn order_expr(&self) -> &str {
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

pub fn order_key(schema: &Schema, plan: &QueryPlan) -> Result<OrderKey> {
    let table = schema.table(&plan.table)?;
    if !table.managed {
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
        } = FieldRef::parse(table, "_id")?
        else {
            unreachable!("an unmanaged table's fields are columns");
        };
        let order = match plan.order.field.as_deref() {
            None => None,
            Some(field) => match FieldRef::parse(table, field)? {
                FieldRef::Column { expr, .. } if expr == key => None,
                FieldRef::Column { expr, sql_type } => Some((expr, sql_type)),
                _ => unreachable!("an unmanaged table's fields are columns"),
            },
        };
        return Ok(OrderKey::Column {
            order,
            key: (key, key_type),
        });
    }
    Ok(
        match FieldRef::parse(
            table,
            plan.order.field.as_deref().unwrap_or("_creationTime"),
        )? {
            FieldRef::Id => OrderKey::Id,
            FieldRef::CreationTime => OrderKey::CreationTime,
            FieldRef::Data(expr) | FieldRef::Column { expr, .. } => OrderKey::Field(expr),
        },
    )
}

pub fn plan_query(schema: &Schema, plan: &QueryPlan) -> Result<Statement> {
    let mut statement = build_select(schema, plan, None, |_| Ok(None))?;
    if let Some(limit) = plan.limit {
        let placeholder = statement.bind(Param::Int(i64::from(limit)));
        write!(statement.sql, " LIMIT {placeholder}").expect("writing to a String");
    }
    Ok(statement)
}

/// `SELECT id, data, created_at [, sort key] FROM … WHERE … ORDER BY …`, without a LIMIT.
/// `extra` may add one more condition (a page's cursor) once the others have bound theirs.
pub(crate) fn build_select(
    schema: &Schema,
    plan: &QueryPlan,
    sort_key_column: Option<&OrderKey>,
    extra: impl FnOnce(&mut Statement) -> Result<Option<String>>,
) -> Result<Statement> {
    let table = schema.table(&plan.table)?;
    let sort_column = match sort_key_column {
        Some(OrderKey::Field(expr)) => format!(", {expr}"),
        _ => String::new(),
    };
    let (columns, shape) = if table.managed {
        (
            format!("{DOCUMENT_COLUMNS}{sort_column}"),
            RowShape::Document,
        )
    } else {
        let mut columns = unmanaged_document(table)?;
        // A page also reads its last row's place: the primary key and the sort column, as JSON.
        if let Some(OrderKey::Column { order, key }) = sort_key_column {
            let sort = order.as_ref().map_or_else(
                || "NULL::text".to_owned(),
                |(expr, _)| format!("to_jsonb({expr})::text"),
            );
            write!(columns, ", to_jsonb({})::text, {sort}", key.0).expect("writing to a String");
        }
        (columns, RowShape::JsonText)
    };
    let mut statement = Statement {
        sql: format!("SELECT {columns} FROM {} AS t", quote_ident(&table.name)?),
        params: Vec::new(),
        shape,
    };
    let mut conditions = Vec::new();
    if let Some(range) = &plan.index {
        index_conditions(table, range, &mut statement, &mut conditions)?;
    }
    if let Some(filter) = &plan.filter {
        conditions.push(filter_sql(table, filter, &mut statement, 0)?);
    }
    if let Some(condition) = extra(&mut statement)? {
        conditions.push(condition);
    }
    if !conditions.is_empty() {
        write!(statement.sql, " WHERE {}", conditions.join(" AND ")).expect("writing to a String");
    }
    let dir = plan.order.dir.sql();
    // The tiebreaker that makes the order total: the id, or an unmanaged table's primary key.
    let tiebreaker = if table.managed {
        Some("id".to_owned())
    } else {
        match table.primary_key.as_slice() {
            [key] => Some(quote_ident(key)?),
            _ => None,
        }
    };
    let order_field = match plan.order.field.as_deref() {
        Some(field) => Some(FieldRef::parse(table, field)?),
        None if table.managed => Some(FieldRef::CreationTime),
        // An unmanaged table has no creation time: by default it reads in primary-key order.
        None => None,
    };
    let mut order = Vec::new();
    if let Some(field) = &order_field {
        order.push(format!("{} {dir}", field.order_expr()));
    }
    if let Some(tiebreaker) = tiebreaker {
        if order_field.as_ref().map(FieldRef::order_expr) != Some(tiebreaker.as_str()) {
            order.push(format!("{tiebreaker} {dir}"));
        }
    }
    if !order.is_empty() {
        write!(statement.sql, " ORDER BY {}", order.join(", ")).expect("writing to a String");
    }
    Ok(statement)
}

/// An unmanaged row as a document: its columns, plus `_id` when the primary key is one column.
fn unmanaged_document(table: &Table) -> Result<String> {
    Ok(match table.primary_key.as_slice() {
        [key] => format!(
            "(to_jsonb(t) || jsonb_build_object('_id', t.{}))::text",
            quote_ident(key)?
        ),
        _ => "to_jsonb(t)::text".to_owned(),
    })
}

fn managed_table<'a>(schema: &'a Schema, name: &str) -> Result<&'a Table> {
    let table = schema.table(name)?;
    if !table.managed {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {name:?} is unmanaged (an existing table Convoy does not own); this works only on managed tables so far"
        )));
    }
    Ok(table)
}

/// An index range is equality on a prefix of the index's fields, then at most one field with
/// lower and/or upper bounds: the shape a btree can answer without scanning.
fn index_conditions(
    table: &Table,
    range: &IndexRange,
    statement: &mut Statement,
    conditions: &mut Vec<String>,
) -> Result<()> {
    let index = table.index(&range.name)?;
    for (position, eq) in range.eq.iter().enumerate() {
        match index.fields.get(position) {
            Some(field) if *field == eq.field => {}
            expected => {
                return Err(ConvoyError::InvalidArgs(format!(
                    "withIndex({:?}): fields must be compared in the index's order ({}); got {:?} where {} was expected",
                    index.name,
                    index.fields.join(", "),
                    eq.field,
                    expected.map_or("nothing".to_owned(), |field| format!("{field:?}"))
                )))
            }
        }
        conditions.push(FieldRef::parse(table, &eq.field)?.compare_with_value(
            CompareOp::Eq,
            &eq.value,
            statement,
        )?);
    }
    if range.range.len() > 2 {
        return Err(ConvoyError::InvalidArgs(
            "withIndex: at most one lower and one upper bound".into(),
        ));
    }
    for bound in &range.range {
        let expected = index.fields.get(range.eq.len());
        if expected != Some(&bound.field) {
            return Err(ConvoyError::InvalidArgs(format!(
                "withIndex({:?}): a range must be on the field after the equalities ({}); got {:?}",
                index.name,
                expected.map_or("none left".to_owned(), |field| format!("{field:?}")),
                bound.field
            )));
        }
        conditions.push(FieldRef::parse(table, &bound.field)?.compare_with_value(
            bound.op.into(),
            &bound.value,
            statement,
        )?);
    }
    Ok(())
}

/// Filters nest; a bound on depth keeps a hostile or runaway filter from exhausting the stack.
const MAX_FILTER_DEPTH: usize = 32;

fn filter_sql(
    table: &Table,
    filter: &Filter,
    statement: &mut Statement,
    depth: usize,
) -> Result<String> {
    if depth > MAX_FILTER_DEPTH {
        return Err(ConvoyError::InvalidArgs(format!(
            "filter is nested more than {MAX_FILTER_DEPTH} levels deep"
        )));
    }
    let join = |parts: &[Filter],
                joiner: &str,
                empty: &str,
                statement: &mut Statement|
     -> Result<String> {
        if parts.is_empty() {
            return Ok(empty.to_owned());
        }
        let parts = parts
            .iter()
            .map(|part| filter_sql(table, part, statement, depth + 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!("({})", parts.join(joiner)))
    };
    match filter {
        Filter::And { and } => join(and, " AND ", "TRUE", statement),
        Filter::Or { or } => join(or, " OR ", "FALSE", statement),
        Filter::Not { not } => Ok(format!(
            "(NOT COALESCE({}, FALSE))",
            filter_sql(table, not, statement, depth + 1)?
        )),
        Filter::Compare { cmp, left, right } => compare_sql(table, *cmp, left, right, statement),
    }
}

fn compare_sql(
    table: &Table,
    op: CompareOp,
    left: &Operand,
    right: &Operand,
    statement: &mut Statement,
) -> Result<String> {
    Ok(match (left, right) {
        (Operand::Field { field }, Operand::Value { value }) => {
            FieldRef::parse(table, field)?.compare_with_value(op, value, statement)?
        }
        (Operand::Value { value }, Operand::Field { field }) => {
            FieldRef::parse(table, field)?.compare_with_value(mirror(op), value, statement)?
        }
        (Operand::Field { field: left }, Operand::Field { field: right }) => format!(
            "{} {} {}",
            FieldRef::parse(table, left)?.as_jsonb(),
            op.sql(),
            FieldRef::parse(table, right)?.as_jsonb()
        ),
        (Operand::Value { value: left }, Operand::Value { value: right }) => {
            let left = statement.bind(Param::Json(left.clone()));
            let right = statement.bind(Param::Json(right.clone()));
            format!("{left}::jsonb {} {right}::jsonb", op.sql())
        }
    })
}

/// `value < field` is `field > value`.
fn mirror(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Gte => CompareOp::Lte,
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Lte => CompareOp::Gte,
        other => other,
    }
}

/// Finds a document by id: in one table, or (when the table is not known, since ids do not carry
/// it) in every managed table with one statement. The first column names the table.
pub fn plan_get(schema: &Schema, table: Option<&str>, id: Uuid) -> Result<Statement> {
    let mut statement = Statement {
        sql: String::new(),
        params: Vec::new(),
        shape: RowShape::Document,
    };
    let placeholder = statement.bind(Param::Uuid(id));
    let tables: Vec<&Table> = match table {
        Some(name) => vec![managed_table(schema, name)?],
        None => schema.managed_tables().collect(),
    };
    if tables.is_empty() {
        return Err(ConvoyError::InvalidArgs("the schema has no tables".into()));
    }
    statement.sql = tables
        .iter()
        .map(|table| {
            Ok(format!(
                "SELECT {}::text, {DOCUMENT_COLUMNS} FROM {} WHERE id = {placeholder}",
                crate::sql::quote_literal(&table.name)?,
                quote_ident(&table.name)?
            ))
        })
        .collect::<Result<Vec<_>>>()?
        .join(" UNION ALL ");
    Ok(statement)
}

pub fn plan_insert(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "INSERT INTO {} (id, data, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        quote_ident(&table.name)?
    ))
}

/// Inserts many documents in one statement: `$1` ids, `$2` data, `$3` creation times, as arrays
/// of one length (group commit, see `group_commit`).
pub fn plan_insert_rows(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "INSERT INTO {} (id, data, created_at, updated_at) \
         SELECT id, data, created_at, created_at \
         FROM unnest($1::uuid[], $2::jsonb[], $3::timestamptz[]) AS incoming (id, data, created_at)",
        quote_ident(&table.name)?
    ))
}

/// Replaces one document's fields: `$1` id, `$2` data.
///
/// Writes travel pipelined ahead of the statement after them — COMMIT included — without waiting
/// for their answers, so a write that finds no row must fail inside Postgres, aborting the
/// transaction: `1 / count(*)` is a division by zero then. (The engine checks that the document
/// exists before it queues the write, so this is a safety net, not a path.)
pub fn plan_replace(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "WITH changed AS (UPDATE {} SET data = $2, updated_at = now() WHERE id = $1 RETURNING 1) \
         SELECT 1 / count(*) FROM changed",
        quote_ident(&table.name)?
    ))
}

/// Deletes one document: `$1` id. A missing row fails as in [`plan_replace`].
pub fn plan_delete(schema: &Schema, table: &str) -> Result<String> {
    let table = managed_table(schema, table)?;
    Ok(format!(
        "WITH gone AS (DELETE FROM {} WHERE id = $1 RETURNING 1) SELECT 1 / count(*) FROM gone",
        quote_ident(&table.name)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_json(
            &json!({ "tables": [
                { "name": "projects", "managed": true, "indexes": [
                    { "name": "by_userId", "fields": ["userId"] },
                    { "name": "by_user_status", "fields": ["userId", "status", "createdAt"] }
                ] },
                { "name": "users", "managed": true },
                { "name": "legacy", "managed": false }
            ] })
            .to_string(),
        )
        .unwrap()
    }

    fn planned(plan: serde_json::Value) -> Result<Statement> {
        let plan: QueryPlan = serde_json::from_value(plan).unwrap();
        plan_query(&schema(), &plan)
    }

    #[test]
    fn the_product_example_is_one_indexed_statement() {
        let statement = planned(json!({
            "table": "projects",
            "index": { "name": "by_userId", "eq": [{ "field": "userId", "value": "0190c0de-0000-7000-8000-000000000000" }] },
            "order": { "dir": "desc", "field": "createdAt" }
        }))
        .unwrap();
        assert_eq!(
            statement.sql,
            "SELECT id, data, created_at FROM \"projects\" AS t WHERE (data->'userId') = $1::jsonb \
             ORDER BY (data->'createdAt') DESC, id DESC"
        );
        assert_eq!(statement.params.len(), 1);
    }

    #[test]
    fn ranges_filters_and_limits_are_parameters() {
        let statement = planned(json!({
            "table": "projects",
            "index": { "name": "by_user_status",
                       "eq": [{ "field": "userId", "value": "u" }, { "field": "status", "value": "active" }],
                       "range": [{ "field": "createdAt", "op": "gte", "value": 10 }, { "field": "createdAt", "op": "lt", "value": 20 }] },
            "filter": { "or": [
                { "cmp": "neq", "left": { "field": "name" }, "right": { "value": "x'); DROP TABLE users; --" } },
                { "not": { "cmp": "lt", "left": { "value": 3 }, "right": { "field": "_creationTime" } } }
            ] },
            "limit": 10
        }))
        .unwrap();
        assert_eq!(
            statement.sql,
            "SELECT id, data, created_at FROM \"projects\" AS t WHERE (data->'userId') = $1::jsonb \
             AND (data->'status') = $2::jsonb AND (data->'createdAt') >= $3::jsonb \
             AND (data->'createdAt') < $4::jsonb AND ((data->'name') IS DISTINCT FROM $5::jsonb \
             OR (NOT COALESCE(created_at > $6, FALSE))) ORDER BY created_at ASC, id ASC LIMIT $7"
        );
        assert_eq!(statement.params.len(), 7);
    }

    #[test]
    fn field_names_are_quoted_as_literals() {
        let statement = planned(json!({
            "table": "projects",
            "filter": { "cmp": "eq", "left": { "field": "a'b" }, "right": { "value": 1 } }
        }))
        .unwrap();
        assert!(
            statement.sql.contains("(data->'a''b') = $1::jsonb"),
            "{}",
            statement.sql
        );
    }

    #[test]
    fn index_misuse_is_invalid_args() {
        let out_of_order = planned(json!({
            "table": "projects",
            "index": { "name": "by_user_status", "eq": [{ "field": "status", "value": "active" }] }
        }));
        assert!(matches!(out_of_order, Err(ConvoyError::InvalidArgs(_))));
        let unknown_index = planned(json!({ "table": "projects", "index": { "name": "nope" } }));
        assert!(matches!(unknown_index, Err(ConvoyError::InvalidArgs(_))));
        let unknown_table = planned(json!({ "table": "nope" }));
        assert!(matches!(unknown_table, Err(ConvoyError::InvalidArgs(_))));
        let bad_id = planned(json!({
            "table": "projects", "filter": { "cmp": "eq", "left": { "field": "_id" }, "right": { "value": "x" } }
        }));
        assert!(matches!(bad_id, Err(ConvoyError::InvalidArgs(_))));
    }

    #[test]
    fn deep_filters_are_refused() {
        let mut filter = json!({ "cmp": "eq", "left": { "field": "a" }, "right": { "value": 1 } });
        for _ in 0..40 {
            filter = json!({ "not": filter });
        }
        let result = planned(json!({ "table": "projects", "filter": filter }));
        assert!(matches!(result, Err(ConvoyError::InvalidArgs(_))));
    }

    #[test]
    fn get_without_a_table_asks_every_managed_table() {
        let statement = plan_get(&schema(), None, Uuid::nil()).unwrap();
        assert_eq!(
            statement.sql,
            "SELECT 'projects'::text, id, data, created_at FROM \"projects\" WHERE id = $1 UNION ALL \
             SELECT 'users'::text, id, data, created_at FROM \"users\" WHERE id = $1"
        );
    }
}
