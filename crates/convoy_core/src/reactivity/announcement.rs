//! What processes on one database say to each other on [`CHANNEL`].

use serde::Deserialize;

use super::write_set::WriteSet;
use crate::schema::Schema;

/// What a process says to the others on [`CHANNEL`].
#[derive(Debug)]
pub enum Announcement {
    /// "I have just started listening": everyone already here starts announcing its commits.
    Hello,
    /// The answer to a hello: "I announce my commits from now on".
    Welcome,
    /// The newcomer's answer to a welcome: "and so do I".
    Ready,
    Commit(WriteSet),
    /// "A table moved to another stage": every process reads the stages again (`convoy
    /// graduate` says it, GRADUATION.md § Running it online).
    Stages,
    /// A process's note to itself: when it hears it back, it has heard everything committed
    /// before it was sent (notifications arrive in commit order). See `Neighbours::probe`.
    Probe(u64),
}

impl Announcement {
    pub fn payload(&self, origin: &str, schema: &Schema) -> String {
        match self {
            Self::Hello => serde_json::json!({ "origin": origin, "signal": "hello" }).to_string(),
            Self::Welcome => {
                serde_json::json!({ "origin": origin, "signal": "welcome" }).to_string()
            }
            Self::Ready => serde_json::json!({ "origin": origin, "signal": "ready" }).to_string(),
            Self::Stages => serde_json::json!({ "origin": origin, "signal": "stages" }).to_string(),
            Self::Probe(nonce) => {
                serde_json::json!({ "origin": origin, "signal": "probe", "nonce": nonce })
                    .to_string()
            }
            Self::Commit(commit) => commit.to_payload(origin, schema),
        }
    }

    /// The origin and the announcement, or `None` for a payload that is not one.
    pub fn parse(payload: &str) -> Option<(String, Self)> {
        #[derive(Deserialize)]
        struct Said {
            origin: String,
            signal: String,
            #[serde(default)]
            nonce: u64,
        }
        if let Ok(signal) = serde_json::from_str::<Said>(payload) {
            return match signal.signal.as_str() {
                "hello" => Some((signal.origin, Self::Hello)),
                "welcome" => Some((signal.origin, Self::Welcome)),
                "ready" => Some((signal.origin, Self::Ready)),
                "stages" => Some((signal.origin, Self::Stages)),
                "probe" => Some((signal.origin, Self::Probe(signal.nonce))),
                _ => None,
            };
        }
        WriteSet::from_payload(payload).map(|(origin, commit)| (origin, Self::Commit(commit)))
    }
}

/// The `NOTIFY` channel commits travel on between processes.
pub const CHANNEL: &str = "convoy_changes";
