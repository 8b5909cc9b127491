//! The other Convoy processes on the database: this process's commits announced to them, and
//! theirs appended to this process's log, through `LISTEN`/`NOTIFY` on [`CHANNEL`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, watch};

use super::{Announcement, CommitLog, WriteSet, CHANNEL};
use crate::database::Database;
use crate::error::Result;
use crate::schema::Schema;

pub struct Neighbours {
    /// Names this process in its notifications, so it can skip its own.
    origin: String,
    /// Where this process's commits go to be announced, numbered, once [`Neighbours::follow`]
    /// runs.
    publisher: Mutex<Option<UnboundedSender<Numbered>>>,
    /// Whether another process has said hello: until one does, nobody needs this one's commits.
    announcing: AtomicBool,
    /// Commits handed to be announced, and the newest of them whose announcement has committed.
    published: AtomicU64,
    announced: watch::Sender<u64>,
    /// Probes sent and not heard back yet (see [`Neighbours::probe`]).
    probes: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next_probe: AtomicU64,
}

/// A commit to announce, and its number among this process's.
type Numbered = (u64, Arc<WriteSet>);

/// How long a mutation's answer waits for its announcement, and a probe for its echo, before
/// going on without (the connection that listens is away: reconnecting re-runs everything).
const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);

impl Default for Neighbours {
    fn default() -> Self {
        Self {
            origin: uuid::Uuid::now_v7().to_string(),
            publisher: Mutex::new(None),
            announcing: AtomicBool::new(false),
            published: AtomicU64::new(0),
            announced: watch::channel(0).0,
            probes: Mutex::new(HashMap::new()),
            next_probe: AtomicU64::new(1),
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
                let number = self.published.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = publisher.send((number, commit));
            }
        }
    }

    /// Waits until every commit published so far has been announced to the other processes, so
    /// that a caller told "done" can count on any process having heard of it once that process
    /// has heard its own later probe. Immediate for a process alone on its database.
    pub async fn announced(&self) {
        let published = self.published.load(Ordering::SeqCst);
        // Every mutation's answer asks: answered without a channel when nothing waits.
        if *self.announced.borrow() >= published {
            return;
        }
        let mut announced = self.announced.subscribe();
        let _ = tokio::time::timeout(ANNOUNCE_WAIT, announced.wait_for(|done| *done >= published))
            .await;
    }

    /// Waits until this process has heard every announcement committed before now: it sends a
    /// note to itself and waits for it to come back. Another process's mutation whose answer
    /// waited for its announcement ([`Neighbours::announced`]) is then in this process's log.
    /// Immediate for a process alone on its database.
    pub async fn probe(&self, database: &Database, schema: &Schema) {
        if !self.announcing.load(Ordering::SeqCst) {
            return;
        }
        let nonce = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (heard, echo) = oneshot::channel();
        self.probes
            .lock()
            .expect("probes lock poisoned")
            .insert(nonce, heard);
        let payload = Announcement::Probe(nonce).payload(&self.origin, schema);
        let sent = async {
            let client = database.connection().await?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
            Ok::<_, crate::ConvoyError>(())
        }
        .await;
        if sent.is_ok() {
            let _ = tokio::time::timeout(ANNOUNCE_WAIT, echo).await;
        }
        self.probes
            .lock()
            .expect("probes lock poisoned")
            .remove(&nonce);
    }

    /// This process's name among the processes on the database.
    pub fn origin(&self) -> &str {
        &self.origin
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
                    let mut newest = 0;
                    loop {
                        while let Ok((number, commit)) = commits.try_recv() {
                            newest = newest.max(number);
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
                        self.announced.send_if_modified(|done| {
                            let moved = newest > *done;
                            *done = (*done).max(newest);
                            moved
                        });
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
                                Some((number, commit)) => {
                                    newest = newest.max(number);
                                    batch.push(commit);
                                }
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
            while let Ok((number, _)) = commits.try_recv() {
                self.announced
                    .send_modify(|done| *done = (*done).max(number));
            }
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
            Some((origin, Announcement::Probe(nonce))) if origin == self.origin => {
                let heard = self
                    .probes
                    .lock()
                    .expect("probes lock poisoned")
                    .remove(&nonce);
                if let Some(heard) = heard {
                    let _ = heard.send(());
                }
                None
            }
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
            // Another process's probe is its own business.
            Some((_, Announcement::Stages | Announcement::Probe(_))) => None,
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
