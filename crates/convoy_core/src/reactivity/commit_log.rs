//! The log of this process's commits (and those heard from the others), numbered in order.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

use super::read_set::ReadSet;
use super::write_set::WriteSet;
use crate::schema::Schema;

/// How many commits the log keeps. A query whose run began before the oldest of them re-runs.
pub(super) const LOG_CAPACITY: usize = 4096;

/// The commits of this process (and, later, of the others on the database), numbered in order.
pub struct CommitLog {
    entries: Mutex<Entries>,
    /// The newest position, for whoever waits on commits.
    position: watch::Sender<u64>,
}

struct Entries {
    /// Position of `entries[0]`.
    first: u64,
    entries: VecDeque<std::sync::Arc<WriteSet>>,
}

impl Default for CommitLog {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                first: 1,
                entries: VecDeque::new(),
            }),
            position: watch::channel(0).0,
        }
    }
}

impl CommitLog {
    /// The position of the newest commit (0 before the first).
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Appends a commit and returns its position.
    pub fn append(&self, commit: std::sync::Arc<WriteSet>) -> u64 {
        let mut log = self.entries.lock().expect("commit log poisoned");
        log.entries.push_back(commit);
        if log.entries.len() > LOG_CAPACITY {
            log.entries.pop_front();
            log.first += 1;
        }
        let position = log.first + log.entries.len() as u64 - 1;
        // Sent under the lock, so positions are announced in order.
        self.position.send_replace(position);
        position
    }

    /// The commits after `position`, up to the newest; `None` when some of them are no longer
    /// kept (the caller must assume they touched everything).
    pub fn since(&self, position: u64) -> Option<Vec<(u64, std::sync::Arc<WriteSet>)>> {
        let log = self.entries.lock().expect("commit log poisoned");
        if position + 1 < log.first {
            return None;
        }
        let skip = (position + 1 - log.first) as usize;
        Some(
            log.entries
                .iter()
                .enumerate()
                .skip(skip)
                .map(|(offset, commit)| (log.first + offset as u64, commit.clone()))
                .collect(),
        )
    }

    /// Whether a commit after `position` may have changed what `reads` read.
    pub fn touched_since(&self, position: u64, reads: &ReadSet, schema: &Schema) -> bool {
        match self.since(position) {
            None => true,
            Some(commits) => commits
                .iter()
                .any(|(_, commit)| reads.touched_by(commit, schema)),
        }
    }
}
