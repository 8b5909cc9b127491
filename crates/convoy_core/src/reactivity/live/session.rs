//! A client's session: the subscriptions of one stream, and the events waiting for it. How the
//! events are framed on the wire (SSE) is the server's part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::query::{Holder, LiveQuery};

pub struct Session {
    pub(super) id: String,
    /// What the session's subscriptions are shared by. Empty when the app has no `createContext`
    /// (handlers see nothing of the request, so everyone may share); otherwise what
    /// `createContext` returned for the stream, when that is plain data, or a name of the
    /// session's own, shared with nobody.
    pub(super) identity: String,
    /// `Authorization` and `Cookie`: changes to the session must come with the stream's.
    pub(super) credentials: String,
    /// The request headers `createContext` sees when the session's queries run.
    pub(super) headers_json: String,
    pub(super) subscriptions: Mutex<HashMap<String, Arc<LiveQuery>>>,
    pub(super) outbox: Mutex<Outbox>,
    pub(super) wake: Notify,
    /// When the client last added or removed a subscription (or opened the stream).
    pub(super) changed_at: Mutex<Instant>,
}

/// Events waiting for the stream: the newest per subscription, so a slow client's backlog never
/// grows past one event per subscription.
#[derive(Default)]
pub(super) struct Outbox {
    order: Vec<String>,
    events: HashMap<String, Arc<str>>,
    /// Events queued so far; a client that has read this many knows which events it has seen
    /// (read-your-writes, see [`super::LiveQueries::settle`]).
    pub(super) queued: u64,
    /// Why the stream ends, once it does: its last event says so.
    closed: Option<&'static str>,
}

/// What a stream sends next: each subscription's newest result (its body, `"value":…` or
/// `"error":…`) in the order they arrived, and how many events were queued by then.
pub struct Pending {
    pub events: Vec<(String, Arc<str>)>,
    pub queued: u64,
}

impl Session {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn credentials(&self) -> &str {
        &self.credentials
    }

    /// What `createContext` returned when the stream opened: whose session this is.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub(super) fn push(&self, subscription: &str, body: Arc<str>) {
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

    /// Ends the stream after the events already waiting, with a last event saying why
    /// (`"shutdown"`, `"idle"`), so that a client can tell it from a network failure.
    pub fn close(&self, reason: &'static str) {
        self.outbox
            .lock()
            .expect("outbox poisoned")
            .closed
            .get_or_insert(reason);
        self.wake.notify_one();
    }

    /// Whether the stream has held no subscription for `limit`.
    pub fn idle_for(&self, limit: Duration) -> bool {
        self.subscriptions
            .lock()
            .expect("subscriptions poisoned")
            .is_empty()
            && self.changed_at.lock().expect("session poisoned").elapsed() >= limit
    }

    /// Resolves when something was pushed or the session closed.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// The waiting events; `Err` with the reason once the session is closed.
    pub fn take(&self) -> std::result::Result<Pending, &'static str> {
        let mut outbox = self.outbox.lock().expect("outbox poisoned");
        if let Some(reason) = outbox.closed {
            return Err(reason);
        }
        let order = std::mem::take(&mut outbox.order);
        let events = order
            .into_iter()
            .filter_map(|subscription| {
                let body = outbox.events.remove(&subscription)?;
                Some((subscription, body))
            })
            .collect();
        Ok(Pending {
            events,
            queued: outbox.queued,
        })
    }
}

impl Holder for Session {
    fn deliver(&self, subscription: &str, body: Arc<str>) {
        self.push(subscription, body);
    }

    fn headers_json(&self) -> &str {
        &self.headers_json
    }
}
