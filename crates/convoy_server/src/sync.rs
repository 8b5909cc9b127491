//! Live queries (SPEC §6): one server-sent-event stream per client carries every subscription of
//! that client; `POST /api/sync/<session>` adds and removes them.
//!
//! A subscription is a query run whose read set is kept. Clients subscribing to the same query
//! with the same arguments and the same identity share one [`LiveQuery`]: one run, one result,
//! fanned out to every stream that holds it. After each commit, the live queries whose reads the
//! commit may have touched run again; a result equal to the last one sends nothing.
//!
//! No update is lost: a run notes the commit log's position before it starts, and when it ends
//! checks every commit logged since against what it read. A commit its snapshot may have missed
//! was logged after that position, so it is either in that check or wakes the query afterwards.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use convoy_core::reactivity::{ReadSet, Registry, WriteSet};
use convoy_core::{CallKind, ConvoyError, Result};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::http::State;

/// A comment line on an idle stream, so that proxies do not close it.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a mutation's answer waits for its caller's stream to catch up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Subscriptions one stream may hold.
pub const MAX_SUBSCRIPTIONS_PER_STREAM: usize = 1000;

#[derive(Default)]
pub struct Sync {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    queries: Mutex<LiveQueries>,
    /// What each live query read on its last run, indexed so that a commit finds the queries it
    /// touches without looking at the others. Locked before any live query's state.
    registry: Mutex<Registry<Arc<LiveQuery>>>,
    numbers: AtomicU64,
    /// The follower has handed every commit up to here to the live queries it touches.
    processed: AtomicU64,
    /// Signalled when `processed` moves or a live query's run ends, for mutations waiting on a
    /// stream to catch up ([`Sync::settle`]).
    progress: Notify,
}

/// The live queries by function, args and identity, and how many there are of each call
/// (function and args, whoever asks).
#[derive(Default)]
struct LiveQueries {
    by_key: HashMap<QueryKey, Arc<LiveQuery>>,
    calls: HashMap<(String, String), usize>,
}

impl LiveQueries {
    fn get_or_insert(
        &mut self,
        key: QueryKey,
        make: impl FnOnce(QueryKey) -> LiveQuery,
    ) -> Arc<LiveQuery> {
        if let Some(query) = self.by_key.get(&key) {
            return query.clone();
        }
        *self
            .calls
            .entry((key.path.clone(), key.args.clone()))
            .or_default() += 1;
        let query = Arc::new(make(key.clone()));
        self.by_key.insert(key, query.clone());
        query
    }

