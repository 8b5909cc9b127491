//! Tells whether a URL leads to a transaction-mode pooler (`PgBouncer`, Supavisor, Neon's
//! `-pooler` hosts), which hands each transaction to whichever server connection is free.
//!
//! Convoy keeps state per connection — prepared statements, a mutation connection's settings,
//! LISTEN — that such a pooler cannot carry, so it must know before it serves. No pooler says what
//! it is, but it cannot hide that sessions share server connections: while a second session holds
//! a transaction open, a direct (or session-mode) connection keeps answering on its own backend,
//! and a transaction-mode one either moves to another backend or waits for the only one.

use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::error::{ConvoyError, Result};

/// How long a session waits for a backend before its pooler is judged to have none free. Only a
/// pooler with one server connection makes anyone wait this long; a slow direct server answering
/// within it is never mistaken for one.
const BACKEND_WAIT: Duration = Duration::from_secs(5);

/// `first` and `second` are two fresh connections to the same URL.
pub async fn is_transaction_pooler(first: &Client, second: &Client) -> Result<bool> {
    let before = backend_pid(first).await?;
    // A statement-mode pooler refuses the transaction itself.
    let Ok(held) = backend_pid_in_transaction(second).await else {
        return Ok(true);
    };
    let verdict = if held == before {
        // Two sessions took turns on one backend.
        true
    } else {
        match tokio::time::timeout(BACKEND_WAIT, backend_pid(first)).await {
            Err(_elapsed) => true,
            Ok(after) => after? != before,
        }
    };
    second.simple_query("ROLLBACK").await?;
    Ok(verdict)
}

async fn backend_pid(client: &Client) -> Result<i32> {
    first_number(&client.simple_query("SELECT pg_backend_pid()").await?)
}

async fn backend_pid_in_transaction(client: &Client) -> Result<i32> {
    first_number(
        &client
            .simple_query("BEGIN; SELECT pg_backend_pid()")
            .await?,
    )
}

/// Simple-query protocol, so that nothing here depends on a prepared statement surviving.
fn first_number(messages: &[SimpleQueryMessage]) -> Result<i32> {
    messages
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0).and_then(|text| text.parse().ok()),
            _ => None,
        })
        .ok_or_else(|| ConvoyError::Internal("pg_backend_pid() returned no row".into()))
}
