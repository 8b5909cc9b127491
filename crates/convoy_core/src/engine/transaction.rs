//! A call's transaction: its connection, `BEGIN` pipelined with the first statement, the
//! writes pipelined with the next one or with `COMMIT`, and the end of the call.

use std::future::Future;

use deadpool_postgres::Object;
use futures_util::future::join_all;

use super::call::{Call, CallKind, Change, PendingWrite, Transaction};
use super::idempotency::{is_repeat, RECORD};
use super::{must_run_in_transaction, Engine, Finished};
use crate::error::{ConvoyError, Result};
use crate::group_commit::LoneInsert;
use crate::plan::{plan_insert_columns, plan_insert_rows, Statement};

/// Whether `writes` is one insert and nothing else.
pub(super) fn is_one_insert(writes: &[PendingWrite]) -> bool {
    matches!(
        writes,
        [PendingWrite {
            change: Change::Insert { .. },
            ..
        }]
    )
}

/// What ending a transaction answered: the writes' first failure, and — unless nothing could be
/// sent — the idempotency key's row (when there is one) and `COMMIT` or `ROLLBACK`.
type Ended = (
    Result<()>,
    Option<(
        Option<std::result::Result<u64, tokio_postgres::Error>>,
        std::result::Result<(), tokio_postgres::Error>,
    )>,
);

/// Ends a transaction in one round trip: `BEGIN` if it has not begun, the writes not sent yet,
/// the idempotency key's row right before `end`, and `end`.
async fn end_pipelined(
    connection: &Object,
    begin: Option<&str>,
    pending: &[PendingWrite],
    record: Option<(&str, &str)>,
    end: &str,
) -> Result<Ended> {
    let record_statement = match record {
        Some(_) => Some(connection.prepare_cached(RECORD).await?),
        None => None,
    };
    let last = async {
        match (record, &record_statement) {
            (Some((key, result)), Some(statement)) => {
                let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&key, &result];
                let (recorded, ended) = tokio::join!(
                    connection.execute(statement, &parameters),
                    connection.batch_execute(end)
                );
                (Some(recorded), ended)
            }
            _ => (None, connection.batch_execute(end).await),
        }
    };
    Ok(pipelined(connection, begin, pending, last).await)
}

/// Sends `BEGIN` (when given), then `writes`, then runs `last`, all pipelined: one round trip.
/// Returns the first failure of `BEGIN` and the writes, and what `last` returned — `None` when a
/// write could not even be prepared, and nothing was sent.
pub(super) async fn pipelined<T>(
    connection: &Object,
    begin: Option<&str>,
    writes: &[PendingWrite],
    last: impl Future<Output = T>,
) -> (Result<()>, Option<T>) {
    // Prepared first, so that each write goes out the moment it is polled, in order, ahead of
    // `last`; prepare_cached asks Postgres only the first time per connection.
    let mut statements = Vec::with_capacity(writes.len());
    for write in writes {
        match connection.prepare_cached(&write.sql).await {
            Ok(statement) => statements.push(statement),
            Err(error) => return (Err(error.into()), None),
        }
    }
    let begin = async {
        match begin {
            Some(sql) => connection
                .batch_execute(sql)
                .await
                .map_err(ConvoyError::from),
            None => Ok(()),
        }
    };
    let sent = join_all(
        writes
            .iter()
            .zip(&statements)
            .map(|(write, statement)| write.send(connection, statement)),
    );
    // join! polls in order the first time, which is when each request is sent.
    let (began, sent, last) = tokio::join!(begin, sent, last);
    (began.and(sent.into_iter().collect()), Some(last))
}

