//! What a query read, what a mutation wrote, and the log of commits between them
//! (docs/architecture.md § Reactivity).
//!
//! A subscription re-runs only when a commit wrote something its query read. Reads are recorded
//! as coarsely as is safe: an indexed read as its table, index and equality prefix (its range is
//! taken as the whole prefix), a `get` as its id, anything else — a scan, a filter without an
//! index, raw SQL — as its whole table or every table. A write is recorded as its table, its id
//! and its document before and after, so it matches an indexed read when either version's key
//! starts with the read's prefix. Over-matching costs a re-run whose unchanged result is not sent;
//! under-matching would be a lost update, so every doubt resolves towards "it may have changed".

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::schema::Schema;

/// Everything one call read.
#[derive(Debug, Default, Clone)]
pub struct ReadSet {
    /// Raw SQL read: any write may have changed the result.
    pub everything: bool,
    /// Tables read in full (scans, filters without an index, unmanaged tables).
    pub tables: HashSet<String>,
    pub ids: HashSet<Uuid>,
    pub ranges: Vec<IndexRead>,
}

/// An indexed read: the documents of `table` whose `index` key starts with `prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRead {
    pub table: String,
    pub index: String,
    pub prefix: Vec<Key>,
}

/// One field's value in the form writes and reads are compared in: JSON text with numbers
/// written as `f64`, as jsonb compares them (`1` equals `1.0`). A missing field counts as `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn of(value: Option<&Value>) -> Self {
        Self(canonical(value.unwrap_or(&Value::Null)))
    }
}

fn canonical(value: &Value) -> String {
    match value {
        Value::Number(number) => number
            .as_f64()
            .map_or_else(|| number.to_string(), |n| format!("{n:?}")),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(fields) => {
            let mut fields: Vec<(&String, String)> =
                fields.iter().map(|(k, v)| (k, canonical(v))).collect();
            fields.sort();
            let fields: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        other => other.to_string(),
    }
}

impl ReadSet {
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    pub fn extend(&mut self, other: ReadSet) {
        self.everything |= other.everything;
        self.tables.extend(other.tables);
        self.ids.extend(other.ids);
        self.ranges.extend(other.ranges);
    }

    /// Whether any of `commit`'s writes may have changed what this read.
    pub fn touched_by(&self, commit: &WriteSet, schema: &Schema) -> bool {
        if self.everything || commit.everything {
            return true;
        }
        commit
            .writes
            .iter()
            .any(|write| self.touched_by_write(write, schema))
    }

    fn touched_by_write(&self, write: &Write, schema: &Schema) -> bool {
        if self.tables.contains(&write.table) {
            return true;
        }
        let Some(id) = write.id else {
            // A write known only by its table (an unmanaged row, a change made outside Convoy).
            return self.ranges.iter().any(|range| range.table == write.table);
        };
        if self.ids.contains(&id) {
            return true;
        }
        self.ranges.iter().any(|range| {
            range.table == write.table
                && [&write.old, &write.new]
                    .into_iter()
                    .flatten()
                    .any(|document| range.holds(document, schema))
        })
    }
}

impl IndexRead {
    /// Whether `document` (a document's fields) is in this read's range.
    fn holds(&self, document: &Value, schema: &Schema) -> bool {
        let Some(fields) = schema
            .table(&self.table)
            .ok()
            .and_then(|table| table.indexes.iter().find(|index| index.name == self.index))
            .map(|index| &index.fields)
        else {
            // An index the schema no longer has: assume the worst.
            return true;
        };
        self.prefix
            .iter()
            .zip(fields)
            .all(|(key, field)| *key == Key::of(document.get(field)))
    }
}

/// Everything one mutation wrote.
#[derive(Debug, Default, Clone)]
pub struct WriteSet {
    /// Raw SQL wrote: it may have changed anything.
    pub everything: bool,
    pub writes: Vec<Write>,
}

impl WriteSet {
    /// A commit that may have changed anything (raw SQL, or commits missed while away).
    pub fn everything() -> Self {
        Self {
            everything: true,
            writes: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.everything && self.writes.is_empty()
    }

    /// The commit as a `NOTIFY` payload for the other processes on the database: each write with
    /// only its indexed fields (all a read set compares), or — when that is longer than a
    /// notification may be — only its tables, which wakes more but misses nothing.
    pub fn to_payload(&self, origin: &str, schema: &Schema) -> String {
        let indexed = |table: &str, document: &Option<Value>| {
            let fields: HashSet<&String> = schema
                .table(table)
                .map(|table| {
                    table
                        .indexes
                        .iter()
                        .flat_map(|index| &index.fields)
                        .collect()
                })
                .unwrap_or_default();
            document.as_ref().map(|document| {
                Value::Object(
                    document
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(field, _)| fields.contains(field))
                        .map(|(field, value)| (field.clone(), value.clone()))
                        .collect(),
                )
            })
        };
        let precise = Payload {
            origin,
            everything: self.everything,
            writes: self
                .writes
                .iter()
                .map(|write| Write {
                    table: write.table.clone(),
                    id: write.id,
                    old: indexed(&write.table, &write.old),
                    new: indexed(&write.table, &write.new),
                })
                .collect(),
        };
        let text = serde_json::to_string(&precise).expect("a payload serializes");
        if text.len() <= PAYLOAD_LIMIT {
            return text;
        }
        let tables: HashSet<&String> = self.writes.iter().map(|write| &write.table).collect();
        let coarse = Payload {
            origin,
            everything: self.everything || tables.len() > 100,
            writes: tables
                .into_iter()
                .map(|table| Write {
                    table: table.clone(),
                    id: None,
                    old: None,
                    new: None,
                })
                .collect(),
        };
        serde_json::to_string(&coarse).expect("a payload serializes")
    }

    /// A payload of [`WriteSet::to_payload`]: the origin process and the commit.
    pub fn from_payload(payload: &str) -> Option<(String, WriteSet)> {
        let payload: OwnedPayload = serde_json::from_str(payload).ok()?;
        Some((
            payload.origin,
            WriteSet {
                everything: payload.everything,
                writes: payload.writes,
            },
        ))
    }
}

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
}

