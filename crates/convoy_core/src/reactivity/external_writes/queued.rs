//! The queue's rows as the writes a Convoy mutation would have published: each row's id and its
//! indexed fields before and after.
//!
//! The queue holds the row before (of an update or a delete) but not the row after: that is read
//! from the table when the queue is drained, off the writer's path. It may be newer than what the
//! write wrote, if a later write changed it again — and that later write is in the queue too,
//! with what it replaced as its row before. So between them the writes tell every value the row
//! held, and nothing that could change goes untold.

use std::collections::HashMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::reactivity::{Write, WriteSet};
use crate::schema::{ColumnKind, Schema, Table};

/// One row of `convoy.changes`.
pub struct Queued {
    pub table: String,
    /// `TG_OP`: INSERT, UPDATE, DELETE or TRUNCATE.
    pub operation: String,
    pub id: Option<String>,
    pub old_row: Option<Value>,
}

impl Queued {
    /// The id of a row an insert or update wrote, to be read back; `None` when there is none to
    /// read (a delete, a whole table) or Convoy cannot read it (a table it does not manage).
    pub fn written_id(&self, schema: &Schema) -> Option<Uuid> {
        if !matches!(self.operation.as_str(), "INSERT" | "UPDATE") {
            return None;
        }
        schema.table(&self.table).ok()?;
        Uuid::parse_str(self.id.as_deref()?).ok()
    }
}

/// The writes of `queued`, with `current` the rows inserts and updates wrote as they are now.
pub fn write_set(
    schema: &Schema,
    queued: &[Queued],
    current: &HashMap<(String, Uuid), Value>,
) -> WriteSet {
    WriteSet {
        everything: false,
        writes: queued
            .iter()
            .filter_map(|entry| write(schema, entry, current))
            .collect(),
    }
}

fn write(
    schema: &Schema,
    entry: &Queued,
    current: &HashMap<(String, Uuid), Value>,
) -> Option<Write> {
    let whole_table = Write {
        table: entry.table.clone(),
        id: None,
        old: None,
        new: None,
    };
    // A table the schema does not name, an id that is no uuid, a statement of too many rows.
    let (Ok(table), Some(id)) = (
        schema.table(&entry.table),
        entry.id.as_deref().and_then(|id| Uuid::parse_str(id).ok()),
    ) else {
        return Some(whole_table);
    };
    let now = current
        .get(&(entry.table.clone(), id))
        .map(|row| indexed_fields(table, row));
    let old = entry.old_row.as_ref().map(|row| indexed_fields(table, row));
    match (entry.operation.as_str(), now) {
        // Gone since, or renamed by an update of its id: either write is queued too, and tells
        // what this one wrote as its row before.
        ("INSERT", None) => None,
        ("INSERT", new @ Some(_)) => Some(Write {
            table: entry.table.clone(),
            id: Some(id),
            old: None,
            new,
        }),
        ("UPDATE", new @ Some(_)) => Some(Write {
            table: entry.table.clone(),
            id: Some(id),
            old,
            new,
        }),
        ("DELETE", _) => Some(Write {
            table: entry.table.clone(),
            id: Some(id),
            old,
            new: None,
        }),
        // An update whose row is gone: its id changed (the row after is under an id nobody
        // queued), or it was deleted since. And TRUNCATE.
        _ => Some(whole_table),
    }
}

/// The indexed fields of a row as JSON: out of `data` while the row has it (a document table, or
/// one a graduation is moving), else out of the columns. A missing field is left out, as a Convoy
/// write set leaves it out.
fn indexed_fields(table: &Table, row: &Value) -> Value {
    let mut fields = Map::new();
    let indexed = table.indexes.iter().flat_map(|index| &index.fields);
    if let Some(data) = row.get("data") {
        // psql can write `data` that is no object: it has no fields to tell.
        if let Some(document) = data.as_object() {
            for field in indexed {
                if let Some(value) = document.get(field) {
                    fields.insert(field.clone(), value.clone());
                }
            }
        }
        return Value::Object(fields);
    }
    for field in indexed {
        let Some(column) = table.field_column(field) else {
            continue;
        };
        let value = row.get(&column.column).cloned().unwrap_or(Value::Null);
        // A typed column's NULL is `null` for a required nullable field, else a missing field;
        // as JSON a row shows both as `null`.
        if value.is_null() && !(column.kind != ColumnKind::Jsonb && column.null_is_json_null()) {
            continue;
        }
        fields.insert(field.clone(), value);
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        Schema::from_json(
            &json!({ "tables": [
                { "name": "projects", "managed": true, "indexes": [
                    { "name": "by_userId", "fields": ["userId"] }
                ] }
            ] })
            .to_string(),
        )
        .unwrap()
    }

    fn queued(operation: &str, id: Option<Uuid>, old: Option<Value>) -> Queued {
        Queued {
            table: "projects".into(),
            operation: operation.into(),
            id: id.map(|id| id.to_string()),
            old_row: old.map(|data| json!({ "id": id, "data": data })),
        }
    }

    #[test]
    fn each_write_tells_its_indexed_fields_before_and_as_read_back() {
        let schema = schema();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let current = HashMap::from([(
            ("projects".into(), a),
            json!({ "id": a, "data": { "userId": "u2", "name": "x" } }),
        )]);
        let writes = write_set(
            &schema,
            &[
                queued("INSERT", Some(a), None),
                queued(
                    "UPDATE",
                    Some(a),
                    Some(json!({ "userId": "u1", "name": "x" })),
                ),
                queued("DELETE", Some(b), Some(json!({ "userId": "u3" }))),
            ],
            &current,
        )
        .writes;
        let told: Vec<_> = writes
            .iter()
            .map(|write| (write.id, write.old.clone(), write.new.clone()))
            .collect();
        assert_eq!(
            told,
            vec![
                (Some(a), None, Some(json!({ "userId": "u2" }))),
                (
                    Some(a),
                    Some(json!({ "userId": "u1" })),
                    Some(json!({ "userId": "u2" }))
                ),
                (Some(b), Some(json!({ "userId": "u3" })), None),
            ]
        );
    }

    #[test]
    fn a_row_gone_since_is_told_by_the_write_that_took_it_or_as_its_table() {
        let schema = schema();
        let id = Uuid::now_v7();
        let none = HashMap::new();
        // An insert whose row was deleted since: the delete tells what it removed.
        assert!(
            write_set(&schema, &[queued("INSERT", Some(id), None)], &none)
                .writes
                .is_empty()
        );
        // An update whose row is gone (its id may have changed): the whole table.
        let update = write_set(
            &schema,
            &[queued("UPDATE", Some(id), Some(json!({})))],
            &none,
        );
        assert_eq!(update.writes[0].id, None);
        // A statement of too many rows, a table Convoy does not manage, an id that is no uuid.
        for entry in [
            queued("UPDATE", None, None),
            Queued {
                table: "elsewhere".into(),
                ..queued("INSERT", Some(id), None)
            },
            Queued {
                id: Some("7".into()),
                ..queued("DELETE", None, Some(json!({})))
            },
        ] {
            let told = write_set(&schema, &[entry], &none);
            assert_eq!(told.writes[0].id, None);
            assert!(told.writes[0].old.is_none() && told.writes[0].new.is_none());
        }
    }
}
