//! The call registry: each run of a user function, its id, and the answer it waits for.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::transaction::Transaction;
use super::writes::Writes;
use super::{Engine, Finished};
use crate::error::Result;
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
}

impl Call {
    pub(super) fn writes(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes.lock().expect("writes lock poisoned")
    }

    pub(super) fn read(&self, record: impl FnOnce(&mut ReadSet)) {
        record(&mut self.reads.lock().expect("reads lock poisoned"));
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
