//! A call — one run of a user function — and everything it holds: its transaction, its writes
//! not sent yet and the documents it has seen; and the registry of calls in flight.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{Engine, Finished};
use std::collections::HashMap;
use std::time::SystemTime;

use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::document::{JsonbParam, Parts};
use crate::error::{ConvoyError, Result};
use crate::reactivity::ReadSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Query,
    Mutation,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
        }
    }

    pub(super) fn begin_sql(self) -> &'static str {
        match self {
            // One snapshot for the whole query, and a promise to Postgres that nothing is written.
            Self::Query => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            // Serializable: a read-modify-write can never lose an update; conflicts re-run.
            // (A mutation's connection also says so by default; see `Database`.)
            Self::Mutation => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// What the JavaScript side answered for a call: the result as JSON text, or an error.
pub type Outcome = Result<String>;

pub struct Call {
    pub id: u32,
    pub kind: CallKind,
    /// A query that has so far issued one statement per run runs without a transaction: one
    /// statement is one snapshot already, and BEGIN and COMMIT would cost Postgres two more.
    /// Its second statement would see another snapshot, so it restarts the call instead.
    pub(super) single_statement: bool,
    pub(super) transaction: tokio::sync::Mutex<Transaction>,
    pub(super) responder: Mutex<Option<oneshot::Sender<Outcome>>>,
    /// Told whether the call committed, when someone asked (`ctx.afterCommit`).
    pub(super) committed: Mutex<Option<oneshot::Sender<bool>>>,
    pub(super) writes: Mutex<Writes>,
    /// What the call has read, for the subscriptions that run it (see `reactivity`).
    pub(super) reads: Mutex<ReadSet>,
    /// How to stop the call's statement in Postgres (see `abandon`).
    pub(super) cancel: tokio::sync::Mutex<super::abandon::CancelSlot>,
    /// The function's own timeout, when it has one: its transaction's `statement_timeout`.
    pub(super) statement_timeout: Option<std::time::Duration>,
    /// A mutation's idempotency key, and its handler's answer, recorded together at commit.
    pub(super) idempotency_key: std::sync::OnceLock<String>,
    pub(super) result: std::sync::OnceLock<String>,
}

impl Call {
    pub(super) fn writes(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes.lock().expect("writes lock poisoned")
    }

    pub(super) fn read(&self, record: impl FnOnce(&mut ReadSet)) {
        record(&mut self.reads.lock().expect("reads lock poisoned"));
    }

    /// The statement that begins the call's transaction: its isolation, and the function's own
    /// timeout when it has one (the connection's `statement_timeout` is the server's).
    pub(super) fn begin_sql(&self) -> std::borrow::Cow<'static, str> {
        match self.statement_timeout {
            None => self.kind.begin_sql().into(),
            Some(timeout) => format!(
                "{}; SET LOCAL statement_timeout = {}",
                self.kind.begin_sql(),
                timeout.as_millis().max(1)
            )
            .into(),
        }
    }

    /// Notes the handler's answer, to be recorded with the idempotency key at commit.
    pub fn answered(&self, result: &str) {
        let _ = self.result.set(result.to_owned());
    }

    /// Everything the call has read so far.
    pub fn reads(&self) -> ReadSet {
        self.reads.lock().expect("reads lock poisoned").clone()
    }
}

impl Engine {
    /// Registers a new call; its outcome arrives on the returned receiver (see [`Engine::respond`]).
    /// Mutations always run in a transaction; a query runs in one when `transactional`.
    pub fn begin_call(
        &self,
        kind: CallKind,
        transactional: bool,
        statement_timeout: Option<std::time::Duration>,
    ) -> (Arc<Call>, oneshot::Receiver<Outcome>) {
        let (sender, receiver) = oneshot::channel();
        let mut calls = self.calls.lock().expect("calls lock poisoned");
        // Ids wrap after four billion calls; skip any still in flight.
        let id = loop {
            let id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !calls.contains_key(&id) {
                break id;
            }
        };
        let call = Arc::new(Call {
            id,
            kind,
            single_statement: kind == CallKind::Query && !transactional,
            transaction: tokio::sync::Mutex::new(Transaction::default()),
            responder: Mutex::new(Some(sender)),
            committed: Mutex::new(None),
            writes: Mutex::new(Writes::default()),
            reads: Mutex::new(ReadSet::default()),
            cancel: tokio::sync::Mutex::default(),
            statement_timeout,
            idempotency_key: std::sync::OnceLock::new(),
            result: std::sync::OnceLock::new(),
        });
        calls.insert(id, call.clone());
        (call, receiver)
    }

    /// Delivers the JavaScript side's answer for a call. An answer for a call that has already
    /// ended (timed out, or answered twice) is dropped.
    pub fn respond(&self, call_id: u32, outcome: Outcome) {
        let Ok(call) = self.call(call_id) else { return };
        let sender = call
            .responder
            .lock()
            .expect("responder lock poisoned")
            .take();
        if let Some(sender) = sender {
            // The receiver is gone only if the request was abandoned; nothing is left to tell.
            let _ = sender.send(outcome);
        }
    }

    /// Delivers the answer like [`Engine::respond`], then resolves with whether the call's
    /// transaction committed: `false` for a rollback and for an attempt that conflicted and runs
    /// again. The watch is set up before the answer is sent, so the commit cannot slip past it.
    pub async fn respond_awaiting_commit(&self, call_id: u32, outcome: Outcome) -> bool {
        let Ok(call) = self.call(call_id) else {
            return false;
        };
        let (sender, receiver) = oneshot::channel();
        *call.committed.lock().expect("commit watch lock poisoned") = Some(sender);
        self.respond(call_id, outcome);
        receiver.await.unwrap_or(false)
    }

