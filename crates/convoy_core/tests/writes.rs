//! Queued writes: a mutation's writes travel with its next statement or its COMMIT, yet it reads
//! them back, and one that Postgres refuses takes the whole mutation with it.

mod common;

use common::{in_mutation, product_schema, TestDatabase};
use convoy_core::{CallKind, Seen};
use serde_json::{json, Value};

async fn count(db: &TestDatabase, table: &str) -> i64 {
    db.psql()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_mutation_reads_its_own_queued_writes() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    let id = engine
        .insert(call.id, "users", r#"{"name":"Ada"}"#)
        .await
        .unwrap();
    // Nothing has been sent yet, but the mutation knows the document…
    assert!(
        matches!(engine.seen(call.id, &id).unwrap(), Seen::Document { table, .. } if table == "users")
    );
    // …and Postgres answers with it too: the insert goes first, in the same round trip.
    let listed = engine
        .query(
            call.id,
            &convoy_core::plan::QueryPlan::from_json(&json!({ "table": "users" }).to_string())
                .unwrap(),
        )
        .await
        .unwrap();
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["_id"], id.as_str());

    engine
        .queue_replace(call.id, "users", &id, r#"{"name":"Ada Lovelace"}"#)
        .unwrap();
    let Seen::Document { json, .. } = engine.seen(call.id, &id).unwrap() else {
        panic!("the replaced document is known");
    };
    let seen: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(seen["name"], "Ada Lovelace");
    assert_eq!(seen["_creationTime"], listed[0]["_creationTime"]);
    let stored = engine
        .get(call.id, Some("users"), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), seen);

    engine.queue_delete(call.id, "users", &id).unwrap();
    assert_eq!(engine.seen(call.id, &id).unwrap(), Seen::Deleted);
    assert_eq!(engine.get(call.id, None, &id).await.unwrap(), None);
    // A deleted document cannot be written again.
    let again = engine.queue_replace(call.id, "users", &id, "{}");
    assert_eq!(again.unwrap_err().code(), "NOT_FOUND");
    engine.finish_call(&call, true).await.unwrap();
    assert_eq!(count(&db, "users").await, 0);
}

