//! Live queries (SPEC §6): subscriptions, each a query run whose read set is kept. Clients
//! subscribing to the same query with the same arguments and the same identity share one
//! [`LiveQuery`]: one run, one result, fanned out to every session that holds it. After each
//! commit, the live queries whose reads the commit may have touched run again (`rerun`); a result
//! equal to the last one sends nothing.
//!
//! No update is lost: a run notes the commit log's position before it starts, and when it ends
//! checks every commit logged since against what it read. A commit its snapshot may have missed
//! was logged after that position, so it is either in that check or wakes the query afterwards.

mod query;
mod rerun;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub use session::{Pending, Session};

use self::query::{LiveQuery, LiveState, QueryKey, SharedQueries};
use super::registry::Registry;
use crate::calls::{CallRunner, FunctionTable};
use crate::error::{ConvoyError, Result};

/// How long a mutation's answer waits for its caller's stream to catch up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Subscriptions one session may hold.
pub const MAX_SUBSCRIPTIONS_PER_SESSION: usize = 1000;

/// The args a stream's subscriptions may hold in all: each is kept for as long as it is held.
pub const MAX_ARGS_BYTES_PER_SESSION: usize = 1024 * 1024;

/// The args all of one process's live queries may hold.
pub const MAX_ARGS_BYTES_PER_PROCESS: usize = 256 * 1024 * 1024;

/// Distinct live queries one process holds at most (subscriptions that share one count once).
pub const MAX_LIVE_QUERIES: usize = 100_000;

/// One subscription a client asks for.
pub struct Subscribe {
    /// The client's name for it, unique in its session.
    pub id: String,
    pub path: String,
    /// The args as JSON text, exactly as sent: equal text is the same query.
    pub args: String,
}

pub struct LiveQueries {
    runner: Arc<CallRunner>,
    functions: Arc<FunctionTable>,
    /// Internal errors reach subscribers in full (development), or as a request id.
    dev: bool,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    queries: Mutex<SharedQueries>,
    /// What each live query read on its last run, indexed so that a commit finds the queries it
    /// touches without looking at the others. Locked before any live query's state.
    registry: Mutex<Registry<Arc<LiveQuery>>>,
    numbers: AtomicU64,
    /// The follower has handed every commit up to here to the live queries it touches.
    processed: AtomicU64,
    /// Signalled when `processed` moves or a live query's run ends, for mutations waiting on a
    /// stream to catch up ([`LiveQueries::settle`]).
    progress: Notify,
    /// New results sent, for `/metrics`.
    updates: AtomicU64,
    /// Live queries due to run again after a pause (see `rerun`), and where the follower takes
    /// them from.
    retries: tokio::sync::mpsc::UnboundedSender<Arc<LiveQuery>>,
    due: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Arc<LiveQuery>>>>,
}

impl LiveQueries {
    pub fn new(runner: Arc<CallRunner>, functions: Arc<FunctionTable>, dev: bool) -> Self {
        let (retries, due) = tokio::sync::mpsc::unbounded_channel();
        Self {
            runner,
            functions,
            dev,
            sessions: Mutex::default(),
            queries: Mutex::default(),
            registry: Mutex::default(),
            numbers: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            progress: Notify::new(),
            updates: AtomicU64::new(0),
            retries,
            due: Mutex::new(Some(due)),
        }
    }

    /// Opens a session; [`LiveQueries::end`] ends it.
    pub fn open(
        &self,
        identity: String,
        credentials: String,
        headers_json: String,
    ) -> Arc<Session> {
        let id = uuid::Uuid::new_v4().to_string();
        let session = Arc::new(Session {
            id: id.clone(),
            identity,
            credentials,
            headers_json,
            subscriptions: Mutex::new(HashMap::new()),
            outbox: Mutex::default(),
            wake: Notify::new(),
            changed_at: Mutex::new(Instant::now()),
        });
        self.sessions
            .lock()
            .expect("sessions poisoned")
            .insert(id, session.clone());
        session
    }

