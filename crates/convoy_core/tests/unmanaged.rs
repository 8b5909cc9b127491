//! `.unmanaged()` tables: an existing relational table read and written through the same API,
//! its columns as the fields, compared in their own types so their own indexes apply.

mod common;

use common::{in_call, in_mutation, TestDatabase};
use convoy_core::{CallKind, Database, Engine, Schema};
use serde_json::{json, Value};
use std::sync::Arc;

async fn setup() -> (TestDatabase, Arc<Engine>) {
    let db = TestDatabase::new().await;
    db.psql()
        .await
        .batch_execute(
            "CREATE TABLE events (
               id serial PRIMARY KEY,
               event text NOT NULL,
               level integer,
               at timestamptz NOT NULL DEFAULT now()
             );
             CREATE INDEX events_level ON events (level);
             CREATE INDEX events_event ON events (event);
             INSERT INTO events (event, level) SELECT 'e' || n, n % 10 FROM generate_series(1, 5000) n;
             ANALYZE events;",
        )
        .await
        .unwrap();
    let engine = Arc::new(Engine::new(Database::connect(&db.url, 2).await.unwrap()));
    let schema = json!({ "tables": [{
        "name": "events", "managed": false, "fields": ["event", "level"],
        "indexes": [{ "name": "by_level", "fields": ["level"] }]
    }] });
    let schema = Schema::from_json(&schema.to_string()).unwrap();
    engine.sync_schema(&schema, false).await.unwrap();
    engine.set_schema(schema).await.unwrap();
    (db, engine)
}

async fn query(engine: &Arc<Engine>, plan: Value) -> convoy_core::Result<Vec<Value>> {
    in_call(engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move {
            Ok(serde_json::from_str(
                &engine
                    .query(
                        call,
                        &convoy_core::plan::QueryPlan::from_json(&plan.to_string())?,
                    )
                    .await?,
            )
            .unwrap())
        }
    })
    .await
}

#[tokio::test]
async fn columns_are_fields_and_values_take_the_columns_types() {
    let (db, engine) = setup().await;
    let rows = query(
        &engine,
        json!({
            "table": "events",
            "index": { "name": "by_level", "eq": [{ "field": "level", "value": 3 }] },
            "filter": { "cmp": "lt", "left": { "field": "id" }, "right": { "value": 40 } },
            "order": { "dir": "desc", "field": "id" },
            "limit": 2
        }),
    )
    .await
    .unwrap();
    let events: Vec<(&str, i64)> = rows
        .iter()
        .map(|row| (row["event"].as_str().unwrap(), row["_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(events, [("e33", 33), ("e23", 23)]);
    assert_eq!(rows[0]["level"], 3);
    assert!(
        rows[0]["at"].is_string(),
        "a timestamp column reads as to_jsonb writes it"
    );

    // Default order is the primary key.
    let first = query(&engine, json!({ "table": "events", "limit": 1 }))
        .await
        .unwrap();
    assert_eq!(first[0]["_id"], 1);

    // Convoy created nothing: the table is as it was, with no Convoy indexes.
    let indexes: i64 = db
        .psql()
        .await
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'events'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        indexes, 3,
        "the primary key and the table's own two indexes only"
    );

    let unknown = query(&engine, json!({ "table": "events", "filter": { "cmp": "eq", "left": { "field": "data" }, "right": { "value": 1 } } })).await;
    assert_eq!(unknown.unwrap_err().code(), "INVALID_ARGS");
}

#[tokio::test]
async fn the_tables_own_index_is_used() {
    let (db, _engine) = setup().await;
    let schema = Schema::from_json(
        &json!({ "tables": [{ "name": "events", "managed": false, "fields": ["event", "level"], "indexes": [] }] }).to_string(),
    )
    .unwrap();
    let mut schema = schema;
    convoy_core::migrate::introspect_unmanaged(
        &Database::connect(&db.url, 1).await.unwrap(),
        &mut schema,
    )
    .await
    .unwrap();
    let plan: convoy_core::plan::QueryPlan = serde_json::from_value(json!({
        "table": "events", "filter": { "cmp": "eq", "left": { "field": "event" }, "right": { "value": "e42" } }, "limit": 5
    }))
    .unwrap();
    let statement = convoy_core::plan::plan_query(&schema, &plan).unwrap();
    let lines = db
        .explain(&statement.sql.replace("$1", "'\"e42\"'").replace("$2", "5"))
        .await;
    assert!(
        lines.iter().any(|line| line.contains("events_event")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn inserts_fill_defaults_and_return_the_primary_key() {
    let (db, engine) = setup().await;
    let id = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move {
            engine
                .insert(call, "events", r#"{"event":"signup","level":7}"#)
                .await
        }
    })
    .await
    .unwrap();
    assert_eq!(id, "5001");
    let row = db
        .psql()
        .await
        .query_one(
            "SELECT event, level, at IS NOT NULL FROM events WHERE id = 5001",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, bool>(2)
        ),
        ("signup".into(), 7, true)
    );
    let missing = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "events", r#"{"nope":1}"#).await }
    })
    .await;
    assert_eq!(missing.unwrap_err().code(), "INVALID_ARGS");
}

#[tokio::test]
async fn a_missing_unmanaged_table_is_a_clear_error_at_start() {
    let db = TestDatabase::new().await;
    let engine = Engine::new(Database::connect(&db.url, 1).await.unwrap());
    let schema = Schema::from_json(
        &json!({ "tables": [{ "name": "ghosts", "managed": false }] }).to_string(),
    )
    .unwrap();
    let error = engine.set_schema(schema).await.unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
}

/// Every page of `plan`, `size` at a time, joined; and how many pages it took.
async fn all_pages(engine: &Arc<Engine>, plan: &Value, size: u32) -> (Vec<Value>, usize) {
    let mut cursor: Option<String> = None;
    let mut rows = Vec::new();
    for pages in 1.. {
        let page: Value = in_call(engine, CallKind::Query, |call| {
            let engine = engine.clone();
            let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string()).unwrap();
            let cursor = cursor.clone();
            async move {
                let page = engine
                    .paginate(call, &plan, cursor.as_deref(), size)
                    .await?;
                Ok(serde_json::from_str(&page).unwrap())
            }
        })
        .await
        .unwrap();
        rows.extend(page["page"].as_array().unwrap().iter().cloned());
        if page["isDone"] == true {
            return (rows, pages);
        }
        cursor = Some(page["continueCursor"].as_str().unwrap().to_owned());
    }
    unreachable!()
}

