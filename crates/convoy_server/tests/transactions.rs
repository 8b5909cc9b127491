//! Mutations through the HTTP server against a real Postgres: concurrent read-modify-write
//! mutations conflict, are run again, and never lose or duplicate a write.

use std::net::SocketAddr;
use std::sync::Arc;

use convoy_core::calls::{Dispatch, Dispatcher, FunctionTable};
use convoy_core::plan::QueryPlan;
use convoy_core::{ConvoyError, Database, Engine, Schema};
use convoy_server::ServerOptions;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

fn server_url() -> String {
    std::env::var("CONVOY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn admin(statement: &str) {
    let (client, connection) = tokio_postgres::connect(&server_url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statement).await.unwrap();
}

/// Stands in for the JavaScript side: each function is a small Rust closure over `ctx.db`.
struct RustHandlers {
    engine: Arc<Engine>,
}

impl Dispatcher for RustHandlers {
    fn dispatch(&self, call: Dispatch) -> convoy_core::Result<()> {
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let outcome = match call.path.as_str() {
                // Reads every counter row, then writes the next number: a textbook lost-update race.
                "counter:next" => next_number(&engine, call.call_id).await,
                // Two statements: must see one snapshot, so the call restarts inside a transaction.
                "counter:countTwice" => count_twice(&engine, call.call_id).await,
                "counter:fail" => Err(ConvoyError::App {
                    code: "NOPE".into(),
                    message: "refused".into(),
                    data: Some(json!({ "why": "test" })),
                }),
                _ => Err(ConvoyError::NotFound(call.path.clone())),
            };
            // As from JavaScript: an error crosses as its wire shape, not as the core's variant.
            let outcome = outcome.map_err(|error| ConvoyError::from_json(&error.to_native_json()));
            engine.respond(call.call_id, outcome);
        });
        Ok(())
    }
}

/// Concurrent writers in the serializable-counter test.
const WRITERS: usize = 24;

async fn next_number(engine: &Engine, call_id: u32) -> convoy_core::Result<String> {
    let rows = engine
        .query(
            call_id,
            &QueryPlan::from_json(&json!({ "table": "numbers" }).to_string())?,
        )
        .await?;
    let count = serde_json::from_str::<Vec<Value>>(&rows).unwrap().len();
    let document = json!({ "n": count + 1 }).to_string();
    engine.insert(call_id, "numbers", &document).await?;
    Ok((count + 1).to_string())
}

async fn count_twice(engine: &Engine, call_id: u32) -> convoy_core::Result<String> {
    let all = QueryPlan::from_json(&json!({ "table": "numbers" }).to_string())?;
    let first = serde_json::from_str::<Vec<Value>>(&engine.query(call_id, &all).await?).unwrap();
    let second = serde_json::from_str::<Vec<Value>>(&engine.query(call_id, &all).await?).unwrap();
    Ok(json!([first.len(), second.len()]).to_string())
}

async fn post(address: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_mutations_lose_nothing() {
    let name = format!("convoy_test_{}", uuid::Uuid::new_v4().simple());
    admin(&format!("CREATE DATABASE {name}")).await;
    let url = format!("{}/{name}", server_url().rsplit_once('/').unwrap().0);

    let engine = Arc::new(Engine::new(Database::connect(&url, 8).await.unwrap()));
    let schema = Schema::from_json(
        &json!({ "tables": [{ "name": "numbers", "managed": true }] }).to_string(),
    )
    .unwrap();
    engine.sync_schema(&schema, false).await.unwrap();
    engine.set_schema(schema).await.unwrap();
    let functions = Arc::new(FunctionTable::default());
    functions
        .replace_from_json(
            r#"{"functions": [{"path":"counter:next","kind":"mutation"},{"path":"counter:fail","kind":"mutation"},
               {"path":"counter:countTwice","kind":"query"}]}"#,
        )
        .unwrap();
    let server = convoy_server::start(
        engine.clone(),
        Arc::new(RustHandlers {
            engine: engine.clone(),
        }),
        functions,
        ServerOptions {
            port: 0,
            max_attempts: 50,
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    let address = server.address;

    let requests = (0..WRITERS).map(|_| {
        tokio::spawn(async move {
            post(
                address,
                "/api/mutation",
                r#"{"path":"counter:next","args":{}}"#,
            )
            .await
        })
    });
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }

    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let numbers: Vec<i64> = client
        .query("SELECT (data->>'n')::bigint FROM numbers ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        numbers,
        (1..=WRITERS as i64).collect::<Vec<_>>(),
        "every write landed exactly once"
    );

    // A query that reads twice restarts into a transaction once, then starts in one.
    for _ in 0..2 {
        let (status, body) = post(address, "/api/query", r#"{"path":"counter:countTwice"}"#).await;
        assert_eq!(
            (status, body),
            (200, json!({ "value": [WRITERS, WRITERS] }))
        );
    }

    // An app's own error reaches the client as it was thrown.
    let (status, body) = post(address, "/api/mutation", r#"{"path":"counter:fail"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({ "error": { "code": "NOPE", "message": "refused", "data": { "why": "test" } } })
    );

    server.stop().await;
    drop(client);
    engine.database().close();
    admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
}