impl Engine {
    pub(super) async fn end_transaction(&self, call: &Call, commit: bool) -> Result<Finished> {
        self.calls
            .lock()
            .expect("calls lock poisoned")
            .remove(&call.id);
        let mut transaction = call.transaction.lock().await;
        transaction.finished = true;
        // Whatever the handler made of the failed statement, the call must run again.
        if transaction.needs_restart {
            return Ok(Finished::RunAgainInTransaction);
        }
        let writes = std::mem::take(&mut *call.writes());
        let failure = transaction.failure.take().or(writes.failure);
        let commit = commit && failure.is_none();
        // The writes not sent yet go with COMMIT; a rollback just forgets them.
        let mut pending = if commit { writes.pending } else { Vec::new() };
        // A keyed mutation's answer commits with its writes (see `idempotency`).
        let record = match (call.idempotency_key.get(), call.result.get()) {
            (Some(key), Some(result)) if commit => Some((key.as_str(), result.as_str())),
            _ => None,
        };
        if transaction.connection.is_none() && is_one_insert(&pending) && record.is_none() {
            let write = pending.pop().expect("one insert");
            self.insert_alone(write).await?;
            self.committed(&writes.changes, writes.wrote_anything);
            return Ok(Finished::Done);
        }
        if transaction.connection.is_none() && !pending.is_empty() {
            let connection = self.connection_for(call.kind).await?;
            self.holds(call, &connection).await;
            transaction.connection = Some(connection);
        }
        let Some(connection) = transaction.connection.take() else {
            return failure.map_or(Ok(Finished::Done), Err);
        };
        if !transaction.began && pending.is_empty() {
            self.release(call, connection).await;
            return Ok(Finished::Done);
        }
        if self.abandoned(call).await {
            // Given up on (see `abandon`): closing the connection rolls the transaction back.
            self.release(call, connection).await;
            return failure.map_or(Ok(Finished::Done), Err);
        }
        let begin_sql = call.begin_sql();
        let begin = (!transaction.began).then_some(begin_sql.as_ref());
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        let (sent, ended) = match end_pipelined(&connection, begin, &pending, record, end).await {
            Ok(ended) => ended,
            Err(error) => {
                self.close(call, connection).await;
                return Err(error);
            }
        };
        // A failed write aborted the transaction, and COMMIT then rolled it back.
        let Some((recorded, ended)) = ended else {
            // Nothing was sent, not even COMMIT: the transaction is still open.
            self.close(call, connection).await;
            return sent.map(|()| Finished::Done);
        };
        let unanswered = |result: Option<&std::result::Result<u64, tokio_postgres::Error>>| matches!(result, Some(Err(error)) if error.as_db_error().is_none());
        if commit
            && (unanswered(recorded.as_ref())
                || matches!(&ended, Err(error) if error.as_db_error().is_none()))
        {
            // No answer to COMMIT: the connection's state is unknown, never reuse it, and the
            // mutation may or may not have committed.
            self.close(call, connection).await;
            return self
                .settle_unanswered(call, &writes.changes, writes.wrote_anything)
                .await;
        }
        match &ended {
            Err(error) if error.as_db_error().is_none() => self.close(call, connection).await,
            _ => self.release(call, connection).await,
        }
        sent?;
        if let Some(Err(error)) = &recorded {
            // The key's row exists: the mutation committed before, and this run rolled back.
            if is_repeat(error) {
                return Ok(Finished::AlreadyApplied);
            }
        }
        ended?;
        if let Some(recorded) = recorded {
            recorded?;
        }
        if commit {
            self.committed(&writes.changes, writes.wrote_anything);
        }
        match failure {
            Some(failure) if failure.is_retryable_conflict() => Err(failure),
            // The handler caught a database error and returned normally; what it meant to
            // write cannot be committed, so the caller gets the error instead.
            Some(failure) if !commit && call.kind == CallKind::Mutation => Err(failure),
            _ => Ok(Finished::Done),
        }
    }

    pub(super) async fn run(
        &self,
        call_id: u32,
        statement: &Statement,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let call = self.call(call_id)?;
        let params = statement.param_refs();
        check_parameters(params.len())?;
        if !call.single_statement {
            return self
                .run_with(&call, &statement.sql, &params, ConvoyError::from)
                .await;
        }
        let mut transaction = self.open(&call).await?;
        if transaction.statements > 0 {
            transaction.needs_restart = true;
            return Err(must_run_in_transaction());
        }
        transaction.statements += 1;
        // The connection goes back to the pool as soon as its one statement is answered.
        let connection = transaction.connection.take().expect("open() connects");
        let result = async {
            let prepared = connection.prepare_cached(&statement.sql).await?;
            connection.query(&prepared, &params).await
        }
        .await;
        self.release(&call, connection).await;
        result.map_err(|error| transaction.fail(error.into()))
    }

    /// Runs one statement on the call's transaction, pipelined behind `BEGIN` if this is the first
    /// and behind the writes not sent yet; a failure marks the transaction failed, described by
    /// `describe` when it is the statement's own.
    pub(super) async fn run_with(
        &self,
        call: &Call,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        describe: impl FnOnce(tokio_postgres::Error) -> ConvoyError,
    ) -> Result<Vec<tokio_postgres::Row>> {
        check_parameters(params.len())?;
        let mut transaction = self.open(call).await?;
        let begin_sql = call.begin_sql();
        let begin = (!transaction.began).then_some(begin_sql.as_ref());
        transaction.began = true;
        let pending = std::mem::take(&mut call.writes().pending);
        let connection = transaction.connection.as_ref().expect("open() connects");
        let work = async {
            let prepared = connection.prepare_cached(sql).await?;
            connection.query(&prepared, params).await
        };
        let result = match pipelined(connection, begin, &pending, work).await {
            (Ok(()), Some(rows)) => rows.map_err(describe),
            (sent, _) => sent.and(Err(ConvoyError::Internal("a write was not sent".into()))),
        };
        result.map_err(|error| transaction.fail(error))
    }

