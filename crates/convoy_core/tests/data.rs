//! The core against a real Postgres: schema sync, writes, reads, transactions.

mod common;

use common::{in_call, in_mutation, product_schema, TestDatabase};
use convoy_core::{CallKind, ConvoyError, Schema};
use serde_json::{json, Value};

fn list_projects(user_id: &str) -> String {
    json!({
        "table": "projects",
        "index": { "name": "by_userId", "eq": [{ "field": "userId", "value": user_id }] },
        "order": { "dir": "desc", "field": "createdAt" }
    })
    .to_string()
}

#[tokio::test]
async fn the_product_example_round_trips() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let user_id = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move {
            engine
                .insert(
                    call,
                    "users",
                    r#"{"name":"Ada","email":"ada@example.com","createdAt":1}"#,
                )
                .await
        }
    })
    .await
    .unwrap();
    for (name, created_at) in [("first", 1), ("second", 2)] {
        let document =
            json!({ "userId": user_id, "name": name, "status": "draft", "createdAt": created_at });
        in_mutation(&engine, |call| {
            let engine = engine.clone();
            async move { engine.insert(call, "projects", &document.to_string()).await }
        })
        .await
        .unwrap();
    }
    let listed = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let plan = list_projects(&user_id);
        async move {
            engine
                .query(call, &convoy_core::plan::QueryPlan::from_json(&plan)?)
                .await
        }
    })
    .await
    .unwrap();
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed
        .iter()
        .map(|doc| doc["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["second", "first"], "newest first");
    for doc in &listed {
        let id = uuid::Uuid::parse_str(doc["_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7, "ids are UUIDv7");
        assert!(
            doc["_creationTime"].as_f64().unwrap() > 1.7e12,
            "creation time is epoch ms"
        );
    }

    // Refs are plain UUID strings in JSONB, so PRODUCT.md's graduation SQL runs as written.
    let psql = db.psql().await;
    psql.batch_execute(
        "ALTER TABLE projects ADD COLUMN user_id UUID REFERENCES users(id);
         UPDATE projects SET user_id = (data->>'userId')::uuid;",
    )
    .await
    .unwrap();
    let linked: i64 = psql
        .query_one(
            "SELECT count(*) FROM projects p JOIN users u ON u.id = p.user_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 2);
}

#[tokio::test]
async fn schema_sync_is_idempotent_and_never_drops() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let schema = Schema::from_json(&product_schema().to_string()).unwrap();
    let again = engine.sync_schema(&schema, false).await.unwrap();
    assert!(
        again
            .statements
            .iter()
            .all(|statement| !statement.starts_with("CREATE")),
        "a second sync creates nothing: {:?}",
        again.statements
    );

    // A table removed from the schema is kept, with a note saying so.
    let without_users = Schema::from_json(
        &json!({ "tables": [{ "name": "projects", "managed": true, "indexes": [{ "name": "by_userId", "fields": ["userId"] }] }] })
            .to_string(),
    )
    .unwrap();
    let report = engine.sync_schema(&without_users, false).await.unwrap();
    assert!(
        report.notes.iter().any(|note| note.contains("users")),
        "{:?}",
        report.notes
    );
    let psql = db.psql().await;
    let users_exists: bool = psql
        .query_one("SELECT to_regclass('users') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(users_exists);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let db = TestDatabase::new().await;
    let database = convoy_core::Database::connect(&db.url, 2).await.unwrap();
    let engine = convoy_core::Engine::new(database);
    let schema = Schema::from_json(&product_schema().to_string()).unwrap();
    let report = engine.sync_schema(&schema, true).await.unwrap();
    assert!(!report.applied);
    assert!(report
        .statements
        .iter()
        .any(|s| s.starts_with("CREATE TABLE IF NOT EXISTS \"projects\"")));
    let psql = db.psql().await;
    let exists: bool = psql
        .query_one(
            "SELECT to_regclass('projects') IS NOT NULL OR to_regnamespace('convoy') IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!exists, "a dry run created something");
}

#[tokio::test]
async fn a_changed_index_is_rebuilt_and_the_old_one_dropped() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let changed = Schema::from_json(
        &json!({ "tables": [
            { "name": "users", "managed": true },
            { "name": "projects", "managed": true, "indexes": [{ "name": "by_userId", "fields": ["userId", "createdAt"] }] }
        ] })
        .to_string(),
    )
    .unwrap();
    engine.sync_schema(&changed, false).await.unwrap();
    let psql = db.psql().await;
    let indexes: Vec<String> = psql
        .query("SELECT indexdef FROM pg_indexes WHERE tablename = 'projects' AND indexname <> 'projects_pkey'", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(
        indexes[0].contains("(data -> 'createdAt'::text)"),
        "{indexes:?}"
    );
}

#[tokio::test]
async fn an_existing_table_of_another_shape_is_refused_not_altered() {
    let db = TestDatabase::new().await;
    db.psql()
        .await
        .batch_execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
        .await
        .unwrap();
    let database = convoy_core::Database::connect(&db.url, 2).await.unwrap();
    let engine = convoy_core::Engine::new(database);
    let schema = Schema::from_json(&product_schema().to_string()).unwrap();
    let error = engine.sync_schema(&schema, false).await.unwrap_err();
    assert!(
        matches!(error, ConvoyError::InvalidArgs(ref message) if message.contains(".unmanaged()")),
        "{error}"
    );
}

#[tokio::test]
async fn numbers_order_as_numbers() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    for created_at in [10, 2, 33, 1] {
        let document = json!({ "userId": "u", "createdAt": created_at });
        in_mutation(&engine, |call| {
            let engine = engine.clone();
            async move { engine.insert(call, "projects", &document.to_string()).await }
        })
        .await
        .unwrap();
    }
    let listed = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move {
            engine
                .query(
                    call,
                    &convoy_core::plan::QueryPlan::from_json(&list_projects("u"))?,
                )
                .await
        }
    })
    .await
    .unwrap();
    let order: Vec<i64> = serde_json::from_str::<Vec<Value>>(&listed)
        .unwrap()
        .iter()
        .map(|doc| doc["createdAt"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [33, 10, 2, 1]);
}

#[tokio::test]
async fn a_failed_mutation_writes_nothing() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    engine
        .insert(call.id, "projects", r#"{"userId":"u","createdAt":1}"#)
        .await
        .unwrap();
    engine.finish_call(&call, false).await.unwrap();
    let count: i64 = db
        .psql()
        .await
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn nul_in_a_document_is_invalid_args_and_the_call_cannot_commit() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    let error = engine
        .insert(
            call.id,
            "projects",
            r#"{"userId":"a\u0000b","createdAt":1}"#,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "INVALID_ARGS", "{error}");
    // A handler that swallows the error still cannot commit what it meant to write.
    assert!(engine.finish_call(&call, true).await.is_err());
}

#[tokio::test]
async fn queries_cannot_write() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let result = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "projects", r#"{"userId":"u"}"#).await }
    })
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn indexed_reads_use_their_index() {
    let db = TestDatabase::new().await;
    let _engine = db.engine(product_schema()).await;
    let psql = db.psql().await;
    psql.batch_execute(
        "INSERT INTO projects (id, data)
         SELECT gen_random_uuid(), jsonb_build_object('userId', 'u' || (n % 500), 'createdAt', n)
         FROM generate_series(1, 20000) n;
         ANALYZE projects;",
    )
    .await
    .unwrap();
    let plan: convoy_core::plan::QueryPlan = serde_json::from_str(&list_projects("u7")).unwrap();
    let schema = Schema::from_json(&product_schema().to_string()).unwrap();
    let statement = convoy_core::plan::plan_query(&schema, &plan).unwrap();
    let lines = db
        .explain(&statement.sql.replace("$1::jsonb", "'\"u7\"'::jsonb"))
        .await;
    assert!(
        lines.iter().any(|line| line.contains("projects_by_userId")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn get_finds_a_document_in_any_table() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let id = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "users", r#"{"name":"Ada"}"#).await }
    })
    .await
    .unwrap();
    let found = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            Ok((
                engine.get(call, None, &id).await?,
                engine.get(call, Some("projects"), &id).await?,
                engine.get(call, None, "not-an-id").await?,
            ))
        }
    })
    .await
    .unwrap();
    let doc: Value = serde_json::from_str(found.0.as_deref().unwrap()).unwrap();
    assert_eq!(doc["name"], "Ada");
    assert_eq!(doc["_id"], id);
    assert_eq!(found.1, None);
    assert_eq!(found.2, None);
}

