//! Writes made outside Convoy, taken from the queue the change triggers fill
//! (`migrate::change_trigger`) and told to this process's live queries and to the other
//! processes'.
//!
//! Every process polls the queue, and each row goes to the one that deletes it: it appends the
//! rows to its own log and, in the same transaction as the delete, announces them to the others
//! as its own commits are announced (`Neighbours`). So a row is told exactly once to every
//! process, even when the one that took it dies right after: its delete then rolled back, or the
//! announcement went out with it.
//!
//! Polling, not `NOTIFY`: a writer that notified paid a lock for the whole cluster at every
//! commit, and a poll of an empty queue costs Postgres about as little as a query can. The poll
//! interval bounds the delay an outside write adds before its live queries re-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{CommitLog, Neighbours, Write, WriteSet, CHANNEL};
use crate::database::Database;
use crate::error::Result;
use crate::schema::{ColumnKind, Schema, Table};

/// How often the queue is looked at: the most an outside write waits before it is seen.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How often the queue is looked for while it does not exist (no `convoy migrate` yet, or the
/// triggers turned off).
const ABSENT_INTERVAL: Duration = Duration::from_secs(2);

/// The most rows one poll takes: a writer faster than that is caught up with over several polls.
const ROWS_PER_POLL: i64 = 1000;

/// How often, at most, this process vacuums the queue it deleted rows from: every poll scans it,
/// and autovacuum may not come by for a minute.
const VACUUM_INTERVAL: Duration = Duration::from_secs(1);

const ANYTHING_QUEUED: &str = "SELECT EXISTS (SELECT 1 FROM convoy.changes)";

/// Rows another process is taking are skipped, not waited for.
const TAKE_QUEUED: &str = "DELETE FROM convoy.changes WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM convoy.changes LIMIT $1 FOR UPDATE SKIP LOCKED))
RETURNING table_name, old_row, new_row";

/// Polls the queue for as long as the process runs, reconnecting when the connection breaks.
pub async fn follow(
    database: &Database,
    log: &CommitLog,
    neighbours: &Neighbours,
    schema: impl Fn() -> Arc<Schema>,
) {
    loop {
        match database.own_connection().await {
            Ok(client) => {
                let error = poll(&client, log, neighbours, &schema).await;
                tracing::warn!(%error, "lost the connection that reads outside writes; reconnecting");
                // A poll may have taken rows whose answer was lost with the connection.
                log.append(Arc::new(WriteSet::everything()));
            }
            Err(error) => tracing::warn!(%error, "could not connect to read outside writes"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Polls until something fails, and returns what did.
async fn poll(
    client: &Client,
    log: &CommitLog,
    neighbours: &Neighbours,
    schema: &impl Fn() -> Arc<Schema>,
) -> crate::ConvoyError {
    let mut last_vacuum = Instant::now();
    let mut taken_since_vacuum = 0usize;
    let mut vacuum_refused = false;
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let queued = match client.query_one(ANYTHING_QUEUED, &[]).await {
            Ok(row) => row.get::<_, bool>(0),
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                tokio::time::sleep(ABSENT_INTERVAL).await;
                continue;
            }
            Err(error) => return error.into(),
        };
        if queued {
            match take(client, neighbours, &schema()).await {
                Ok(commit) => {
                    taken_since_vacuum += commit.writes.len();
                    log.append(Arc::new(commit));
                }
                Err(error) => return error,
            }
        }
        if taken_since_vacuum > 0 && !vacuum_refused && last_vacuum.elapsed() >= VACUUM_INTERVAL {
            // Another process vacuuming it already is as good; a role that does not own the
            // queue leaves it to autovacuum.
            if let Err(error) = client
                .batch_execute("VACUUM (SKIP_LOCKED) convoy.changes")
                .await
            {
                tracing::warn!(%error, "could not vacuum convoy.changes; autovacuum will");
                vacuum_refused = true;
            }
            last_vacuum = Instant::now();
            taken_since_vacuum = 0;
        }
    }
}

/// Takes what is queued and, in the same transaction, announces it to the other processes.
async fn take(client: &Client, neighbours: &Neighbours, schema: &Schema) -> Result<WriteSet> {
    client.batch_execute("BEGIN").await?;
    let rows = client.query(TAKE_QUEUED, &[&ROWS_PER_POLL]).await?;
    let commit = WriteSet {
        everything: false,
        writes: rows
            .iter()
            .map(|row| {
                queued_write(
                    schema,
                    row.get("table_name"),
                    row.get("old_row"),
                    row.get("new_row"),
                )
            })
            .collect(),
    };
    if let Some(payload) = neighbours.announcement(&commit, schema) {
        client
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
            .await?;
    }
    client.batch_execute("COMMIT").await?;
    Ok(commit)
}

/// One queued row as the write a Convoy mutation would have published: the id and the indexed
/// fields of the row before and after. A row Convoy cannot read so (a table the schema does not
/// name, an id that is no uuid, a row for the whole table) stands for any row of its table.
pub fn queued_write(
    schema: &Schema,
    table: &str,
    old_row: Option<Value>,
    new_row: Option<Value>,
) -> Write {
    let whole_table = Write {
        table: table.to_owned(),
        id: None,
        old: None,
        new: None,
    };
    let Ok(definition) = schema.table(table) else {
        return whole_table;
    };
    let id = new_row
        .as_ref()
        .or(old_row.as_ref())
        .and_then(|row| row.get("id"))
        .and_then(Value::as_str)
        .and_then(|id| uuid::Uuid::parse_str(id).ok());
    if id.is_none() {
        return whole_table;
    }
    Write {
        table: table.to_owned(),
        id,
        old: old_row.map(|row| indexed_fields(definition, &row)),
        new: new_row.map(|row| indexed_fields(definition, &row)),
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
