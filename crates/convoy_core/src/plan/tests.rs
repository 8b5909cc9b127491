//! The planner's unit tests: statements for each shape of query, and the refusals.

use super::*;
use uuid::Uuid;

use crate::error::{ConvoyError, Result};
use crate::schema::Schema;
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
        "SELECT 'projects'::text, id, data, created_at FROM \"projects\" AS t WHERE id = $1 UNION ALL \
         SELECT 'users'::text, id, data, created_at FROM \"users\" AS t WHERE id = $1"
    );
}