#[tokio::test]
async fn replace_and_delete_touch_one_document_and_report_missing_ones() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let id = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "users", r#"{"name":"Ada"}"#).await }
    })
    .await
    .unwrap();
    in_mutation(&engine, |call| {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            engine
                .replace(call, "users", &id, r#"{"name":"Ada Lovelace"}"#)
                .await
        }
    })
    .await
    .unwrap();
    let located = in_call(&engine, CallKind::Query, |call| {
        let engine = engine.clone();
        let id = id.clone();
        async move { engine.locate(call, None, &id).await }
    })
    .await
    .unwrap()
    .expect("found");
    assert_eq!(located.0, "users");
    assert_eq!(
        serde_json::from_str::<Value>(&located.1).unwrap()["name"],
        "Ada Lovelace"
    );

    let missing = uuid::Uuid::now_v7().to_string();
    let replaced = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.replace(call, "users", &missing, "{}").await }
    })
    .await;
    assert_eq!(replaced.unwrap_err().code(), "NOT_FOUND");

    in_mutation(&engine, |call| {
        let engine = engine.clone();
        let id = id.clone();
        async move { engine.delete(call, "users", &id).await }
    })
    .await
    .unwrap();
    let deleted_again = in_mutation(&engine, |call| {
        let engine = engine.clone();
        let id = id.clone();
        async move { engine.delete(call, "users", &id).await }
    })
    .await;
    assert_eq!(deleted_again.unwrap_err().code(), "NOT_FOUND");
}

