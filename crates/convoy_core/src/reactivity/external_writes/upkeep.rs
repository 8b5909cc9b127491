//! Vacuuming the queue: every poll scans it, so its dead rows must not pile up between the
//! minute-long rounds of autovacuum.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// How often, at most, the queue is vacuumed while rows are being taken from it.
const VACUUM_INTERVAL: Duration = Duration::from_millis(200);

/// How long the queue stays empty before it is truncated: truncating locks out the writers, so it
/// waits for a pause.
const IDLE_BEFORE_TRUNCATE: Duration = Duration::from_secs(1);

pub struct Upkeep {
    dead_rows: u64,
    last_vacuum: Instant,
    last_taken: Instant,
    /// Pages freed since the last truncation, for all this process knows.
    untruncated: bool,
    /// The role does not own the queue: autovacuum will have to do.
    refused: bool,
}

impl Default for Upkeep {
    fn default() -> Self {
        Self {
            dead_rows: 0,
            last_vacuum: Instant::now(),
            last_taken: Instant::now(),
            untruncated: false,
            refused: false,
        }
    }
}

impl Upkeep {
    pub fn taken(&mut self, rows: u64) {
        if rows > 0 {
            self.dead_rows += rows;
            self.untruncated = true;
            self.last_taken = Instant::now();
        }
    }

    /// Vacuums when it is due. Another process vacuuming already is as good (`SKIP_LOCKED`).
    pub async fn after_poll(&mut self, client: &Client, queued: bool) {
        if self.refused {
            return;
        }
        let statement = if self.dead_rows > 0 && self.last_vacuum.elapsed() >= VACUUM_INTERVAL {
            "VACUUM (SKIP_LOCKED) convoy.changes"
        } else if !queued && self.untruncated && self.last_taken.elapsed() >= IDLE_BEFORE_TRUNCATE {
            self.untruncated = false;
            "VACUUM (SKIP_LOCKED, TRUNCATE) convoy.changes"
        } else {
            return;
        };
        if let Err(error) = client.batch_execute(statement).await {
            tracing::warn!(%error, "could not vacuum convoy.changes; autovacuum will");
            self.refused = true;
        }
        self.last_vacuum = Instant::now();
        self.dead_rows = 0;
    }
}
