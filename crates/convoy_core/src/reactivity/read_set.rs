//! What a call read, recorded as coarsely as is safe, and whether a commit may have changed it.

use std::collections::HashSet;

use serde_json::Value;
use uuid::Uuid;

use super::write_set::{Write, WriteSet};
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
