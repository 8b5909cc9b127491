//! Keyset pagination against a real Postgres.

mod common;

use common::{in_call, in_mutation, TestDatabase};
use convoy_core::CallKind;
use serde_json::{json, Value};

fn schema() -> Value {
    json!({ "tables": [{ "name": "items", "managed": true, "indexes": [{ "name": "by_n", "fields": ["n"] }] }] })
}

async fn insert(engine: &std::sync::Arc<convoy_core::Engine>, document: Value) {
    in_mutation(engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "items", &document.to_string()).await }
    })
    .await
    .unwrap();
}

async fn page(
    engine: &std::sync::Arc<convoy_core::Engine>,
    plan: &Value,
    cursor: Option<String>,
) -> convoy_core::Result<Value> {
    in_call(engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string()).unwrap();
        async move {
            let json = engine.paginate(call, &plan, cursor.as_deref(), 4).await?;
            Ok(serde_json::from_str(&json).unwrap())
        }
    })
    .await
}

async fn everything(engine: &std::sync::Arc<convoy_core::Engine>, plan: &Value) -> Vec<Value> {
    in_call(engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string()).unwrap();
        async move { Ok(serde_json::from_str::<Vec<Value>>(&engine.query(call, &plan).await?).unwrap()) }
    })
    .await
    .unwrap()
}

fn ids(documents: &[Value]) -> Vec<String> {
    documents
        .iter()
        .map(|doc| doc["_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_cover_the_query_exactly_once_in_every_order() {
    let db = TestDatabase::new().await;
    let engine = db.engine(schema()).await;
    // Duplicated sort keys, and documents without the sort field at all.
    for n in [5, 1, 3, 3, 3, 9, 2, 8, 8, 7] {
        insert(&engine, json!({ "n": n })).await;
    }
    for _ in 0..3 {
        insert(&engine, json!({ "other": true })).await;
    }
    for order in [
        json!({ "dir": "asc", "field": "n" }),
        json!({ "dir": "desc", "field": "n" }),
        json!({ "dir": "asc" }),
        json!({ "dir": "desc", "field": "_id" }),
    ] {
        let plan = json!({ "table": "items", "order": order });
        let expected = ids(&everything(&engine, &plan).await);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let result = page(&engine, &plan, cursor.clone()).await.unwrap();
            seen.extend(ids(result["page"].as_array().unwrap()));
            if result["isDone"] == json!(true) {
                break;
            }
            cursor = Some(result["continueCursor"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen, expected, "order {order}");
    }
}

#[tokio::test]
async fn inserts_between_pages_do_not_shift_them() {
    let db = TestDatabase::new().await;
    let engine = db.engine(schema()).await;
    for n in 1..=8 {
        insert(&engine, json!({ "n": n * 10 })).await;
    }
    let plan = json!({ "table": "items", "index": { "name": "by_n" }, "order": { "dir": "asc", "field": "n" } });
    let first = page(&engine, &plan, None).await.unwrap();
    let ns: Vec<i64> = first["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [10, 20, 30, 40]);
    // One before the cursor (must not appear), one after it (must).
    insert(&engine, json!({ "n": 15 })).await;
    insert(&engine, json!({ "n": 55 })).await;
    let cursor = first["continueCursor"].as_str().unwrap().to_owned();
    let second = page(&engine, &plan, Some(cursor)).await.unwrap();
    let ns: Vec<i64> = second["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [50, 55, 60, 70]);
}

#[tokio::test]
async fn forged_and_foreign_cursors_are_invalid_args() {
    let db = TestDatabase::new().await;
    let engine = db.engine(schema()).await;
    for n in 1..=6 {
        insert(&engine, json!({ "n": n })).await;
    }
    let by_n = json!({ "table": "items", "order": { "dir": "asc", "field": "n" } });
    let cursor = page(&engine, &by_n, None).await.unwrap()["continueCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_time = json!({ "table": "items", "order": { "dir": "asc" } });
    for (plan, cursor) in [
        (&by_time, cursor.clone()),
        (&by_n, "eyJxIjoiMCJ9".to_owned()),
        (&by_n, "'; DROP TABLE items; --".to_owned()),
        (&by_n, format!("{cursor}x")),
    ] {
        let error = page(&engine, plan, Some(cursor.clone())).await.unwrap_err();
        assert_eq!(error.code(), "INVALID_ARGS", "{cursor}");
    }
    let error = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move {
            engine
                .paginate(
                    call,
                    &convoy_core::plan::QueryPlan::from_json(&by_n.to_string()).unwrap(),
                    None,
                    0,
                )
                .await
        }
    })
    .await
    .unwrap_err();
    assert_eq!(error.code(), "INVALID_ARGS");
}
