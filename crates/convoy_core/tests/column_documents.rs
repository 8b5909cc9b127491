//! A relational table's queries and pages have their documents written by the core from the
//! columns (`plan::column_documents`); a get still has Postgres build them (`jsonb_build_object`).
//! The two must be the same text, byte for byte — keys in JSONB's order, Postgres's spacing and
//! escapes, its numerics — for rows holding every awkward value a column can: NaN and the
//! infinities, negative zero, numbers past an exponent, control characters, NULL in each column.

mod common;

use std::sync::Arc;

use common::{in_call, TestDatabase};
use convoy_core::plan::QueryPlan;
use convoy_core::{CallKind, Engine};
use serde_json::json;

fn schema() -> serde_json::Value {
    let column = |field: &str, column: &str, kind: &str, optional: bool, nullable: bool| {
        json!({ "field": field, "column": column, "type": kind, "notNull": false,
                "optional": optional, "nullable": nullable })
    };
    json!({ "tables": [{
        "name": "things", "managed": true, "relational": true,
        "fields": ["name", "n", "count", "ok", "ref", "meta", "maybe", "longerFieldName", "é"],
        "indexes": [{ "name": "by_n", "fields": ["n"] }],
        "columns": [
            column("name", "name", "text", true, false),
            column("n", "n", "double precision", true, false),
            column("count", "count", "bigint", true, false),
            column("ok", "ok", "boolean", true, false),
            column("ref", "ref", "uuid", true, false),
            column("meta", "meta", "jsonb", true, true),
            column("maybe", "maybe", "text", false, true),
            column("longerFieldName", "longer_field_name", "text", true, false),
            column("é", "e_acute", "double precision", true, false)
        ]
    }] })
}

/// Rows written as a user might with psql: every column's edge, and NULL.
const ROWS: &[&str] = &[
    "('plain', 1.5, 3, true, '0190b3c1-7c9e-7abc-8def-0123456789ab', '{\"b\": [1, 2.50, null], \"a\": {\"x\": \"y\"}}', 'here', 'x', 2)",
    "('esc\"apes\\ and \n\t\r' || chr(8) || chr(12) || chr(1) || chr(31) || ' é ☃ 😀 /', 'NaN', -9223372036854775808, false, NULL, 'null', NULL, NULL, '-0')",
    "(NULL, 'Infinity', 9223372036854775807, NULL, NULL, '\"text\"', NULL, '', '-Infinity')",
    "('', 1e21, 0, NULL, NULL, NULL, '', NULL, 1.5e-7)",
    "(NULL, 123456789012345680000, NULL, NULL, NULL, '12345678901234567890.000001', NULL, NULL, 5e-324)",
    "(NULL, -0.1, NULL, NULL, NULL, '[]', NULL, NULL, 1e300)",
    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
];

async fn query(engine: &Arc<Engine>, plan: serde_json::Value) -> Vec<String> {
    let plan = QueryPlan::from_json(&plan.to_string()).unwrap();
    let json = in_call(engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move { engine.query(call, &plan).await }
    })
    .await
    .unwrap();
    let documents: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    // Each document's own text, as it came: split the array at the documents' `_id`s.
    let mut texts: Vec<String> = json
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(",{\"_id\":")
        .enumerate()
        .map(|(at, text)| {
            if at == 0 {
                text.to_owned()
            } else {
                format!("{{\"_id\":{text}")
            }
        })
        .collect();
    texts.retain(|text| !text.is_empty());
    assert_eq!(texts.len(), documents.len());
    texts
}

#[tokio::test]
async fn the_core_writes_a_relational_rows_document_as_postgres_builds_it() {
    let db = TestDatabase::new().await;
    let engine = db.engine(schema()).await;
    let psql = db.psql().await;
    for (at, row) in ROWS.iter().enumerate() {
        let id = format!("0190b3c1-7c9e-7abc-8def-{at:012}");
        psql.batch_execute(&format!(
            "INSERT INTO things (id, name, n, count, ok, ref, meta, maybe, longer_field_name, e_acute) \
             SELECT '{id}', v.column1::text, v.column2::float8, v.column3::int8, v.column4::bool, \
             v.column5::uuid, v.column6::jsonb, v.column7::text, v.column8::text, v.column9::float8 \
             FROM (VALUES {row}) AS v"
        ))
        .await
        .unwrap();
    }
    let queried = query(&engine, json!({ "table": "things" })).await;
    assert_eq!(queried.len(), ROWS.len());
    for text in &queried {
        let document: serde_json::Value = serde_json::from_str(text).unwrap();
        let id = document["_id"].as_str().unwrap().to_owned();
        let got = in_call(&engine, CallKind::Query, |call| {
            let engine = engine.clone();
            async move { engine.get(call, Some("things"), &id).await }
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(text, &got, "written by the core, then by Postgres");
    }
    // A page's documents are written the same way (its sort key is one column more).
    let page = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let plan = QueryPlan::from_json(
            &json!({ "table": "things", "order": { "dir": "asc", "field": "n" } }).to_string(),
        )
        .unwrap();
        async move { engine.paginate(call, &plan, None, 100).await }
    })
    .await
    .unwrap();
    for text in &queried {
        assert!(page.contains(text.as_str()), "{text} is not in {page}");
    }
}