#[tokio::test]
async fn writes_queued_until_commit_all_land() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    // A handler that only writes: nothing is sent until COMMIT, which carries all of it.
    in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move {
            for n in 0..25 {
                engine.queue_insert(call, "users", &json!({ "n": n }).to_string())?;
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    assert_eq!(count(&db, "users").await, 25);
}

/// The product schema, and a rule of the app's own added with psql: Convoy learns of it only
/// when Postgres says no.
async fn with_short_names() -> (TestDatabase, std::sync::Arc<convoy_core::Engine>) {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    db.psql()
        .await
        .batch_execute(
            "ALTER TABLE users ADD CONSTRAINT short_names CHECK (length(data->>'name') < 10)",
        )
        .await
        .unwrap();
    (db, engine)
}

#[tokio::test]
async fn a_write_postgres_refuses_at_commit_commits_nothing() {
    let (db, engine) = with_short_names().await;
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    engine
        .queue_insert(call.id, "users", r#"{"name":"Ada"}"#)
        .unwrap();
    engine
        .queue_insert(call.id, "users", r#"{"name":"a name far too long"}"#)
        .unwrap();
    engine
        .queue_insert(call.id, "users", r#"{"name":"Grace"}"#)
        .unwrap();
    let error = engine.finish_call(&call, true).await.unwrap_err();
    assert!(error.to_string().contains("short_names"), "{error}");
    assert_eq!(count(&db, "users").await, 0);

    // The connection went back to the pool in a clean state: the next mutation commits.
    in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "users", r#"{"name":"Ada"}"#).await }
    })
    .await
    .unwrap();
    assert_eq!(count(&db, "users").await, 1);
}

#[tokio::test]
async fn raw_sql_makes_a_mutation_forget_what_it_has_seen() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    let id = engine
        .queue_insert(call.id, "users", r#"{"name":"Ada"}"#)
        .unwrap();
    engine
        .raw(
            call.id,
            "UPDATE users SET data = jsonb_set(data, '{name}', '\"Grace\"')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(engine.seen(call.id, &id).unwrap(), Seen::Unknown);
    let stored: Value =
        serde_json::from_str(&engine.get(call.id, None, &id).await.unwrap().unwrap()).unwrap();
    assert_eq!(
        stored["name"], "Grace",
        "the raw update ran after the insert"
    );
    engine.finish_call(&call, true).await.unwrap();
}

#[tokio::test]
async fn a_document_of_another_table_is_not_found() {
    let db = TestDatabase::new().await;
    let engine = db.engine(product_schema()).await;
    let id = in_mutation(&engine, |call| {
        let engine = engine.clone();
        async move { engine.insert(call, "users", r#"{"name":"Ada"}"#).await }
    })
    .await
    .unwrap();
    let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
    let replaced = engine.replace(call.id, "projects", &id, "{}").await;
    assert_eq!(replaced.unwrap_err().code(), "NOT_FOUND");
    // Seen in its own table, it is still not in the other one.
    engine
        .replace(call.id, "users", &id, r#"{"name":"Grace"}"#)
        .await
        .unwrap();
    let deleted = engine.queue_delete(call.id, "projects", &id);
    assert_eq!(deleted.unwrap_err().code(), "NOT_FOUND");
    engine.finish_call(&call, true).await.unwrap();
}

#[tokio::test]
async fn a_mutation_that_inserts_one_document_sends_the_insert_alone_and_clean() {
    let (db, engine) = with_short_names().await;
    let insert_one = |name: &'static str| {
        let engine = engine.clone();
        async move {
            let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
            engine
                .queue_insert(call.id, "users", &format!(r#"{{"name":"{name}"}}"#))
                .unwrap();
            engine.finish_call(&call, true).await
        }
    };
    let error = insert_one("a name far too long").await.unwrap_err();
    assert!(error.to_string().contains("short_names"), "{error}");
    assert_eq!(count(&db, "users").await, 0);
    // Refused alone, it left no transaction open: the next ones commit, on the same pool.
    for name in ["Ada", "Grace", "Edsger", "Barbara", "Ken"] {
        insert_one(name).await.unwrap();
    }
    assert_eq!(count(&db, "users").await, 5);
}

#[tokio::test]
async fn a_mutations_connection_is_serializable_and_convoys_and_keeps_the_urls_options() {
    let db = TestDatabase::new().await;
    let url = format!("{}?options=-c%20statement_timeout%3D12345", db.url);
    let database = convoy_core::Database::connect(&url, 2).await.unwrap();
    let setting = |client: deadpool_postgres::Object, name: &'static str| async move {
        let row = client
            .query_one("SELECT coalesce(current_setting($1, true), '')", &[&name])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    let writer = || async { database.writer().await.unwrap() };
    let reader = || async { database.connection().await.unwrap() };
    assert_eq!(
        setting(writer().await, "transaction_isolation").await,
        "serializable"
    );
    assert_eq!(setting(writer().await, "convoy.writer").await, "convoy");
    assert_eq!(
        setting(writer().await, "statement_timeout").await,
        "12345ms"
    );
    assert_eq!(
        setting(reader().await, "transaction_isolation").await,
        "read committed"
    );
    assert_eq!(setting(reader().await, "convoy.writer").await, "");
    assert_eq!(
        setting(reader().await, "statement_timeout").await,
        "12345ms"
    );
}

#[tokio::test]
async fn lone_inserts_at_the_same_moment_commit_together_and_each_gets_its_own_answer() {
    let (db, engine) = with_short_names().await;
    let names: Vec<String> = (0..60)
        .map(|n| match n % 20 {
            7 => format!("a name far too long {n}"),
            _ => format!("user {n}"),
        })
        .collect();
    let answers = futures_util::future::join_all(names.iter().map(|name| {
        let engine = engine.clone();
        async move {
            let (call, _answer) = engine.begin_call(CallKind::Mutation, true, None);
            let id = engine
                .queue_insert(call.id, "users", &format!(r#"{{"name":"{name}"}}"#))
                .unwrap();
            engine.finish_call(&call, true).await.map(|_| id)
        }
    }))
    .await;

    // The three rows the app's rule refuses fail alone; every other one committed, once.
    let mut committed = Vec::new();
    for (name, answer) in names.iter().zip(answers) {
        match answer {
            Ok(id) => committed.push((id, name.clone())),
            Err(error) => {
                assert!(name.starts_with("a name far too long"), "{name}: {error}");
                assert!(error.to_string().contains("short_names"), "{error}");
            }
        }
    }
    assert_eq!(committed.len(), 57);
    let rows = db
        .psql()
        .await
        .query("SELECT id::text, data->>'name' FROM users", &[])
        .await
        .unwrap();
    let mut stored: Vec<(String, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    stored.sort();
    committed.sort();
    assert_eq!(stored, committed);

    // And they went in fewer statements than rows.
    let stats = engine.group_commit_stats();
    assert_eq!(stats.rows, 60);
    assert!(stats.statements < 10, "{stats:?}");
}
