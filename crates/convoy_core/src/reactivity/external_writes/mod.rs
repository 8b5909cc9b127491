//! Writes made outside Convoy, taken from the queue the change triggers fill
//! (`migrate::change_trigger`) and told to this process's live queries and to the other
//! processes'.
//!
//! Every process polls the queue, and each row goes to the one that deletes it: it appends the
//! rows to its own log and, in the same transaction as the delete, announces them to the others
//! as its own commits are announced (`Neighbours`). So a row is told exactly once to every
//! process, even when the one that took it dies right after: its delete then rolled back, or the
//! announcement went out with it.
//!
//! Polling, not `NOTIFY`: a writer that notified paid a lock for the whole cluster at every
//! commit, and a poll of an empty queue costs Postgres about as little as a query can. The poll
//! interval bounds the delay an outside write adds before its live queries re-run.

mod queued;
mod take;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{CommitLog, Neighbours, WriteSet};
use crate::database::Database;
use crate::schema::Schema;
use take::Taker;
use upkeep::Upkeep;

/// How often the queue is looked at: the most an outside write waits before it is seen. A poll
/// of an empty queue costs Postgres and Convoy some 20 µs each, so 200 a second are about 1 % of a core;
/// `CONVOY_CHANGE_POLL_MS` sets another interval (docs/postgres.md).
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How often the queue is looked for while it does not exist (no `convoy migrate` yet, or the
/// triggers turned off).
const ABSENT_INTERVAL: Duration = Duration::from_secs(2);

fn poll_interval() -> Duration {
    std::env::var("CONVOY_CHANGE_POLL_MS")
        .ok()
        .and_then(|millis| millis.parse::<u64>().ok())
        .filter(|millis| *millis > 0)
        .map_or(POLL_INTERVAL, Duration::from_millis)
}

/// Polls the queue for as long as the process runs, reconnecting when the connection breaks.
pub async fn follow(
    database: &Database,
    log: &CommitLog,
    neighbours: &Neighbours,
    schema: impl Fn() -> Arc<Schema>,
) {
    loop {
        match database.own_connection().await {
            Ok(client) => {
                let error = poll(&client, log, neighbours, &schema).await;
                tracing::warn!(%error, "lost the connection that reads outside writes; reconnecting");
                // A poll may have taken rows whose answer was lost with the connection.
                log.append(Arc::new(WriteSet::everything()));
            }
            Err(error) => tracing::warn!(%error, "could not connect to read outside writes"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Polls until something fails, and returns what did.
async fn poll(
    client: &Client,
    log: &CommitLog,
    neighbours: &Neighbours,
    schema: &impl Fn() -> Arc<Schema>,
) -> crate::ConvoyError {
    let mut taker = loop {
        match Taker::prepare(client).await {
            Ok(prepared) => break prepared,
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                tokio::time::sleep(ABSENT_INTERVAL).await;
            }
            Err(error) => return error.into(),
        }
    };
    let mut upkeep = Upkeep::default();
    let mut interval = tokio::time::interval(poll_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let taken = match taker.take(client, neighbours, &schema()).await {
            Ok((taken, commit)) => {
                if !commit.is_empty() {
                    log.append(Arc::new(commit));
                }
                taken
            }
            Err(error) => return error,
        };
        upkeep.taken(taken);
        upkeep.after_poll(client, taken > 0).await;
    }
}