    fn remove(&mut self, key: &QueryKey) {
        if self.by_key.remove(key).is_none() {
            return;
        }
        let call = (key.path.clone(), key.args.clone());
        if let Some(count) = self.calls.get_mut(&call) {
            *count -= 1;
            if *count == 0 {
                self.calls.remove(&call);
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct QueryKey {
    path: String,
    args: String,
    /// Who is asking (see [`Session`]): results of different identities are never shared.
    identity: String,
}

struct LiveQuery {
    number: u64,
    key: QueryKey,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    /// The log position the last result is known to be current through.
    through: u64,
    /// The last result, as the body of an event: `"value":…` or `"error":…`.
    last: Option<Arc<str>>,
    holders: Vec<(Weak<Session>, String)>,
    running: bool,
    /// A commit touched it while it ran: run again.
    dirty: bool,
}

impl LiveQuery {
    /// The headers of the newest session that holds the query: all holders share one identity,
    /// and the newest has the freshest credentials (a token refreshed since others subscribed).
    fn headers_json(&self) -> String {
        let live = self.state.lock().expect("live query poisoned");
        live.holders
            .iter()
            .rev()
            .find_map(|(holder, _)| holder.upgrade())
            .map_or_else(|| "{}".to_owned(), |session| session.headers_json.clone())
    }
}

pub struct Session {
    id: String,
    /// What the session's subscriptions are shared by. Empty when the app has no `createContext`
    /// (handlers see nothing of the request, so everyone may share); otherwise what
    /// `createContext` returned for the stream, when that is plain data, or a name of the
    /// session's own, shared with nobody.
    identity: String,
    /// `Authorization` and `Cookie`: changes to the session must come with the stream's.
    credentials: String,
    /// The request headers `createContext` sees when the session's queries run.
    headers_json: String,
    subscriptions: Mutex<HashMap<String, Arc<LiveQuery>>>,
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// When the client last added or removed a subscription (or opened the stream).
    changed_at: Mutex<Instant>,
}

/// Events waiting for the stream: the newest per subscription, so a slow client's backlog never
/// grows past one event per subscription.
#[derive(Default)]
struct Outbox {
    order: Vec<String>,
    events: HashMap<String, Arc<str>>,
    /// Events queued so far; each flush ends with `event: sync` naming it, so a client knows
    /// which events it has seen (read-your-writes, see [`Sync::settle`]).
    queued: u64,
    /// Why the stream ends, once it does: its last event says so.
    closed: Option<&'static str>,
}

impl Session {
    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    fn push(&self, subscription: &str, body: Arc<str>) {
        let mut outbox = self.outbox.lock().expect("outbox poisoned");
        if outbox
            .events
            .insert(subscription.to_owned(), body)
            .is_none()
        {
            outbox.order.push(subscription.to_owned());
        }
        outbox.queued += 1;
        drop(outbox);
        self.wake.notify_one();
    }

    /// Ends the stream after the events already waiting, with a last `event: close` saying why
    /// (`"shutdown"`, `"idle"`), so that a client can tell it from a network failure.
    fn close(&self, reason: &'static str) {
        self.outbox
            .lock()
            .expect("outbox poisoned")
            .closed
            .get_or_insert(reason);
        self.wake.notify_one();
    }

    /// Whether the stream has held no subscription for `limit`.
    fn idle_for(&self, limit: Duration) -> bool {
        self.subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .is_empty()
            && self.changed_at.lock().expect("session poisoned").elapsed() >= limit
    }

    /// The waiting events as SSE text; `Err` with the closing event once the session is closed.
    fn take(&self) -> std::result::Result<String, String> {
        let mut outbox = self.outbox.lock().expect("outbox poisoned");
        if let Some(reason) = outbox.closed {
            return Err(format!(
                "event: close\ndata: {{\"reason\":\"{reason}\"}}\n\n"
            ));
        }
        let mut text = String::new();
        let order = std::mem::take(&mut outbox.order);
        for subscription in order {
            if let Some(body) = outbox.events.remove(&subscription) {
                text.push_str("data: {\"id\":");
                text.push_str(&serde_json::Value::from(subscription).to_string());
                text.push(',');
                text.push_str(&body);
                text.push_str("}\n\n");
            }
        }
        if !text.is_empty() {
            write!(text, "event: sync\ndata: {{\"seq\":{}}}\n\n", outbox.queued)
                .expect("writing to a String");
        }
        Ok(text)
    }
}

/// `Authorization` and `Cookie`, the headers a client authenticates with.
pub fn credentials_of(headers: &hyper::HeaderMap) -> String {
    let value = |name| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    format!(
        "{}\n{}",
        value(hyper::header::AUTHORIZATION),
        value(hyper::header::COOKIE)
    )
}

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

impl Sync {
    /// Opens a session and returns its event stream; closing the stream ends the session.
    pub fn open(
        state: &Arc<State>,
        identity: String,
        credentials: String,
        headers_json: String,
    ) -> Body {
        let id = uuid::Uuid::new_v4().to_string();
        let session = Arc::new(Session {
            id: id.clone(),
            identity,
            credentials,
            headers_json,
            subscriptions: Mutex::new(HashMap::new()),
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            changed_at: Mutex::new(Instant::now()),
        });
        state
            .sync
            .sessions
            .lock()
            .expect("sessions poisoned")
            .insert(id.clone(), session.clone());
        state.metrics.stream_opened();
        let hello = format!("event: session\ndata: {{\"session\":\"{id}\"}}\n\n");
        let guard = SessionGuard {
            state: state.clone(),
            session,
        };
        let idle_limit = state.stream_idle_timeout;
        // Wake at least this often: for a heartbeat, and to notice an idle stream.
        let tick = HEARTBEAT.min(idle_limit);
        let stream = futures_util::stream::unfold(
            (guard, Some(hello), false),
            move |(guard, hello, ended)| async move {
                let frame = |text: String| Ok(Frame::data(Bytes::from(text)));
                if ended {
                    return None;
                }
                if let Some(hello) = hello {
                    return Some((frame(hello), (guard, None, false)));
                }
                loop {
                    match guard.session.take() {
                        Ok(text) if text.is_empty() => {}
                        Ok(text) => return Some((frame(text), (guard, None, false))),
                        Err(goodbye) => return Some((frame(goodbye), (guard, None, true))),
                    }
                    tokio::select! {
                        () = guard.session.wake.notified() => {}
                        () = tokio::time::sleep(tick) => {
                            if guard.session.idle_for(idle_limit) {
                                guard.session.close("idle");
                                continue;
                            }
                            return Some((frame(": heartbeat\n\n".into()), (guard, None, false)));
                        }
                    }
                }
            },
        );
        StreamBody::new(stream).boxed_unsync()
    }

    /// Ends every stream: the server is stopping.
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

    /// Streams open now.
    pub fn streams(&self) -> usize {
        self.sessions.lock().expect("sessions poisoned").len()
    }

    pub fn live_queries(&self) -> usize {
        self.queries.lock().expect("queries poisoned").by_key.len()
    }

    /// Whether anyone, whoever they are, subscribes to this function with these args.
    pub fn is_live(&self, path: &str, args: &str) -> bool {
        self.queries
            .lock()
            .expect("queries poisoned")
            .calls
            .contains_key(&(path.to_owned(), args.to_owned()))
    }

    /// Applies `{"add": [{"id", "path", "args"}], "remove": [id]}` to a session.
    pub fn change(state: &Arc<State>, session: &Arc<Session>, body: &[u8]) -> Result<()> {
        let change: Change = serde_json::from_slice(body).map_err(|error| {
            ConvoyError::InvalidArgs(format!(
                "the body must be {{\"add\": [{{\"id\", \"path\", \"args\"}}], \"remove\": [id]}}: {error}"
            ))
        })?;
        *session.changed_at.lock().expect("session poisoned") = Instant::now();
        for id in &change.remove {
            state.sync.unsubscribe(session, id);
        }
        let held = session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .len();
        if held + change.add.len() > MAX_SUBSCRIPTIONS_PER_STREAM {
            return Err(ConvoyError::InvalidArgs(format!(
                "a stream holds at most {MAX_SUBSCRIPTIONS_PER_STREAM} subscriptions"
            )));
        }
        for add in change.add {
            let args = add.args.map_or("{}", RawValue::get).to_owned();
            Self::subscribe(state, session, add.id, add.path, args);
        }
        Ok(())
    }

    fn subscribe(
        state: &Arc<State>,
        session: &Arc<Session>,
        id: String,
        path: String,
        args: String,
    ) {
        state.sync.unsubscribe(session, &id);
        let key = QueryKey {
            path,
            args,
            identity: session.identity.clone(),
        };
        let query = state
            .sync
            .queries
            .lock()
            .expect("queries poisoned")
            .get_or_insert(key, |key| LiveQuery {
                number: state.sync.numbers.fetch_add(1, Ordering::Relaxed),
                key,
                state: Mutex::new(LiveState::default()),
            });
        session
            .subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .insert(id.clone(), query.clone());
        let mut live = query.state.lock().expect("live query poisoned");
        live.holders.push((Arc::downgrade(session), id.clone()));
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
            tokio::spawn(run(state.clone(), query));
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
                    .is_none_or(|holder| Arc::ptr_eq(&holder, session)))
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

    fn end(&self, session: &Arc<Session>) {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change<'a> {
    #[serde(default, borrow)]
    add: Vec<Add<'a>>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add<'a> {
    id: String,
    path: String,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

/// Ends the session when its stream is dropped: the client went away, or the server stopped.
struct SessionGuard {
    state: Arc<State>,
    session: Arc<Session>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.sync.end(&self.session);
        self.state.metrics.stream_closed();
    }
}

/// Follows the commit log and re-runs the live queries each commit may have touched.
pub async fn follow_commits(state: Arc<State>) {
    let log = state.runner.engine.log();
    let mut watch = log.watch();
    let mut position = log.position();
    while watch.changed().await.is_ok() {
        let newest = log.position();
        let commits = log.since(position);
        position = newest;
        let schema = state.runner.engine.schema();
        let touched: Vec<Arc<LiveQuery>> = {
            let registry = state.sync.registry.lock().expect("registry poisoned");
            let mut numbers = HashSet::new();
            match &commits {
                // Commits no longer in the log: any query may have changed.
                None => registry.touched(&WriteSet::everything(), &schema, &mut numbers),
                Some(commits) => {
                    for (_, commit) in commits {
                        registry.touched(commit, &schema, &mut numbers);
                    }
                }
            }
            numbers
                .iter()
                .filter_map(|number| registry.get(*number).cloned())
                .collect()
        };
        for query in touched {
            let mut live = query.state.lock().expect("live query poisoned");
            if live.running {
                live.dirty = true;
            } else {
                live.running = true;
                drop(live);
                tokio::spawn(run(state.clone(), query));
            }
        }
        state.sync.processed.store(newest, Ordering::SeqCst);
        state.sync.progress.notify_waiters();
    }
}

/// Runs a live query until a run's result is known to be current, sending each new result.
async fn run(state: Arc<State>, query: Arc<LiveQuery>) {
    let engine = &state.runner.engine;
    loop {
        query.state.lock().expect("live query poisoned").dirty = false;
        let position = engine.log().position();
        let QueryKey { path, args, .. } = &query.key;
        let (result, mut reads) = match state.functions.get(path) {
            Some(function) if function.kind == CallKind::Query => {
                let headers_json = query.headers_json();
                state
                    .runner
                    .run_tracked(&function, path, args, &headers_json)
                    .await
            }
            Some(_) => (
                Err(ConvoyError::InvalidArgs(format!(
                    "{path} is a mutation; only queries can be subscribed to"
                ))),
                ReadSet::default(),
            ),
            None => (
                Err(ConvoyError::NotFound(format!(
                    "there is no function named {path:?}"
                ))),
                ReadSet::default(),
            ),
        };
        let body: Arc<str> = match result {
            Ok(value) => format!("\"value\":{value}").into(),
            Err(error) => {
                // A failed run (the database away, a bug since fixed) tries again on any commit.
                reads = ReadSet::everything();
                format!("\"error\":{}", state.public_error(error).to_json()).into()
            }
        };
        // Checked and registered under the registry's lock: a commit logged after the check is
        // matched against these reads when the follower gets to it.
        let mut registry = state.sync.registry.lock().expect("registry poisoned");
        let through = engine.log().position();
        let stale = engine
            .log()
            .touched_since(position, &reads, &engine.schema());
        let mut live = query.state.lock().expect("live query poisoned");
        if live.holders.is_empty() {
            // Everyone unsubscribed while it ran.
            registry.remove(query.number);
            live.running = false;
            return;
        }
        registry.set(query.number, query.clone(), reads);
        drop(registry);
        if !stale {
            live.through = through;
        }
        let changed = live.last.as_deref() != Some(&*body);
        if changed {
            live.last = Some(body.clone());
            state.metrics.live_update();
            for (holder, id) in &live.holders {
                if let Some(session) = holder.upgrade() {
                    session.push(id, body.clone());
                }
            }
        }
        if !(stale || live.dirty) {
            live.running = false;
            drop(live);
            state.sync.progress.notify_waiters();
            return;
        }
    }
}