    /// Ends every session: the server is stopping.
    pub fn close_all(&self) {
        let sessions: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .expect("sessions poisoned")
            .values()
            .cloned()
            .collect();
        for session in sessions {
            session.close("shutdown");
        }
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .expect("sessions poisoned")
            .get(id)
            .cloned()
    }

    /// Waits (up to a few seconds) until every live query of `session` is current through log
    /// `position`, and returns the session's event count then: once the client has read that
    /// many, its subscriptions reflect the commit at `position`. `None` for an unknown session.
    pub async fn settle(&self, session: &str, position: u64) -> Option<u64> {
        let session = self.session(session)?;
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.current_through(&session) >= position {
                break;
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                break;
            }
        }
        let queued = session.outbox.lock().expect("outbox poisoned").queued;
        Some(queued)
    }

    /// The result of a live query for exactly this function, args and identity, when it is known
    /// to be current (no commit since could have changed it): a query call answered from it
    /// needs no run and no Postgres.
    pub fn current_result(
        &self,
        path: &str,
        args: &str,
        identity: &str,
        position: u64,
    ) -> Option<String> {
        let key = QueryKey {
            path: path.to_owned(),
            args: args.to_owned(),
            identity: identity.to_owned(),
        };
        let query = self
            .queries
            .lock()
            .expect("queries poisoned")
            .by_key
            .get(&key)?
            .clone();
        let processed = self.processed.load(Ordering::SeqCst);
        let live = query.state.lock().expect("live query poisoned");
        if live.running || live.dirty || live.through.max(processed) < position {
            return None;
        }
        live.last
            .as_deref()?
            .strip_prefix("\"value\":")
            .map(str::to_owned)
    }

    /// The log position all of a session's live queries are current through.
    fn current_through(&self, session: &Session) -> u64 {
        let processed = self.processed.load(Ordering::SeqCst);
        let queries: Vec<Arc<LiveQuery>> = session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .values()
            .cloned()
            .collect();
        queries
            .iter()
            .map(|query| {
                let live = query.state.lock().expect("live query poisoned");
                if live.running || live.dirty || live.last.is_none() {
                    live.through
                } else {
                    live.through.max(processed)
                }
            })
            .min()
            .unwrap_or(processed)
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.sessions.lock().expect("sessions poisoned").len()
    }

    /// Live queries now (each shared by all who hold it).
    pub fn len(&self) -> usize {
        self.queries.lock().expect("queries poisoned").by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New results sent so far.
    pub fn updates(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }

    /// Whether anyone, whoever they are, subscribes to this function with these args.
    pub fn is_live(&self, path: &str, args: &str) -> bool {
        self.queries
            .lock()
            .expect("queries poisoned")
            .calls
            .contains_key(&(path.to_owned(), args.to_owned()))
    }

    /// Removes the subscriptions `remove` names from a session, then adds `add`.
    pub fn change(
        self: &Arc<Self>,
        session: &Arc<Session>,
        add: Vec<Subscribe>,
        remove: &[String],
    ) -> Result<()> {
        *session.changed_at.lock().expect("session poisoned") = Instant::now();
        for id in remove {
            self.unsubscribe(session, id);
        }
        let (held, held_args) = {
            let subscriptions = session
                .subscriptions
                .lock()
                .expect("subscriptions poisoned");
            let args: usize = subscriptions
                .values()
                .map(|query| query.key.args.len())
                .sum();
            (subscriptions.len(), args)
        };
        if held + add.len() > MAX_SUBSCRIPTIONS_PER_SESSION {
            return Err(ConvoyError::InvalidArgs(format!(
                "a stream holds at most {MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions"
            )));
        }
        let adding_args: usize = add.iter().map(|subscription| subscription.args.len()).sum();
        if held_args + adding_args > MAX_ARGS_BYTES_PER_SESSION {
            return Err(ConvoyError::InvalidArgs(format!(
                "a stream's subscriptions hold at most {MAX_ARGS_BYTES_PER_SESSION} bytes of args"
            )));
        }
        let process_args = self.queries.lock().expect("queries poisoned").args_bytes;
        if process_args + adding_args > MAX_ARGS_BYTES_PER_PROCESS {
            return Err(ConvoyError::Unavailable(format!(
                "this server's live queries hold {MAX_ARGS_BYTES_PER_PROCESS} bytes of args, its limit; try another process or later"
            )));
        }
        if self.len() + add.len() > MAX_LIVE_QUERIES {
            return Err(ConvoyError::Unavailable(format!(
                "this server holds {MAX_LIVE_QUERIES} live queries, its limit; try another process or later"
            )));
        }
        for subscription in add {
            self.subscribe(session, subscription);
        }
        Ok(())
    }

    /// Refuses subscription `id` of `session` (an unknown function, a mutation, args its input
    /// refuses): the stream carries `error` for it once, and nothing runs it, now or later. A
    /// subscription it held under that id before ends.
    pub fn refuse(&self, session: &Arc<Session>, id: &str, error: ConvoyError) {
        self.unsubscribe(session, id);
        session.push(
            id,
            format!("\"error\":{}", error.public(self.dev).to_json()).into(),
        );
    }

    fn subscribe(self: &Arc<Self>, session: &Arc<Session>, subscription: Subscribe) {
        let Subscribe { id, path, args } = subscription;
        self.unsubscribe(session, &id);
        let key = QueryKey {
            path,
            args,
            identity: session.identity.clone(),
        };
        let query = self
            .queries
            .lock()
            .expect("queries poisoned")
            .get_or_insert(key, |key| LiveQuery {
                number: self.numbers.fetch_add(1, Ordering::Relaxed),
                key,
                state: Mutex::new(LiveState::default()),
            });
        session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .insert(id.clone(), query.clone());
        let mut live = query.state.lock().expect("live query poisoned");
        let holder: Arc<dyn query::Holder> = session.clone();
        live.holders.push((Arc::downgrade(&holder), id.clone()));
        // A failed run's error may be another holder's (a token that has since expired): a new
        // subscriber gets a run of its own rather than that error.
        let failed = live
            .last
            .as_deref()
            .is_some_and(|last| last.starts_with("\"error\""));
        if let (Some(last), false) = (&live.last, failed) {
            session.push(&id, last.clone());
        } else if !live.running {
            live.running = true;
            drop(live);
            tokio::spawn(self.clone().run(query));
        }
    }

    fn unsubscribe(&self, session: &Arc<Session>, id: &str) {
        let Some(query) = session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .remove(id)
        else {
            return;
        };
        let mut live = query.state.lock().expect("live query poisoned");
        live.holders.retain(|(holder, held)| {
            !(held == id
                && holder
                    .upgrade()
                    .is_none_or(|holder| query::same_holder(&holder, session)))
        });
        if live.holders.is_empty() {
            drop(live);
            let mut queries = self.queries.lock().expect("queries poisoned");
            // Only if no one subscribed again meanwhile.
            if queries
                .by_key
                .get(&query.key)
                .is_some_and(|current| Arc::ptr_eq(current, &query))
                && query
                    .state
                    .lock()
                    .expect("live query poisoned")
                    .holders
                    .is_empty()
            {
                queries.remove(&query.key);
                drop(queries);
                self.registry
                    .lock()
                    .expect("registry poisoned")
                    .remove(query.number);
            }
        }
    }

    /// Ends a session: its stream is gone.
    pub fn end(&self, session: &Arc<Session>) {
        self.sessions
            .lock()
            .expect("sessions poisoned")
            .remove(&session.id);
        let ids: Vec<String> = session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .keys()
            .cloned()
            .collect();
        for id in ids {
            self.unsubscribe(session, &id);
        }
    }
}
