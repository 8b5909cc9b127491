//! Mutations that never apply twice (DESIGN.md § Retries that never double-apply). A client sends
//! each mutation with an idempotency key of its own making, and the same key when it sends it
//! again. The key and the mutation's answer are written in the mutation's own transaction, so
//! they commit together or not at all: a repeat is answered with the recorded answer instead of
//! running, and a commit whose answer the connection lost is settled by looking the key up.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::call::Call;
use super::Engine;
use crate::error::{ConvoyError, Result};

/// Written with the mutation's writes, just before its `COMMIT`.
pub(super) const RECORD: &str =
    "INSERT INTO convoy.mutation_results (key, result) VALUES ($1, $2::text::jsonb)";

const LOOKUP: &str = "SELECT result::text FROM convoy.mutation_results WHERE key = $1";

/// How long a key is remembered: a client retrying later than this runs the mutation anew.
pub const KEY_LIFETIME: Duration = Duration::from_hours(24);

/// How often keys past their lifetime are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_mins(10);

/// The most bytes a key may have.
pub const MAX_KEY_BYTES: usize = 200;

impl Engine {
    /// Gives `call` its idempotency key.
    pub fn keyed(&self, call: &Call, key: &str) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(ConvoyError::InvalidArgs(format!(
                "an Idempotency-Key must be 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        let _ = call.idempotency_key.set(key.to_owned());
        Ok(())
    }

    /// The answer recorded for `key`, if a mutation with it committed.
    pub async fn recorded_result(&self, key: &str) -> Result<Option<String>> {
        let client = self.database.connection().await?;
        // Prepared once per connection: every client mutation asks this before it runs.
        let looked_up = match client.prepare_cached(LOOKUP).await {
            Ok(statement) => client.query_opt(&statement, &[&key]).await,
            Err(error) => Err(error),
        };
        match looked_up {
            Ok(row) => Ok(row.map(|row| row.get(0))),
            // Not migrated yet: nothing was ever recorded.
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes keys past [`KEY_LIFETIME`], for as long as the process runs.
    pub async fn expire_recorded_results(&self) {
        loop {
            tokio::time::sleep(EXPIRY_INTERVAL).await;
            let deleted = async {
                let client = self.database.connection().await?;
                client
                    .execute(
                        "DELETE FROM convoy.mutation_results WHERE created_at < now() - $1::bigint * interval '1 second'",
                        &[&i64::try_from(KEY_LIFETIME.as_secs()).unwrap_or(i64::MAX)],
                    )
                    .await
                    .map_err(ConvoyError::from)
            }
            .await;
            if let Err(error) = deleted {
                if !matches!(&error, ConvoyError::Internal(message) if message.contains("does not exist"))
                {
                    tracing::warn!(%error, "could not delete expired idempotency keys");
                }
            }
        }
    }
}

/// Whether `error` is the key's own primary key refusing a second row: the mutation already
/// committed under this key.
pub(super) fn is_repeat(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.table() == Some("mutation_results")
    })
}