impl Announcement {
    pub fn payload(&self, origin: &str, schema: &Schema) -> String {
        match self {
            Self::Hello => serde_json::json!({ "origin": origin, "signal": "hello" }).to_string(),
            Self::Welcome => {
                serde_json::json!({ "origin": origin, "signal": "welcome" }).to_string()
            }
            Self::Ready => serde_json::json!({ "origin": origin, "signal": "ready" }).to_string(),
            Self::Commit(commit) => commit.to_payload(origin, schema),
        }
    }

    /// The origin and the announcement, or `None` for a payload that is not one.
    pub fn parse(payload: &str) -> Option<(String, Self)> {
        #[derive(Deserialize)]
        struct Signal {
            origin: String,
            signal: String,
        }
        if let Ok(signal) = serde_json::from_str::<Signal>(payload) {
            return match signal.signal.as_str() {
                "hello" => Some((signal.origin, Self::Hello)),
                "welcome" => Some((signal.origin, Self::Welcome)),
                "ready" => Some((signal.origin, Self::Ready)),
                _ => None,
            };
        }
        WriteSet::from_payload(payload).map(|(origin, commit)| (origin, Self::Commit(commit)))
    }
}

/// The `NOTIFY` channel commits travel on between processes.
pub const CHANNEL: &str = "convoy_changes";

/// Postgres refuses notification payloads of 8000 bytes or more.
const PAYLOAD_LIMIT: usize = 7900;

#[derive(Serialize)]
struct Payload<'a> {
    origin: &'a str,
    everything: bool,
    writes: Vec<Write>,
}

#[derive(Deserialize)]
struct OwnedPayload {
    origin: String,
    everything: bool,
    writes: Vec<Write>,
}

/// One written document: its fields before (`None` for an insert) and after (`None` for a
/// delete). Without an id, the write stands for any row of its table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Write {
    pub table: String,
    pub id: Option<Uuid>,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// How many commits the log keeps. A query whose run began before the oldest of them re-runs.
