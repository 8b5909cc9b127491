//! Group commit for the commonest mutation: one that only inserts one document.
//!
//! Such a mutation needs no transaction of its own: its `INSERT` alone is one, serializable on a
//! mutation's connection (see `Database`). And inserts of different mutations that wait at the
//! same moment can share one: one statement inserts them all (`unnest` of the rows), one
//! commit makes them durable together, and Postgres pays its per-statement and per-commit costs
//! once for the lot. That is safe because none of them reads anything: committing them together
//! is the same as committing them one after the other, with nothing in between.
//!
//! At most [`FLUSHES`] statements are in flight at once. Whoever waits meanwhile queues, and the
//! next flush takes everyone queued, so under light load each insert goes alone, at once, and
//! under heavy load the batches grow by themselves — no timer, no added wait. Every waiting
//! insert competes for the next flush, so nothing queued is ever left behind. A batch that
//! Postgres refuses (a constraint of the app's own, a conflict) is sent again row by row, so
//! each mutation gets its own answer and one bad row never fails its neighbours. A relational
//! table's rows go as typed columns where they can (`plan::typed_rows`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use deadpool_postgres::Object;
use futures_util::future::join_all;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::database::Database;
use crate::document::JsonbParam;
use crate::error::{ConvoyError, Result};
use crate::plan::{ColumnValues, ColumnsInsert};

/// Statements in flight at once; the rest of the writers' pool serves the other mutations.
const FLUSHES: usize = 2;
/// Rows per statement, and their documents' bytes: past either the rest waits for the next flush.
const MAX_ROWS: usize = 500;
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// One mutation's one insert into a managed table.
pub struct LoneInsert {
    pub table: String,
    pub id: Uuid,
    pub data: String,
    pub created_at: SystemTime,
    /// Inserts this row alone: `$1` id, `$2` data, `$3` `created_at` (`plan_insert`).
    pub sql: String,
    /// Inserts many rows: `$1` ids, `$2` data, `$3` `created_at`, as arrays (`plan_insert_rows`).
    pub rows_sql: String,
    /// A relational table's insert from typed arrays, tried first (`plan_insert_columns`).
    pub columns: Option<Arc<ColumnsInsert>>,
}

struct Queued {
    insert: LoneInsert,
    done: oneshot::Sender<Result<()>>,
}

/// How many statements group commit has sent, and how many rows they carried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub statements: u64,
    pub rows: u64,
}

pub struct GroupCommit {
    queue: Mutex<Vec<Queued>>,
    flushes: Arc<Semaphore>,
    statements: Arc<AtomicU64>,
    rows: Arc<AtomicU64>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            flushes: Arc::new(Semaphore::new(FLUSHES)),
            statements: Arc::default(),
            rows: Arc::default(),
        }
    }
}

impl GroupCommit {
    /// Inserts and commits the row, alone or with others queued at the same moment; resolves once
    /// it is committed, or with the error Postgres gave for this row.
    pub async fn insert(&self, database: &Database, insert: LoneInsert) -> Result<()> {
        let (done, mut answer) = oneshot::channel();
        self.queued().push(Queued { insert, done });
        loop {
            let permit = tokio::select! {
                biased;
                answer = &mut answer => return answered(answer),
                permit = self.flushes.clone().acquire_owned() => permit.expect("never closed"),
            };
            let batch = self.take();
            if batch.is_empty() {
                // Someone else's flush took this insert.
                drop(permit);
                return answered(answer.await);
            }
            // A task of its own, holding the permit, so that a caller who goes away (its HTTP
            // client left) cannot stop a statement half-answered: the other rows' callers still
            // get their answers, and no more than FLUSHES statements are ever in flight.
            let _ = tokio::spawn(flush(
                database.clone(),
                batch,
                permit,
                self.statements.clone(),
                self.rows.clone(),
            ))
            .await;
        }
    }

    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            statements: self.statements.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().expect("group commit queue lock poisoned")
    }

    /// The next batch, oldest first. An insert whose caller has gone away is never sent.
    fn take(&self) -> Vec<Queued> {
        let mut queue = self.queued();
        queue.retain(|queued| !queued.done.is_closed());
        let mut bytes = 0;
        let mut rows = 0;
        while rows < queue.len() && rows < MAX_ROWS && (rows == 0 || bytes < MAX_BYTES) {
            bytes += queue[rows].insert.data.len();
            rows += 1;
        }
        queue.drain(..rows).collect()
    }
}

fn answered(answer: std::result::Result<Result<()>, oneshot::error::RecvError>) -> Result<()> {
    answer.unwrap_or_else(|_| {
        Err(ConvoyError::Unavailable(
            "the insert's outcome is unknown: its statement was abandoned".into(),
        ))
    })
}

