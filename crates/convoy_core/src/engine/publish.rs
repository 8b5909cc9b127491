//! What a commit publishes: its write set to this process's commit log, and to the other
//! processes on the database through `LISTEN`/`NOTIFY`.

use std::sync::Arc;

use super::call::Changed;
use super::Engine;
use crate::reactivity::{Write, WriteSet};

impl Engine {
    /// Logs and announces what a call that just committed wrote.
    pub(super) fn committed(&self, changes: &[Changed], wrote_anything: bool) {
        let Some(commit) = Self::write_set(changes, wrote_anything) else {
            return;
        };
        let commit = Arc::new(commit);
        self.log.append(commit.clone());
        self.neighbours.publish(commit);
    }

    /// What a call wrote, as the commit log records it; `None` when it wrote nothing.
    pub(super) fn write_set(changes: &[Changed], wrote_anything: bool) -> Option<WriteSet> {
        if changes.is_empty() && !wrote_anything {
            return None;
        }
        let parse = |data: &Option<String>| {
            data.as_deref()
                .map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
        };
        let writes = changes
            .iter()
            .map(|changed| Write {
                table: changed.table.clone(),
                id: changed.id,
                old: parse(&changed.old),
                new: parse(&changed.new),
            })
            .collect();
        Some(WriteSet {
            everything: wrote_anything,
            writes,
        })
    }

    /// Announces this process's commits to the other processes on the database and appends
    /// theirs to the log, for as long as it runs (see [`crate::reactivity::Neighbours`]).
    /// Stage changes (a graduation's steps) arrive on the same channel, and reconnecting may have
    /// missed some: each time, the stages are read again, apart from the loop that listens.
    pub async fn follow_other_processes(self: Arc<Self>) {
        let engine = self.clone();
        let stages_changed = move || {
            let engine = engine.clone();
            tokio::spawn(async move {
                if let Err(error) = engine.refresh_stages().await {
                    tracing::warn!(%error, "could not read the tables' stages again");
                }
            });
        };
        self.neighbours
            .follow(&self.database, &self.log, || self.schema(), stages_changed)
            .await;
    }

    /// Tells this process's live queries and the other processes what was written outside
    /// Convoy, for as long as it runs (see [`crate::reactivity::external_writes`]).
    pub async fn follow_external_writes(self: Arc<Self>) {
        crate::reactivity::external_writes::follow(
            &self.database,
            &self.log,
            &self.neighbours,
            || self.schema(),
        )
        .await;
    }

    /// This process's name among the processes on the database: a mutation's answer says it, so
    /// that a client's next query to another process can ask for a fresh run.
    pub fn process_id(&self) -> &str {
        self.neighbours.origin()
    }

    /// Waits until this process's commits so far are announced to the other processes (see
    /// [`crate::reactivity::Neighbours::announced`]): a mutation is answered only then.
    pub async fn announced(&self) {
        self.neighbours.announced().await;
    }

    /// Waits until this process has heard of every other process's commit answered before now
    /// (see [`crate::reactivity::Neighbours::probe`]).
    pub async fn caught_up_with_others(&self) {
        self.neighbours.probe(&self.database, &self.schema()).await;
    }
}