const LOG_CAPACITY: usize = 4096;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_json(
            &json!({ "tables": [
                { "name": "projects", "managed": true, "indexes": [
                    { "name": "by_userId", "fields": ["userId", "createdAt"] }
                ] }
            ] })
            .to_string(),
        )
        .unwrap()
    }

    fn by_user(user: &str) -> ReadSet {
        ReadSet {
            ranges: vec![IndexRead {
                table: "projects".into(),
                index: "by_userId".into(),
                prefix: vec![Key::of(Some(&json!(user)))],
            }],
            ..ReadSet::default()
        }
    }

    fn write(old: Option<Value>, new: Option<Value>) -> WriteSet {
        WriteSet {
            everything: false,
            writes: vec![Write {
                table: "projects".into(),
                id: Some(Uuid::now_v7()),
                old,
                new,
            }],
        }
    }

    #[test]
    fn a_write_wakes_the_reads_of_its_old_and_new_keys_only() {
        let schema = schema();
        let insert_a = write(None, Some(json!({ "userId": "a", "createdAt": 1 })));
        assert!(by_user("a").touched_by(&insert_a, &schema));
        assert!(!by_user("b").touched_by(&insert_a, &schema));
        // Moving a project from a to b changes both lists.
        let moved = write(
            Some(json!({ "userId": "a" })),
            Some(json!({ "userId": "b" })),
        );
        assert!(by_user("a").touched_by(&moved, &schema));
        assert!(by_user("b").touched_by(&moved, &schema));
        assert!(!by_user("c").touched_by(&moved, &schema));
    }

    #[test]
    fn numbers_match_as_jsonb_compares_them() {
        assert_eq!(Key::of(Some(&json!(1))), Key::of(Some(&json!(1.0))));
        assert_ne!(Key::of(Some(&json!(1))), Key::of(Some(&json!("1"))));
        assert_eq!(Key::of(None), Key::of(Some(&Value::Null)));
        assert_eq!(
            Key::of(Some(&json!({ "b": 1, "a": [2] }))),
            Key::of(Some(&json!({ "a": [2.0], "b": 1.0 })))
        );
    }

    #[test]
    fn tables_ids_and_raw_sql_are_coarse_and_safe() {
        let schema = schema();
        let insert = write(None, Some(json!({ "userId": "a" })));
        let mut table = ReadSet::default();
        table.tables.insert("projects".into());
        assert!(table.touched_by(&insert, &schema));
        assert!(ReadSet::everything().touched_by(&insert, &schema));
        let raw = WriteSet {
            everything: true,
            writes: vec![],
        };
        assert!(by_user("z").touched_by(&raw, &schema));
        let mut other = ReadSet::default();
        other.tables.insert("users".into());
        assert!(!other.touched_by(&insert, &schema));
    }

    #[test]
    fn payloads_carry_indexed_fields_and_fall_back_to_tables() {
        let schema = schema();
        let commit = write(
            Some(json!({ "userId": "a", "name": "old", "createdAt": 1 })),
            Some(json!({ "userId": "b", "name": "new", "createdAt": 1 })),
        );
        let payload = commit.to_payload("me", &schema);
        assert!(
            !payload.contains("\"name\""),
            "only indexed fields travel: {payload}"
        );
        let (origin, received) = WriteSet::from_payload(&payload).unwrap();
        assert_eq!(origin, "me");
        assert!(by_user("a").touched_by(&received, &schema));
        assert!(by_user("b").touched_by(&received, &schema));
        assert!(!by_user("c").touched_by(&received, &schema));

        let many = WriteSet {
            everything: false,
            writes: (0..500)
                .map(|n| Write {
                    table: "projects".into(),
                    id: Some(Uuid::now_v7()),
                    old: None,
                    new: Some(json!({ "userId": format!("user {n}") })),
                })
                .collect(),
        };
        let payload = many.to_payload("me", &schema);
        assert!(payload.len() < 8000);
        let (_, received) = WriteSet::from_payload(&payload).unwrap();
        assert!(
            by_user("anyone").touched_by(&received, &schema),
            "the table alone wakes every read of it"
        );
    }

    #[test]
    fn the_log_answers_what_came_after_a_position() {
        let log = CommitLog::default();
        assert_eq!(log.position(), 0);
        let schema = schema();
        let first = log.append(write(None, Some(json!({ "userId": "a" }))).into());
        let second = log.append(write(None, Some(json!({ "userId": "b" }))).into());
        assert_eq!((first, second), (1, 2));
        assert!(log.touched_since(0, &by_user("a"), &schema));
        assert!(!log.touched_since(1, &by_user("a"), &schema));
        assert!(log.touched_since(1, &by_user("b"), &schema));
        for _ in 0..LOG_CAPACITY {
            log.append(WriteSet::default().into());
        }
        assert!(
            log.since(1).is_none(),
            "forgotten commits count as touching"
        );
        assert!(log.touched_since(1, &by_user("nobody"), &schema));
    }
}