/// Sends a batch, one statement per table, pipelined on one connection, and answers every row.
async fn flush(
    database: Database,
    batch: Vec<Queued>,
    _permit: OwnedSemaphorePermit,
    statements: Arc<AtomicU64>,
    rows: Arc<AtomicU64>,
) {
    let connection = match database.writer().await {
        Ok(connection) => connection,
        Err(error) => return answer_all(batch, &Err(error)),
    };
    let mut tables: Vec<Vec<Queued>> = Vec::new();
    for queued in batch {
        match tables
            .iter_mut()
            .find(|rows| rows[0].insert.table == queued.insert.table)
        {
            Some(rows) => rows.push(queued),
            None => tables.push(vec![queued]),
        }
    }
    statements.fetch_add(tables.len() as u64, Ordering::Relaxed);
    rows.fetch_add(
        tables.iter().map(|rows| rows.len() as u64).sum(),
        Ordering::Relaxed,
    );
    let sent = join_all(tables.iter().map(|rows| send(&connection, rows))).await;
    let mut broken = false;
    for (rows, sent) in tables.into_iter().zip(sent) {
        match sent {
            Err(error) if rows.len() > 1 && error.as_db_error().is_some() => {
                // Postgres refused the lot: once more row by row, each with its own answer.
                let alone = join_all(rows.iter().map(|queued| send_one(&connection, queued))).await;
                for (queued, sent) in rows.into_iter().zip(alone) {
                    broken |= sent
                        .as_ref()
                        .is_err_and(|error| error.as_db_error().is_none());
                    let _ = queued.done.send(sent.map_err(ConvoyError::from));
                }
            }
            sent => {
                broken |= sent
                    .as_ref()
                    .is_err_and(|error| error.as_db_error().is_none());
                answer_all(rows, &sent.map_err(ConvoyError::from));
            }
        }
    }
    if broken {
        // No answer from Postgres: the connection's state is unknown, never reuse it.
        drop(Object::take(connection));
    }
}

fn answer_all(batch: Vec<Queued>, outcome: &Result<()>) {
    for queued in batch {
        let _ = queued.done.send(outcome.clone());
    }
}

/// Inserts the rows of one table in one statement (the usual one when there is only one row).
async fn send(
    connection: &Object,
    rows: &[Queued],
) -> std::result::Result<(), tokio_postgres::Error> {
    if let Some(sent) = send_columns(connection, rows).await {
        return sent;
    }
    let [queued] = rows else {
        let statement = connection.prepare_cached(&rows[0].insert.rows_sql).await?;
        let ids: Vec<Uuid> = rows.iter().map(|queued| queued.insert.id).collect();
        let data: Vec<JsonbParam> = rows
            .iter()
            .map(|queued| JsonbParam(&queued.insert.data))
            .collect();
        let created: Vec<SystemTime> = rows.iter().map(|queued| queued.insert.created_at).collect();
        return connection
            .execute(&statement, &[&ids, &data, &created])
            .await
            .map(drop);
    };
    send_one(connection, queued).await
}

async fn send_one(
    connection: &Object,
    queued: &Queued,
) -> std::result::Result<(), tokio_postgres::Error> {
    if let Some(sent) = send_columns(connection, std::slice::from_ref(queued)).await {
        return sent;
    }
    let insert = &queued.insert;
    let statement = connection.prepare_cached(&insert.sql).await?;
    connection
        .execute(
            &statement,
            &[&insert.id, &JsonbParam(&insert.data), &insert.created_at],
        )
        .await
        .map(drop)
}

/// Inserts a relational table's rows as typed columns; `None` when the table is written as
/// documents, or when a row holds a value that must go as one (see `plan::typed_rows`).
async fn send_columns(
    connection: &Object,
    rows: &[Queued],
) -> Option<std::result::Result<(), tokio_postgres::Error>> {
    let columns = rows[0].insert.columns.as_ref()?;
    let documents: Vec<&str> = rows
        .iter()
        .map(|queued| queued.insert.data.as_str())
        .collect();
    let values: Vec<ColumnValues> = columns.values(&documents)?;
    let ids: Vec<Uuid> = rows.iter().map(|queued| queued.insert.id).collect();
    let created: Vec<SystemTime> = rows.iter().map(|queued| queued.insert.created_at).collect();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ids, &created];
    params.extend(values.iter().map(ColumnValues::as_sql));
    let sent = match connection.prepare_cached(&columns.sql).await {
        Ok(statement) => connection.execute(&statement, &params).await.map(drop),
        Err(error) => Err(error),
    };
    Some(sent)
}
