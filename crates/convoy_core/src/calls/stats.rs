//! What the call runner counts, for `/metrics`: kept in atomics so that counting costs a call
//! nothing measurable.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::CallKind;

#[derive(Default)]
pub struct CallStats {
    /// Runs of user functions, retries included: [query, mutation].
    executions: [AtomicU64; 2],
    /// Runs ended by a conflict (serialization failure or deadlock) and run again.
    conflicts_retried: AtomicU64,
    /// Query runs restarted inside a transaction after a second statement.
    restarts: AtomicU64,
    /// Runs that met a table moved to another stage (a graduation) and ran again.
    storage_retried: AtomicU64,
    /// Mutations answered with the result recorded under their idempotency key, not run.
    repeats_answered: AtomicU64,
}

fn kind_index(kind: CallKind) -> usize {
    match kind {
        CallKind::Query => 0,
        CallKind::Mutation => 1,
    }
}

impl CallStats {
    pub fn execution(&self, kind: CallKind) {
        self.executions[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn conflict_retried(&self) {
        self.conflicts_retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn storage_retried(&self) {
        self.storage_retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn repeat_answered(&self) {
        self.repeats_answered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn repeats_answered(&self) -> u64 {
        self.repeats_answered.load(Ordering::Relaxed)
    }

    pub fn storage_retries(&self) -> u64 {
        self.storage_retried.load(Ordering::Relaxed)
    }

    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn executions(&self, kind: CallKind) -> u64 {
        self.executions[kind_index(kind)].load(Ordering::Relaxed)
    }

    pub fn conflicts_retried(&self) -> u64 {
        self.conflicts_retried.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}
