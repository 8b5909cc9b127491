// Each test crate uses a different part of these helpers.
#![allow(dead_code)]

//! A database of its own for each test, created on the server at `CONVOY_TEST_DATABASE_URL`
//! (default: the local Postgres) and dropped when the test ends.

use std::sync::Arc;

use convoy_core::{CallKind, Database, Engine, Schema};
use tokio_postgres::NoTls;

pub fn server_url() -> String {
    std::env::var("CONVOY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(database: &str) -> String {
    let base = server_url();
    let (prefix, _) = base.rsplit_once('/').expect("the URL names a database");
    format!("{prefix}/{database}")
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let name = format!("convoy_test_{}", uuid::Uuid::new_v4().simple());
        admin(&format!("CREATE DATABASE {name}")).await;
        Self {
            url: url_for(&name),
            name,
        }
    }

    pub async fn engine(&self, schema_json: serde_json::Value) -> Arc<Engine> {
        let database = Database::connect(&self.url, 4).await.expect("connect");
        let engine = Arc::new(Engine::new(database));
        let schema = Schema::from_json(&schema_json.to_string()).expect("schema");
        engine.sync_schema(&schema, false).await.expect("sync");
        engine.set_schema(schema).await.expect("set schema");
        engine
    }

    /// The lines of `EXPLAIN statement`, to check which index Postgres uses.
    pub async fn explain(&self, statement: &str) -> Vec<String> {
        self.psql()
            .await
            .query(format!("EXPLAIN {statement}").as_str(), &[])
            .await
            .expect("EXPLAIN")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// A plain connection, for looking at what Convoy wrote the way a user would in psql.
    pub async fn psql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a thread with its own runtime does the async cleanup.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(admin(&format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )));
        })
        .join()
        .expect("cleanup thread");
    }
}

async fn admin(statement: &str) {
    let (client, connection) = tokio_postgres::connect(&server_url(), NoTls)
        .await
        .expect("the test Postgres must be running (see README)");
    tokio::spawn(connection);
    client.batch_execute(statement).await.expect(statement);
}

pub fn product_schema() -> serde_json::Value {
    serde_json::json!({ "tables": [
        { "name": "users", "managed": true, "indexes": [] },
        { "name": "projects", "managed": true, "indexes": [{ "name": "by_userId", "fields": ["userId"] }] }
    ] })
}

/// Runs `work` as one mutation call and commits it.
pub async fn in_mutation<T, F, Fut>(engine: &Arc<Engine>, work: F) -> convoy_core::Result<T>
where
    F: FnOnce(u32) -> Fut,
    Fut: std::future::Future<Output = convoy_core::Result<T>>,
{
    in_call(engine, CallKind::Mutation, work).await
}

pub async fn in_call<T, F, Fut>(
    engine: &Arc<Engine>,
    kind: CallKind,
    work: F,
) -> convoy_core::Result<T>
where
    F: FnOnce(u32) -> Fut,
    Fut: std::future::Future<Output = convoy_core::Result<T>>,
{
    let (call, _answer) = engine.begin_call(kind, true, None);
    let result = work(call.id).await;
    engine.finish_call(&call, result.is_ok()).await?;
    result
}
