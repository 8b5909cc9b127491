//! What a commit wrote, and its form as a `NOTIFY` payload for the other processes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::schema::Schema;

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