#[tokio::test]
async fn pages_of_an_unmanaged_table_cover_it_once_in_every_order() {
    let (db, engine) = setup().await;
    // Some rows without a level (NULL sorts last ascending, first descending), and a timestamp
    // shared by all the rows inserted together: the primary key breaks the ties.
    db.psql()
        .await
        .batch_execute("UPDATE events SET level = NULL WHERE id % 7 = 0")
        .await
        .unwrap();
    for plan in [
        json!({ "table": "events" }),
        json!({ "table": "events", "order": { "dir": "desc" } }),
        json!({ "table": "events", "order": { "dir": "asc", "field": "level" } }),
        json!({ "table": "events", "order": { "dir": "desc", "field": "level" } }),
        json!({ "table": "events", "order": { "dir": "desc", "field": "at" } }),
        json!({ "table": "events", "order": { "dir": "asc", "field": "_id" },
                "filter": { "cmp": "gte", "left": { "field": "level" }, "right": { "value": 8 } } }),
        json!({ "table": "events", "order": { "dir": "desc", "field": "event" },
                "index": { "name": "by_level", "eq": [{ "field": "level", "value": 3 }] } }),
    ] {
        let everything = query(&engine, plan.clone()).await.unwrap();
        assert!(!everything.is_empty(), "{plan}");
        let (paged, pages) = all_pages(&engine, &plan, 333).await;
        assert_eq!(paged.len(), everything.len(), "{plan}");
        assert_eq!(paged, everything, "pages in the query's own order: {plan}");
        assert_eq!(pages, everything.len().div_ceil(333).max(1), "{plan}");
    }
}

