//! The sync stream's framing (SPEC §6): a session of the core's live queries as Server-Sent
//! Events — a `session` event first, then each subscription's newest result, an `event: sync`
//! after each batch (read-your-writes), heartbeats on an idle stream, and `event: close` when it
//! ends — and the wire form of `POST /api/sync/<session>`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use convoy_core::reactivity::{LiveQueries, Session, Subscribe};
use convoy_core::{ConvoyError, Result};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::metrics::Metrics;

/// A comment line on an idle stream, so that proxies do not close it.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

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

/// Whether `credentials` (of [`credentials_of`]) hold anything: a caller who sends neither
/// header cannot be told from another by them.
pub fn has_credentials(credentials: &str) -> bool {
    credentials != "\n"
}

/// The event stream of `session`; dropping it (the client went away, the server stopped) ends
/// the session.
pub fn stream(
    live: Arc<LiveQueries>,
    metrics: Arc<Metrics>,
    session: Arc<Session>,
    idle_limit: Duration,
) -> Body {
    metrics.stream_opened();
    let hello = format!(
        "event: session\ndata: {{\"session\":\"{}\"}}\n\n",
        session.id()
    );
    let guard = SessionGuard {
        live,
        metrics,
        session,
    };
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
                    Ok(pending) if pending.events.is_empty() => {}
                    Ok(pending) => {
                        return Some((frame(events_text(&pending)), (guard, None, false)))
                    }
                    Err(reason) => {
                        let goodbye =
                            format!("event: close\ndata: {{\"reason\":\"{reason}\"}}\n\n");
                        return Some((frame(goodbye), (guard, None, true)));
                    }
                }
                tokio::select! {
                    () = guard.session.changed() => {}
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

/// `data: {"id", "value"|"error"}` per event, then `event: sync` with the count so far.
fn events_text(pending: &convoy_core::reactivity::live::Pending) -> String {
    let mut text = String::new();
    for (subscription, body) in &pending.events {
        text.push_str("data: {\"id\":");
        text.push_str(&serde_json::Value::from(subscription.as_str()).to_string());
        text.push(',');
        text.push_str(body);
        text.push_str("}\n\n");
    }
    write!(
        text,
        "event: sync\ndata: {{\"seq\":{}}}\n\n",
        pending.queued
    )
    .expect("writing to a String");
    text
}

/// Ends the session when its stream is dropped.
struct SessionGuard {
    live: Arc<LiveQueries>,
    metrics: Arc<Metrics>,
    session: Arc<Session>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.live.end(&self.session);
        self.metrics.stream_closed();
    }
}

/// A session change as sent: `{"add": [{"id", "path", "args"}], "remove": [id], "settle": bool}`.
pub struct SessionChange {
    pub add: Vec<Subscribe>,
    pub remove: Vec<String>,
    /// Answer once the stream carries every commit answered anywhere before now.
    pub settle: bool,
}

pub fn parse_change(body: &[u8]) -> Result<SessionChange> {
    let change: Change = serde_json::from_slice(body).map_err(|error| {
        ConvoyError::InvalidArgs(format!(
            "the body must be {{\"add\": [{{\"id\", \"path\", \"args\"}}], \"remove\": [id], \"settle\": bool}}: {error}"
        ))
    })?;
    Ok(SessionChange {
        add: change
            .add
            .into_iter()
            .map(|add| Subscribe {
                id: add.id,
                path: add.path,
                args: add.args.map_or("{}", RawValue::get).to_owned(),
            })
            .collect(),
        remove: change.remove,
        settle: change.settle,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change<'a> {
    #[serde(default, borrow)]
    add: Vec<Add<'a>>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    settle: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add<'a> {
    id: String,
    path: String,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}
