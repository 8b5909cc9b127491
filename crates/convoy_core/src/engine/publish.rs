//! What a commit publishes: its write set to this process's commit log, and to the other
//! processes on the database through `LISTEN`/`NOTIFY`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::writes::Changed;
use super::Engine;
use crate::error::Result;
use crate::reactivity::{Announcement, Write, WriteSet, CHANNEL};

impl Engine {
    /// Logs and announces what a call that just committed wrote.
    pub(super) fn committed(&self, changes: &[Changed], wrote_anything: bool) {
        let Some(commit) = Self::write_set(changes, wrote_anything) else {
            return;
        };
        let commit = Arc::new(commit);
        self.log.append(commit.clone());
        // Read after COMMIT: a commit that finds it false committed before this process
        // welcomed anyone, so the newcomer's re-run after the welcome sees it.
        if self.announcing.load(Ordering::SeqCst) {
            let publisher = self.publisher.lock().expect("publisher lock poisoned");
            if let Some(publisher) = publisher.as_ref() {
                let _ = publisher.send(commit);
            }
        }
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
    /// theirs to the log, for as long as it runs, on a connection of its own that `LISTEN`s.
    ///
    /// A process alone on its database announces nothing: a `NOTIFY` costs Postgres a serialized
    /// step at every commit (inside each transaction it halved the insert benchmark). So a
    /// process that starts listening says hello; each one already there starts announcing and
    /// answers welcome; the newcomer starts announcing too and answers ready. A welcome or a
    /// ready makes every live query of its receiver run again, which covers whatever the sender
    /// committed before it began to announce.
    ///
    /// Commits are announced after they commit, in batches: whatever committed while the last
    /// `NOTIFY` was under way goes out in the next one. When the connection breaks, every live
    /// query here runs again and the process says hello anew, since notifications may have been
    /// missed both ways.
    pub async fn follow_other_processes(self: Arc<Self>) {
        let (sender, mut commits) = tokio::sync::mpsc::unbounded_channel();
        *self.publisher.lock().expect("publisher lock poisoned") = Some(sender);
        let mut connected_before = false;
        loop {
            match self.database.listen(CHANNEL).await {
                Ok((client, mut notifications)) => {
                    if connected_before {
                        self.log.append(Arc::new(WriteSet::everything()));
                    }
                    connected_before = true;
                    let mut outgoing = vec![Announcement::Hello];
                    let mut batch: Vec<Arc<WriteSet>> = Vec::new();
                    loop {
                        while let Ok(commit) = commits.try_recv() {
                            batch.push(commit);
                        }
                        if !batch.is_empty() {
                            outgoing.push(Announcement::Commit(combined(&batch)));
                            batch.clear();
                        }
                        if let Err(error) = self.announce(&client, outgoing.drain(..)).await {
                            tracing::warn!(%error, "could not announce commits to other processes");
                            break;
                        }
                        tokio::select! {
                            notification = notifications.recv() => match notification {
                                Some(notification) => {
                                    if let Some(answer) = self.heard(notification.payload()) {
                                        outgoing.push(answer);
                                    }
                                }
                                None => break,
                            },
                            commit = commits.recv() => match commit {
                                Some(commit) => batch.push(commit),
                                None => return,
                            },
                        }
                    }
                    tracing::warn!("the LISTEN connection closed; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, "could not LISTEN for other processes' commits");
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            // What committed meanwhile, the others learn when they answer the next hello.
            while commits.try_recv().is_ok() {}
        }
    }

    pub(super) async fn announce(
        &self,
        client: &tokio_postgres::Client,
        announcements: impl Iterator<Item = Announcement>,
    ) -> Result<()> {
        let schema = self.schema();
        for announcement in announcements {
            let payload = announcement.payload(&self.origin, &schema);
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
        }
        Ok(())
    }

    /// Another process's announcement; returns the answer it needs, if any.
    pub(super) fn heard(&self, payload: &str) -> Option<Announcement> {
        match Announcement::parse(payload) {
            Some((origin, _)) if origin == self.origin => None,
            Some((_, Announcement::Hello)) => {
                self.announcing.store(true, Ordering::SeqCst);
                Some(Announcement::Welcome)
            }
            Some((_, Announcement::Welcome)) => {
                self.announcing.store(true, Ordering::SeqCst);
                self.log.append(Arc::new(WriteSet::everything()));
                Some(Announcement::Ready)
            }
            Some((_, Announcement::Commit(commit))) => {
                self.log.append(Arc::new(commit));
                None
            }
            // A payload that is not an announcement: assume it could have changed anything.
            Some((_, Announcement::Ready)) | None => {
                self.log.append(Arc::new(WriteSet::everything()));
                None
            }
        }
    }
}

/// Several commits as one.
pub(super) fn combined(batch: &[Arc<WriteSet>]) -> WriteSet {
    WriteSet {
        everything: batch.iter().any(|commit| commit.everything),
        writes: batch
            .iter()
            .flat_map(|commit| commit.writes.iter().cloned())
            .collect(),
    }
}
