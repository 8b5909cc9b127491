//! A mutation's write buffer and the documents it has seen (see [`Writes`]).

use uuid::Uuid;

use super::call::{Call, Change, Changed, PendingWrite, Seen, SeenDocument, SEEN_LIMIT};
use super::Engine;
use crate::document::{creation_time_of, epoch_millis, has_nul, Parts};
use crate::error::{ConvoyError, Result};
use crate::plan::{plan_delete, plan_insert, plan_replace};

/// A write to a row known only by its table: it wakes every read of that table.
pub(super) fn wrote_table(call: &Call, table: &str) {
    call.writes().changes.push(Changed {
        table: table.to_owned(),
        id: None,
        old: None,
        new: None,
    });
}

impl Engine {
    /// What this call knows of a document without asking Postgres: in a mutation, the documents it
    /// has read or written (see [`Writes`]).
    pub fn seen(&self, call_id: u32, id: &str) -> Result<Seen> {
        let call = self.call(call_id)?;
        let Ok(id) = Uuid::parse_str(id) else {
            return Ok(Seen::Unknown);
        };
        let writes = call.writes();
        let Some(seen) = writes.seen.get(&id) else {
            return Ok(Seen::Unknown);
        };
        Ok(match &seen.stored {
            None => Seen::Deleted,
            Some((creation_time, data)) => Seen::Document {
                table: seen.table.clone(),
                json: Parts {
                    id,
                    creation_time: *creation_time,
                    data: data.as_str().into(),
                }
                .to_json()?,
            },
        })
    }

    /// Inserts a document (JSON object text, already validated against the table's schema in
    /// JavaScript) and returns its new id: the primary key of an unmanaged table's row, or a
    /// `UUIDv7` for a managed table, whose insert is queued (see [`Engine::queue_insert`]).
    pub async fn insert(&self, call_id: u32, table: &str, document_json: &str) -> Result<String> {
        let schema = self.schema();
        let definition = schema.table(table)?;
        if definition.managed {
            return self.queue_insert(call_id, table, document_json);
        }
        expect_object(document_json)?;
        self.insert_unmanaged(call_id, definition, document_json)
            .await
    }

    /// Queues an insert into a managed table (see [`Writes`]) and returns the new `UUIDv7` id.
    pub fn queue_insert(&self, call_id: u32, table: &str, document_json: &str) -> Result<String> {
        let sql = plan_insert(&self.schema(), table)?;
        let call = self.writing_call(call_id)?;
        let id = Uuid::now_v7();
        let created_at = creation_time_of(&id);
        let data = document_json.to_owned();
        Self::queue(&call, table, id, sql, Change::Insert { data, created_at })?;
        Ok(id.hyphenated().to_string())
    }

    /// Replaces a document's fields (JSON object text, validated in JavaScript). A missing
    /// document is `NOT_FOUND`.
    pub async fn replace(
        &self,
        call_id: u32,
        table: &str,
        id: &str,
        document_json: &str,
    ) -> Result<()> {
        self.expect_document(call_id, table, id).await?;
        self.queue_replace(call_id, table, id, document_json)
    }

    /// Deletes a document. A missing document is `NOT_FOUND`.
    pub async fn delete(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        self.expect_document(call_id, table, id).await?;
        self.queue_delete(call_id, table, id)
    }

    /// Makes sure the call has seen the document in `table`, asking Postgres if need be.
    pub(super) async fn expect_document(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        if self.seen(call_id, id)? == Seen::Unknown {
            self.locate(call_id, Some(table), &parse_id(id)?.to_string())
                .await?;
        }
        Ok(())
    }

    /// Queues a replace of a document the call has seen (read, located or written); one it has
    /// not seen, or not in `table`, is `NOT_FOUND`.
    pub fn queue_replace(
        &self,
        call_id: u32,
        table: &str,
        id: &str,
        document_json: &str,
    ) -> Result<()> {
        let sql = plan_replace(&self.schema(), table)?;
        let call = self.writing_call(call_id)?;
        let id = Self::seen_in(&call, table, id)?;
        let data = document_json.to_owned();
        Self::queue(&call, table, id, sql, Change::Replace { data })
    }

    /// Queues a delete of a document the call has seen, as [`Engine::queue_replace`].
    pub fn queue_delete(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        let schema = self.schema();
        let sql = plan_delete(&schema, table)?;
        let call = self.writing_call(call_id)?;
        let id = Self::seen_in(&call, table, id)?;
        Self::queue(&call, table, id, sql, Change::Delete)?;
        // Rows the database deletes or changes with this one (a ref's `onDelete`): their tables
        // are written as a whole, and what the call saw of them is forgotten.
        let mut writes = call.writes();
        for child in schema.changed_by_delete_from(table) {
            writes.changes.push(Changed {
                table: child.to_owned(),
                id: None,
                old: None,
                new: None,
            });
            writes.seen.retain(|_, seen| seen.table != child);
        }
        Ok(())
    }

    /// The id, when the call has seen that document in `table`.
    pub(super) fn seen_in(call: &Call, table: &str, id: &str) -> Result<Uuid> {
        let id = parse_id(id)?;
        let writes = call.writes();
        match writes.seen.get(&id) {
            Some(seen) if seen.table == table && seen.stored.is_some() => Ok(id),
            _ => Err(ConvoyError::NotFound(format!(
                "there is no document {id} in {table}"
            ))),
        }
    }

    /// Queues a write of the call's (see [`Writes`]), keeping what it has seen up to date.
    pub(super) fn queue(
        call: &Call,
        table: &str,
        id: Uuid,
        sql: String,
        change: Change,
    ) -> Result<()> {
        let mut writes = call.writes();
        if let Change::Insert { data, .. } | Change::Replace { data } = &change {
            if let Err(error) = expect_object(data) {
                writes.failure.get_or_insert(error.clone());
                return Err(error);
            }
        }
        let old = writes
            .seen
            .get(&id)
            .and_then(|seen| seen.stored.as_ref())
            .map(|(_, data)| data.clone());
        let new = match &change {
            Change::Insert { data, .. } | Change::Replace { data } => Some(data.clone()),
            Change::Delete => None,
        };
        writes.changes.push(Changed {
            table: table.to_owned(),
            id: Some(id),
            old,
            new,
        });
        let stored = match &change {
            Change::Insert { data, created_at } => Some((epoch_millis(*created_at), data.clone())),
            Change::Replace { data } => writes
                .seen
                .get(&id)
                .and_then(|seen| seen.stored.as_ref())
                .map(|(creation_time, _)| (*creation_time, data.clone())),
            Change::Delete => None,
        };
        if writes.seen.len() < SEEN_LIMIT || writes.seen.contains_key(&id) {
            let table = table.to_owned();
            writes.seen.insert(id, SeenDocument { table, stored });
        }
        writes.pending.push(PendingWrite {
            table: table.to_owned(),
            id,
            sql,
            change,
        });
        Ok(())
    }
}

/// A document as it is written: a JSON object Postgres will take (JSONB refuses NUL characters).
pub(super) fn expect_object(document_json: &str) -> Result<()> {
    if !document_json.trim_start().starts_with('{') {
        return Err(ConvoyError::InvalidArgs(
            "a document must be a JSON object".into(),
        ));
    }
    if has_nul(document_json) {
        return Err(ConvoyError::InvalidArgs(
            "a document cannot hold the NUL character (\\u0000): Postgres JSONB refuses it".into(),
        ));
    }
    Ok(())
}

pub(super) fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ConvoyError::InvalidArgs(format!("{id:?} is not a document id")))
}