fn raw_schema() -> Value {
    json!({ "tables": [
        { "name": "projects", "managed": true, "fields": ["name", "status"], "indexes": [] }
    ] })
}

async fn raw(
    engine: &std::sync::Arc<convoy_core::Engine>,
    sql: &str,
    params: Value,
) -> convoy_core::Result<Value> {
    in_mutation(engine, |call| {
        let engine = engine.clone();
        let sql = sql.to_owned();
        async move {
            Ok(
                serde_json::from_str(&engine.raw(call, &sql, params.as_array().unwrap()).await?)
                    .unwrap(),
            )
        }
    })
    .await
}

#[tokio::test]
async fn raw_sql_binds_every_value_and_returns_json_rows() {
    let db = TestDatabase::new().await;
    let engine = db.engine(raw_schema()).await;
    for (name, status) in [("a", "active"), ("b", "active"), ("c", "draft")] {
        let document = json!({ "name": name, "status": status }).to_string();
        in_mutation(&engine, |call| {
            let engine = engine.clone();
            async move { engine.insert(call, "projects", &document).await }
        })
        .await
        .unwrap();
    }
    let rows = raw(
        &engine,
        "SELECT COUNT(*) AS count, sum(length(data->>'name'))::numeric / 2 AS half, \
         max(created_at) > $2 AS recent, $3::jsonb AS echoed, $4::uuid AS id, $5::text AS hostile \
         FROM projects WHERE data->>'status' = $1",
        json!(["active", 0, { "nested": [1, "two"] }, "0190c0de-0000-7000-8000-000000000000", "'; DROP TABLE projects; --"]),
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        json!([{
            "count": 2, "half": 1.0, "recent": true, "echoed": { "nested": [1, "two"] },
            "id": "0190c0de-0000-7000-8000-000000000000", "hostile": "'; DROP TABLE projects; --"
        }])
    );
    let still_there: Value = raw(&engine, "SELECT count(*) AS n FROM projects", json!([]))
        .await
        .unwrap();
    assert_eq!(still_there, json!([{ "n": 3 }]));
}

#[tokio::test]
async fn raw_sql_on_a_field_as_a_column_explains_the_data_column() {
    let db = TestDatabase::new().await;
    let engine = db.engine(raw_schema()).await;
    let error = raw(
        &engine,
        "SELECT COUNT(*) AS count FROM projects WHERE status = 'active'",
        json!([]),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("data->>'status'"), "{error}");
    let error = raw(&engine, "SELECT $1::int AS n", json!(["not a number"]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "INVALID_ARGS", "{error}");
}