    pub(super) async fn connection_for(&self, kind: CallKind) -> Result<Object> {
        match kind {
            CallKind::Query => self.database.connection().await,
            CallKind::Mutation => self.database.writer().await,
        }
    }

    /// Locks the call's transaction, taking a pooled connection at its first use.
    pub(super) async fn open<'a>(
        &self,
        call: &'a Call,
    ) -> Result<tokio::sync::MutexGuard<'a, Transaction>> {
        let mut transaction = call.transaction.lock().await;
        if transaction.finished {
            return Err(ConvoyError::Internal(
                "ctx.db was used after its function returned (is an await missing?)".into(),
            ));
        }
        if let Some(failure) = &transaction.failure {
            return Err(failure.clone());
        }
        if transaction.connection.is_none() {
            let connection = self.connection_for(call.kind).await?;
            self.holds(call, &connection).await;
            transaction.connection = Some(connection);
        }
        Ok(transaction)
    }
}

/// How often, and how far apart, a mutation whose COMMIT went unanswered looks its key up.
const UNANSWERED_LOOKUPS: u32 = 5;
const UNANSWERED_LOOKUP_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Postgres's wire protocol counts a statement's parameters in 16 bits.
pub const MAX_PARAMETERS: usize = 65_535;

/// Refuses a statement of more parameters than Postgres takes, as the caller's mistake: sent, it
/// failed as if the database had gone away.
fn check_parameters(count: usize) -> Result<()> {
    if count > MAX_PARAMETERS {
        return Err(ConvoyError::InvalidArgs(format!(
            "the statement has {count} parameters; Postgres takes at most {MAX_PARAMETERS}"
        )));
    }
    Ok(())
}

impl Engine {
    /// A mutation that only inserts one document: its INSERT alone is a transaction (a
    /// mutation's connection makes it a serializable one), shared with the other such inserts of
    /// the moment. No BEGIN, no COMMIT.
    async fn insert_alone(&self, write: PendingWrite) -> Result<()> {
        let Change::Insert { data, created_at } = write.change else {
            unreachable!("is_one_insert")
        };
        let schema = self.schema();
        let rows_sql = plan_insert_rows(&schema, &write.table)?;
        let columns = plan_insert_columns(&schema, &write.table)?;
        let insert = LoneInsert {
            table: write.table,
            id: write.id,
            data,
            created_at,
            sql: write.sql,
            rows_sql,
            columns,
        };
        self.lone_inserts.insert(&self.database, insert).await
    }

    /// A mutation whose `COMMIT` went unanswered. With an idempotency key, the key's row says
    /// whether it committed: the caller gets the real outcome. Either way its writes are told to
    /// the live queries, which run again and show whatever the database holds: a commit that
    /// happened is never missed, and one that did not costs a re-run.
    async fn settle_unanswered(
        &self,
        call: &Call,
        changes: &[super::call::Changed],
        wrote_anything: bool,
    ) -> Result<Finished> {
        let Some(key) = call.idempotency_key.get() else {
            self.committed(changes, wrote_anything);
            return Err(ConvoyError::Unavailable(
                "the database connection broke as the mutation committed: it may or may not have applied (send an Idempotency-Key to have the server settle it)".into(),
            ));
        };
        // A COMMIT that reached Postgres may take a moment to land: look a few times.
        let mut readable = false;
        for _ in 0..UNANSWERED_LOOKUPS {
            match self.recorded_result(key).await {
                Ok(Some(_)) => {
                    self.committed(changes, wrote_anything);
                    return Ok(Finished::Done);
                }
                Ok(None) => readable = true,
                Err(_) => {}
            }
            tokio::time::sleep(UNANSWERED_LOOKUP_PAUSE).await;
        }
        self.committed(changes, wrote_anything);
        Err(ConvoyError::Unavailable(if readable {
            "the database connection broke before the mutation committed: it did not apply; safe to retry with the same Idempotency-Key".into()
        } else {
            "the database connection broke as the mutation committed, and whether it applied cannot be read yet; retry with the same Idempotency-Key, which applies it at most once".into()
        }))
    }
}
