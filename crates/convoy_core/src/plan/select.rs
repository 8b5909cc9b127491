//! `SELECT`s: queries, pages (the cursor condition comes from `page`) and documents by id.

use std::fmt::Write as _;

use uuid::Uuid;

use super::ir::{CompareOp, Filter, IndexRange, Operand, QueryPlan};
use super::statement::{Param, RowShape, Statement};
use super::storage::OrderKey;
use super::storage::{managed_table, FieldRef, Layout};
use crate::error::{ConvoyError, Result};
use crate::schema::{Schema, Table};
use crate::sql::quote_ident;

/// What `plan` sorts by, as its table's layout keeps it (see [`Layout::order_key`]).
pub fn order_key(schema: &Schema, plan: &QueryPlan) -> Result<OrderKey> {
    let table = schema.table(&plan.table)?;
    Layout::of(table).order_key(table, plan.order.field.as_deref())
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
    let layout = Layout::of(table);
    let (columns, shape) = layout.row_columns(table, sort_key_column)?;
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
        check_width(filter)?;
        conditions.push(filter_sql(table, filter, &mut statement, 0)?);
    }
    if let Some(condition) = extra(&mut statement)? {
        conditions.push(condition);
    }
    if !conditions.is_empty() {
        write!(statement.sql, " WHERE {}", conditions.join(" AND ")).expect("writing to a String");
    }
    let dir = plan.order.dir.sql();
    let tiebreaker = layout.tiebreaker(table)?;
    let order_field = match plan.order.field.as_deref() {
        Some(field) => Some(layout.field(table, field)?),
        None => layout.default_order(),
    };
    let mut order = Vec::new();
    if let Some(field) = &order_field {
        order.push(field.order_term(dir));
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

/// An index range is equality on a prefix of the index's fields, then at most one field with
/// lower and/or upper bounds: the shape a btree can answer without scanning.
pub(super) fn index_conditions(
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
pub(super) const MAX_FILTER_DEPTH: usize = 32;

/// The most comparisons one filter may hold: a filter of 5,000 equalities joined by `or` took Postgres
/// minutes to plan and gigabytes to hold. A thousand plan in milliseconds.
pub const MAX_FILTER_WIDTH: usize = 1000;

/// Refuses a filter wider than [`MAX_FILTER_WIDTH`], before any of it is planned.
pub(super) fn check_width(filter: &Filter) -> Result<()> {
    fn comparisons(filter: &Filter, depth: usize) -> usize {
        if depth > MAX_FILTER_DEPTH {
            return 0; // refused by `filter_sql`, which names the depth
        }
        match filter {
            Filter::And { and: parts } | Filter::Or { or: parts } => parts
                .iter()
                .map(|part| comparisons(part, depth + 1))
                .fold(0, usize::saturating_add),
            Filter::Not { not } => comparisons(not, depth + 1),
            Filter::Compare { .. } => 1,
        }
    }
    let width = comparisons(filter, 0);
    if width > MAX_FILTER_WIDTH {
        return Err(ConvoyError::InvalidArgs(format!(
            "the filter holds {width} comparisons; at most {MAX_FILTER_WIDTH} are allowed (the limit on a filter's width)"
        )));
    }
    Ok(())
}

pub(super) fn filter_sql(
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

pub(super) fn compare_sql(
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
pub(super) fn mirror(op: CompareOp) -> CompareOp {
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
                "SELECT {}::text, {} FROM {} AS t WHERE id = {placeholder}",
                crate::sql::quote_literal(&table.name)?,
                Layout::of(table).document_columns(table)?,
                quote_ident(&table.name)?
            ))
        })
        .collect::<Result<Vec<_>>>()?
        .join(" UNION ALL ");
    Ok(statement)
}
