//! The backfill (GRADUATION.md step 2): the columns of the rows already there, filled from their
//! `data` in keyset batches. Each batch commits together with the run's place in
//! `convoy.graduations`, so a run stopped anywhere goes on from the last batch that committed,
//! with nothing missed or done twice. The batch size follows a time target, so each batch holds
//! its rows' locks only briefly whatever the rows weigh.

use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

use super::ddl;
use crate::database::Database;
use crate::error::{ConvoyError, Result};
use crate::schema::Table;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackfillOptions {
    /// How long one batch should take; the size follows.
    pub batch_millis: u64,
    /// A ceiling on the rate, for a database that must keep room for its app.
    pub max_rows_per_second: Option<f64>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_millis: 200,
            max_rows_per_second: None,
        }
    }
}

const FIRST_BATCH: i64 = 500;
const SMALLEST_BATCH: i64 = 50;
const LARGEST_BATCH: i64 = 50_000;

pub(super) async fn run(
    database: &Database,
    table: &Table,
    options: &BackfillOptions,
) -> Result<()> {
    let batch_sql = ddl::backfill_batch(table)?;
    let mut client = database.schema_connection().await?;
    let mut size = FIRST_BATCH;
    let target = Duration::from_millis(options.batch_millis.max(10));
    loop {
        let position: Option<(Uuid, i32)> = client
            .query_opt(
                "SELECT position, batch_size FROM convoy.graduations WHERE table_name = $1",
                &[&table.name],
            )
            .await?
            .map(|row| (row.get(0), row.get(1)));
        let Some((position, recorded_size)) = position else {
            return Err(ConvoyError::InvalidArgs(format!(
                "the graduation of {} was aborted meanwhile",
                table.name
            )));
        };
        if recorded_size > 0 && size == FIRST_BATCH {
            size = i64::from(recorded_size);
        }
        let started = Instant::now();
        let transaction = client.transaction().await?;
        // Quiet for the change trigger: the backfill changes no document.
        transaction
            .batch_execute("SET LOCAL lock_timeout = '2s'; SET LOCAL convoy.writer = 'convoy'")
            .await?;
        let rows = match transaction
            .query(batch_sql.as_str(), &[&position, &size])
            .await
        {
            Ok(rows) => rows,
            Err(error)
                if error.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
            {
                drop(transaction);
                size = (size / 2).max(SMALLEST_BATCH);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => {
                drop(transaction);
                return Err(failing_row(database, table, position, size, &error).await);
            }
        };
        if rows.is_empty() {
            transaction.rollback().await?;
            return Ok(());
        }
        let last: Uuid = rows
            .iter()
            .map(|row| row.get::<_, Uuid>(0))
            .max()
            .expect("a batch of rows");
        let done = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let recorded = transaction
            .execute(
                "UPDATE convoy.graduations SET position = $2, rows_done = rows_done + $3,
                 rows_total = GREATEST(rows_total, rows_done + $3), batch_size = $4, updated_at = now()
                 WHERE table_name = $1",
                &[&table.name, &last, &done, &i32::try_from(size).unwrap_or(i32::MAX)],
            )
            .await?;
        if recorded == 0 {
            transaction.rollback().await?;
            return Err(ConvoyError::InvalidArgs(format!(
                "the graduation of {} was aborted meanwhile",
                table.name
            )));
        }
        transaction.commit().await?;
        let took = started.elapsed();
        size = next_size(size, took, target);
        if let Some(rate) = options.max_rows_per_second.filter(|rate| *rate > 0.0) {
            #[allow(clippy::cast_precision_loss)] // a row count far below 2^52
            let allowed = Duration::from_secs_f64(done as f64 / rate);
            if let Some(rest) = allowed.checked_sub(took) {
                tokio::time::sleep(rest).await;
            }
            // No batch larger than a second's worth at the ceiling.
            #[allow(clippy::cast_possible_truncation)]
            let ceiling = rate.ceil() as i64;
            size = size.min(ceiling.max(SMALLEST_BATCH));
        }
    }
}

/// The size that would have taken `target`, moved at most fourfold at a time.
fn next_size(size: i64, took: Duration, target: Duration) -> i64 {
    let took = took.as_secs_f64().max(0.001);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let wanted = (size as f64 * target.as_secs_f64() / took) as i64;
    wanted
        .clamp(size / 4, size * 4)
        .clamp(SMALLEST_BATCH, LARGEST_BATCH)
}

/// A batch failed on one of its rows (a value that will not cast, a constraint it breaks: a
/// write slipped in since the check): finds which, row by row, and stops the run naming it.
async fn failing_row(
    database: &Database,
    table: &Table,
    position: Uuid,
    size: i64,
    batch_error: &tokio_postgres::Error,
) -> ConvoyError {
    let reason = |error: &tokio_postgres::Error| {
        error
            .as_db_error()
            .map_or_else(|| error.to_string(), |db| db.message().to_owned())
    };
    let search = async {
        let mut client = database.schema_connection().await?;
        let ids: Vec<Uuid> = client
            .query(
                &format!(
                    "SELECT id FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
                    crate::sql::quote_ident(&table.name)?
                ),
                &[&position, &size],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let row_sql = ddl::backfill_row(table)?;
        for id in ids {
            let transaction = client.transaction().await?;
            let result = transaction.execute(row_sql.as_str(), &[&id]).await;
            transaction.rollback().await?;
            if let Err(error) = result {
                return Ok(Some((id, reason(&error))));
            }
        }
        Ok::<_, ConvoyError>(None)
    };
    match search.await {
        Ok(Some((id, why))) => ConvoyError::InvalidArgs(format!(
            "the backfill of {} stopped at row {id}: {why}. Fix that row (npx convoy graduate {} --check lists what does not fit) and run the graduation again: it goes on from here",
            table.name, table.name
        )),
        // No single row explains it: the batch's own error.
        _ => ConvoyError::Internal(format!("the backfill failed: {}", reason(batch_error))),
    }
}
