//! The other Convoy processes on the database: this process's commits announced to them, and
//! theirs appended to this process's log, through `LISTEN`/`NOTIFY` on [`CHANNEL`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::{Announcement, CommitLog, WriteSet, CHANNEL};
use crate::database::Database;
use crate::error::Result;
use crate::schema::Schema;

pub struct Neighbours {
    /// Names this process in its notifications, so it can skip its own.
    origin: String,
    /// Where this process's commits go to be announced, once [`Neighbours::follow`] runs.
    publisher: Mutex<Option<UnboundedSender<Arc<WriteSet>>>>,
    /// Whether another process has said hello: until one does, nobody needs this one's commits.
    announcing: AtomicBool,
}

impl Default for Neighbours {
    fn default() -> Self {
        Self {
            origin: uuid::Uuid::now_v7().to_string(),
            publisher: Mutex::new(None),
            announcing: AtomicBool::new(false),
        }
    }
}

impl Neighbours {
    /// Hands a commit (already in this process's log) to be announced, if anyone listens.
    pub fn publish(&self, commit: Arc<WriteSet>) {
        // Read after COMMIT: a commit that finds it false committed before this process
        // welcomed anyone, so the newcomer's re-run after the welcome sees it.
        if self.announcing.load(Ordering::SeqCst) {
            let publisher = self.publisher.lock().expect("publisher lock poisoned");
            if let Some(publisher) = publisher.as_ref() {
                let _ = publisher.send(commit);
            }
        }
    }

    /// Whether other processes need this one's commits (see [`Neighbours::follow`]).
    pub fn announcing(&self) -> bool {
        self.announcing.load(Ordering::SeqCst)
    }

    /// The payload announcing `commit` to the other processes: for a commit that must be
    /// announced in its own transaction (an outside write taken from the queue, see
    /// `external_writes`).
    pub fn announcement(&self, commit: &WriteSet, schema: &Schema) -> String {
        Announcement::Commit(commit.clone()).payload(&self.origin, schema)
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
    pub async fn follow(
        &self,
        database: &Database,
        log: &CommitLog,
        schema: impl Fn() -> Arc<Schema>,
        stages_changed: impl Fn(),
    ) {
        let (sender, mut commits) = tokio::sync::mpsc::unbounded_channel();
        *self.publisher.lock().expect("publisher lock poisoned") = Some(sender);
        let mut connected_before = false;
        loop {
            match database.listen(CHANNEL).await {
                Ok((client, mut notifications)) => {
                    if connected_before {
                        log.append(Arc::new(WriteSet::everything()));
                        stages_changed();
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
                        if let Err(error) =
                            self.announce(&client, outgoing.drain(..), &schema()).await
                        {
                            tracing::warn!(%error, "could not announce commits to other processes");
                            break;
                        }
                        tokio::select! {
                            notification = notifications.recv() => match notification {
                                Some(notification) => {
                                    if matches!(
                                        Announcement::parse(notification.payload()),
                                        Some((_, Announcement::Stages))
                                    ) {
                                        stages_changed();
                                    } else if let Some(answer) =
                                        self.heard(notification.payload(), log)
                                    {
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

    async fn announce(
        &self,
        client: &tokio_postgres::Client,
        announcements: impl Iterator<Item = Announcement>,
        schema: &Schema,
    ) -> Result<()> {
        for announcement in announcements {
            let payload = announcement.payload(&self.origin, schema);
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
        }
        Ok(())
    }

    /// Another process's announcement; returns the answer it needs, if any.
    fn heard(&self, payload: &str, log: &CommitLog) -> Option<Announcement> {
        match Announcement::parse(payload) {
            Some((origin, _)) if origin == self.origin => None,
            Some((_, Announcement::Hello)) => {
                self.announcing.store(true, Ordering::SeqCst);
                Some(Announcement::Welcome)
            }
            Some((_, Announcement::Welcome)) => {
                self.announcing.store(true, Ordering::SeqCst);
                log.append(Arc::new(WriteSet::everything()));
                Some(Announcement::Ready)
            }
            Some((_, Announcement::Commit(commit))) => {
                log.append(Arc::new(commit));
                None
            }
            Some((_, Announcement::Stages)) => None,
            // A ready (the newcomer announces from now on, and what it committed before must be
            // assumed), or a payload that is not an announcement: every live query runs again.
            Some((_, Announcement::Ready)) | None => {
                log.append(Arc::new(WriteSet::everything()));
                None
            }
        }
    }
}

/// Several commits as one.
fn combined(batch: &[Arc<WriteSet>]) -> WriteSet {
    WriteSet {
        everything: batch.iter().any(|commit| commit.everything),
        writes: batch
            .iter()
            .flat_map(|commit| commit.writes.iter().cloned())
            .collect(),
    }
}