    /// Ends a call: commits (when `commit` and nothing failed) or rolls back, and returns the
    /// connection to the pool. A conflict — in a statement or at COMMIT — comes back as
    /// `ConvoyError::Conflict` so that the caller can run the function again.
    pub async fn finish_call(&self, call: &Call, commit: bool) -> Result<Finished> {
        let result = self.end_transaction(call, commit).await;
        let watcher = call
            .committed
            .lock()
            .expect("commit watch lock poisoned")
            .take();
        if let Some(watcher) = watcher {
            let _ = watcher.send(commit && matches!(result, Ok(Finished::Done)));
        }
        result
    }
}

#[derive(Default)]
pub(super) struct Transaction {
    pub(super) connection: Option<Object>,
    pub(super) began: bool,
    pub(super) finished: bool,
    /// Statements run so far (counted in single-statement mode).
    pub(super) statements: u32,
    /// A single-statement call issued a second statement: run it again in a transaction.
    pub(super) needs_restart: bool,
    /// The first statement that failed: Postgres has aborted the transaction, so every later
    /// statement fails the same way and COMMIT is impossible.
    pub(super) failure: Option<ConvoyError>,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // A call abandoned mid-transaction (its HTTP client went away, a panic) must not hand an
        // open transaction back to the pool: close that connection instead.
        if let Some(connection) = self.connection.take() {
            if self.began && !self.finished {
                drop(Object::take(connection));
            }
        }
    }
}

impl Transaction {
    pub(super) fn fail(&mut self, error: ConvoyError) -> ConvoyError {
        if self.failure.is_none() {
            self.failure = Some(error.clone());
        }
        error
    }
}

/// How many documents a mutation remembers (see [`Writes::seen`]); reads past this many are not
/// remembered, and a `patch` of such a document reads it again.
pub(super) const SEEN_LIMIT: usize = 1000;

/// A mutation's writes not yet sent, and the documents it has seen.
///
/// A write is not sent when it is made: it travels to Postgres pipelined ahead of the call's next
/// statement, or with `COMMIT`, so it costs no round trip of its own (Convex, too, holds a
/// mutation's writes until it commits). Every statement follows the writes made before it, so the
/// call reads its own writes, and a write that fails still fails the call before it can commit.
#[derive(Default)]
pub(super) struct Writes {
    pub(super) pending: Vec<PendingWrite>,
    /// Documents this call has read or written, as it sees them now — its snapshot plus its own
    /// writes, exactly what Postgres would answer — so that `patch` or `get` of a document just
    /// read needs no round trip. Raw SQL can change anything: it makes the call forget them all.
    pub(super) seen: HashMap<Uuid, SeenDocument>,
    /// A write refused before it was queued: the call cannot commit.
    pub(super) failure: Option<ConvoyError>,
    /// What the call wrote, for the commit log: table, id, and the fields before and after.
    pub(super) changes: Vec<Changed>,
    /// Raw SQL ran: it may have written anything.
    pub(super) wrote_anything: bool,
}

/// A write as the commit log will record it: its fields as JSON text, before and after.
pub(super) struct Changed {
    pub(super) table: String,
    pub(super) id: Option<Uuid>,
    pub(super) old: Option<String>,
    pub(super) new: Option<String>,
}

pub(super) struct SeenDocument {
    pub(super) table: String,
    /// `None` once this call deleted it.
    pub(super) stored: Option<(f64, String)>,
}

impl Writes {
    pub(super) fn remember(&mut self, table: &str, parts: &Parts) {
        if self.seen.len() < SEEN_LIMIT || self.seen.contains_key(&parts.id) {
            let stored = Some((parts.creation_time, parts.data.to_string()));
            self.seen.insert(
                parts.id,
                SeenDocument {
                    table: table.to_owned(),
                    stored,
                },
            );
        }
    }
}

/// What a mutation knows of a document without asking Postgres.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not read or written by this call (or forgotten): ask Postgres.
    Unknown,
    /// Deleted by this call.
    Deleted,
    Document {
        table: String,
        json: String,
    },
}

pub(super) struct PendingWrite {
    pub(super) table: String,
    pub(super) id: Uuid,
    pub(super) sql: String,
    pub(super) change: Change,
}

pub(super) enum Change {
    Insert {
        data: String,
        created_at: SystemTime,
    },
    Replace {
        data: String,
    },
    Delete,
}

impl PendingWrite {
    pub(super) async fn send(
        &self,
        connection: &Object,
        statement: &tokio_postgres::Statement,
    ) -> Result<()> {
        let id = &self.id;
        let sent = match &self.change {
            Change::Insert { data, created_at } => connection
                .execute(statement, &[id, &JsonbParam(data), created_at])
                .await
                .map(drop),
            Change::Replace { data } => connection
                .query(statement, &[id, &JsonbParam(data)])
                .await
                .map(drop),
            Change::Delete => connection.query(statement, &[id]).await.map(drop),
        };
        sent.map_err(|error| {
            // plan_replace and plan_delete divide by zero when the row is not there.
            if error.code() == Some(&SqlState::DIVISION_BY_ZERO) {
                ConvoyError::NotFound(format!("there is no document {id} in {}", self.table))
            } else {
                error.into()
            }
        })
    }
}
