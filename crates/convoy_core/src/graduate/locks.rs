//! DDL that never waits long behind the app's traffic, nor makes it wait: each statement asks
//! for its lock with a short `lock_timeout` and, refused, tries again later with backoff
//! (GRADUATION.md step 1). A statement queued behind a long transaction would otherwise block
//! every query that comes after it.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::database::Database;
use crate::error::{ConvoyError, Result};

/// How long a graduation's statement may wait for its lock before it gives way.
const LOCK_TIMEOUT: &str = "500ms";
/// Attempts before a graduation gives up on a lock (about two minutes of backoff in all).
const ATTEMPTS: u32 = 30;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100 * 2u64.pow(attempt.min(6))).min(5_000))
}

fn is_lock_timeout(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// Runs one statement with a short lock timeout, again and again while the lock is refused.
pub(super) async fn run(database: &Database, statement: &str) -> Result<()> {
    run_in_transaction(database, &[statement.to_owned()]).await
}

/// Runs `statements` in one transaction under a short lock timeout, retried whole while a lock
/// is refused: a step that must be atomic (complete, abort) holds its locks only for as long as
/// its statements take.
pub(super) async fn run_in_transaction(database: &Database, statements: &[String]) -> Result<()> {
    let client = database.schema_connection().await?;
    let script = format!(
        "BEGIN;\nSET LOCAL lock_timeout = '{LOCK_TIMEOUT}';\nSET LOCAL convoy.writer = 'convoy';\n{};\nCOMMIT",
        statements.join(";\n")
    );
    for attempt in 1..=ATTEMPTS {
        match client.batch_execute(&script).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                // A failed script leaves its transaction open and aborted.
                let _ = client.batch_execute("ROLLBACK").await;
                if !is_lock_timeout(&error) {
                    return Err(explain(error, statements));
                }
                tracing::info!(
                    attempt,
                    "a graduation statement waited too long for its lock; trying again"
                );
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    Err(ConvoyError::Unavailable(format!(
        "the table stayed locked by other transactions through {ATTEMPTS} attempts: {}",
        statements.first().map_or("", String::as_str)
    )))
}

/// Builds an index concurrently (no transaction can hold it); an earlier build that was
/// interrupted leaves an invalid index behind, which is dropped and built again.
pub(super) async fn build_index(database: &Database, name: &str, statement: &str) -> Result<()> {
    let client = database.schema_connection().await?;
    let valid: Option<bool> = client
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relname = $1 AND c.relnamespace = to_regnamespace(current_schema())",
            &[&name],
        )
        .await?
        .map(|row| row.get(0));
    if valid == Some(true) {
        return Ok(());
    }
    if valid == Some(false) {
        client
            .batch_execute(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                crate::sql::quote_ident(name)?
            ))
            .await?;
    }
    client
        .batch_execute(statement)
        .await
        .map_err(|error| explain(error, &[statement.to_owned()]))
}

fn explain(error: tokio_postgres::Error, statements: &[String]) -> ConvoyError {
    let message = error
        .as_db_error()
        .map_or_else(|| error.to_string(), |db| db.message().to_owned());
    let statement = statements.first().map_or("", String::as_str);
    match ConvoyError::from(error) {
        ConvoyError::Unavailable(detail) => ConvoyError::Unavailable(detail),
        _ => ConvoyError::InvalidArgs(format!(
            "the graduation could not run `{statement}`: {message}"
        )),
    }
}