#[tokio::test]
async fn an_unmanaged_page_keeps_its_place_and_needs_a_primary_key() {
    let (db, engine) = setup().await;
    let plan = json!({ "table": "events", "order": { "dir": "asc", "field": "level" } });
    let first: Value =
        in_call(&engine, CallKind::Query, |call| {
            let engine = engine.clone();
            let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string()).unwrap();
            async move {
                Ok(serde_json::from_str(&engine.paginate(call, &plan, None, 10).await?).unwrap())
            }
        })
        .await
        .unwrap();
    let last_of_first = first["page"][9].clone();
    // Rows that sort before the cursor arrive meanwhile: the next page starts where it left off.
    db.psql()
        .await
        .batch_execute("INSERT INTO events (event, level) SELECT 'early' || n, 0 FROM generate_series(1, 50) n")
        .await
        .unwrap();
    let cursor = first["continueCursor"].as_str().unwrap().to_owned();
    let second: Value = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let plan = convoy_core::plan::QueryPlan::from_json(&plan.to_string()).unwrap();
        async move {
            Ok(
                serde_json::from_str(&engine.paginate(call, &plan, Some(&cursor), 10).await?)
                    .unwrap(),
            )
        }
    })
    .await
    .unwrap();
    let next = &second["page"][0];
    assert_eq!(next["level"], 0);
    assert!(
        next["_id"].as_i64() > last_of_first["_id"].as_i64(),
        "{next} after {last_of_first}"
    );
    assert!(!next["event"].as_str().unwrap().starts_with("early"));

    // Without a primary key there is no place to keep.
    db.psql()
        .await
        .batch_execute("CREATE TABLE lines (line text)")
        .await
        .unwrap();
    let schema = json!({ "tables": [{ "name": "lines", "managed": false, "fields": ["line"] }] });
    let schema = Schema::from_json(&schema.to_string()).unwrap();
    engine.sync_schema(&schema, false).await.unwrap();
    engine.set_schema(schema).await.unwrap();
    let refused = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move {
            engine
                .paginate(
                    call,
                    &convoy_core::plan::QueryPlan::from_json(r#"{"table":"lines"}"#)?,
                    None,
                    10,
                )
                .await
        }
    })
    .await
    .unwrap_err();
    assert_eq!(refused.code(), "INVALID_ARGS");
    assert!(refused.to_string().contains("primary key"), "{refused}");
}

#[tokio::test]
async fn rows_named_by_their_primary_key_are_patched_replaced_and_deleted() {
    let (db, engine) = setup().await;
    let row = |id: i32| {
        let db = &db;
        async move {
            db.psql()
                .await
                .query_opt("SELECT event, level FROM events WHERE id = $1", &[&id])
                .await
                .unwrap()
                .map(|row| (row.get::<_, String>(0), row.get::<_, Option<i32>>(1)))
        }
    };
    let write = |work: &'static str, key: &'static str, document: &'static str| {
        let engine = engine.clone();
        async move {
            in_mutation(&engine, |call| {
                let engine = engine.clone();
                async move {
                    match work {
                        "patch" => {
                            engine
                                .update_unmanaged(
                                    call,
                                    "events",
                                    &serde_json::from_str(key).unwrap(),
                                    document,
                                    false,
                                )
                                .await
                        }
                        "replace" => {
                            engine
                                .update_unmanaged(
                                    call,
                                    "events",
                                    &serde_json::from_str(key).unwrap(),
                                    document,
                                    true,
                                )
                                .await
                        }
                        _ => {
                            engine
                                .delete_unmanaged(
                                    call,
                                    "events",
                                    &serde_json::from_str(key).unwrap(),
                                )
                                .await
                        }
                    }
                }
            })
            .await
        }
    };
    assert_eq!(row(7).await, Some(("e7".into(), Some(7))));
    write("patch", "7", r#"{"level":5}"#).await.unwrap();
    assert_eq!(
        row(7).await,
        Some(("e7".into(), Some(5))),
        "only the column given"
    );
    write("replace", r#""7""#, r#"{"event":"seven"}"#)
        .await
        .unwrap();
    assert_eq!(
        row(7).await,
        Some(("seven".into(), None)),
        "every declared field; left out is NULL"
    );
    write("delete", "7", "").await.unwrap();
    assert_eq!(row(7).await, None);
    for (work, key) in [("patch", "7"), ("delete", "7"), ("delete", "123456")] {
        let error = write(work, key, r#"{"level":1}"#).await.unwrap_err();
        assert_eq!(error.code(), "NOT_FOUND", "{work} {key}: {error}");
    }
    let error = write("patch", r#""not a number""#, r#"{"level":1}"#)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "INVALID_ARGS", "{error}");
    let error = write("patch", "8", r#"{"nope":1}"#).await.unwrap_err();
    assert_eq!(error.code(), "INVALID_ARGS", "{error}");
    assert_eq!(
        row(8).await,
        Some(("e8".into(), Some(8))),
        "nothing changed"
    );
}
