//! One poll's work when the queue holds rows: take them, read back the rows they name as they are
//! now, and announce the writes to the other processes, all in one transaction.

use std::collections::HashMap;

use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use super::queued::{write_set, Queued};
use crate::error::Result;
use crate::reactivity::{Neighbours, WriteSet, CHANNEL};
use crate::schema::Schema;
use crate::sql::quote_ident;

/// The most rows one poll takes: a writer faster than that is caught up with over several polls.
const ROWS_PER_POLL: i64 = 1000;

/// Rows another process is deleting at the same moment are waited for, then skipped: locking
/// them first (`FOR UPDATE SKIP LOCKED`) would write each row twice.
const TAKE_QUEUED: &str = "DELETE FROM convoy.changes WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM convoy.changes LIMIT $1))
RETURNING table_name, operation, id, old_row";

const ANNOUNCE: &str = "SELECT pg_notify($1, $2)";

/// The statements of a poll, prepared once per connection: a statement that is not prepared
/// would leave its pipeline out of order, and cost a round trip more.
pub struct Taker {
    take_queued: Statement,
    announce: Statement,
    /// Each table's read of its current rows, prepared when first needed.
    read_rows: HashMap<String, Statement>,
}

impl Taker {
    pub async fn prepare(client: &Client) -> std::result::Result<Self, tokio_postgres::Error> {
        let (take_queued, announce) =
            tokio::try_join!(client.prepare(TAKE_QUEUED), client.prepare(ANNOUNCE))?;
        Ok(Self {
            take_queued,
            announce,
            read_rows: HashMap::new(),
        })
    }

    /// Takes what is queued; returns how many rows it took, and what they wrote. While other
    /// processes listen, in a transaction that announces the writes to them, each pair of
    /// statements pipelined; else in one statement, as a poll of an empty queue is.
    pub async fn take(
        &mut self,
        client: &Client,
        neighbours: &Neighbours,
        schema: &Schema,
    ) -> Result<(u64, WriteSet)> {
        if !neighbours.announcing() {
            let rows = client.query(&self.take_queued, &[&ROWS_PER_POLL]).await?;
            let queued = queued_rows(&rows);
            let current = self.current_rows(client, schema, &queued).await?;
            return Ok((queued.len() as u64, write_set(schema, &queued, &current)));
        }
        let (began, rows) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query(&self.take_queued, &[&ROWS_PER_POLL])
        );
        began?;
        let queued = queued_rows(&rows?);
        if queued.is_empty() {
            client.batch_execute("COMMIT").await?;
            return Ok((0, WriteSet::default()));
        }
        let current = self.current_rows(client, schema, &queued).await?;
        let commit = write_set(schema, &queued, &current);
        let payload = neighbours.announcement(&commit, schema);
        let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&CHANNEL, &payload];
        let (notified, committed) = tokio::join!(
            client.execute(&self.announce, &parameters),
            client.batch_execute("COMMIT")
        );
        notified?;
        committed?;
        Ok((queued.len() as u64, commit))
    }

    /// The rows that inserts and updates wrote, as they are now, by table and id.
    async fn current_rows(
        &mut self,
        client: &Client,
        schema: &Schema,
        queued: &[Queued],
    ) -> Result<HashMap<(String, Uuid), serde_json::Value>> {
        let mut wanted: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for entry in queued {
            if let Some(id) = entry.written_id(schema) {
                wanted.entry(entry.table.as_str()).or_default().push(id);
            }
        }
        let mut current = HashMap::new();
        for (table, ids) in wanted {
            let statement = if let Some(statement) = self.read_rows.get(table) {
                statement.clone()
            } else {
                let statement = client
                    .prepare(&format!(
                        "SELECT t.id, to_jsonb(t) AS row FROM {} t WHERE t.id = ANY ($1)",
                        quote_ident(table)?
                    ))
                    .await?;
                self.read_rows.insert(table.to_owned(), statement.clone());
                statement
            };
            for row in client.query(&statement, &[&ids]).await? {
                current.insert((table.to_owned(), row.get("id")), row.get("row"));
            }
        }
        Ok(current)
    }
}

fn queued_rows(rows: &[tokio_postgres::Row]) -> Vec<Queued> {
    rows.iter()
        .map(|row| Queued {
            table: row.get("table_name"),
            operation: row.get("operation"),
            id: row.get("id"),
            old_row: row.get("old_row"),
        })
        .collect()
}
