//! The engine: the pool, the current schema, and the calls in flight.
//!
//! A call is one run of a user function. Its `ctx.db` operations arrive one by one from
//! JavaScript, tagged with the call's id, and all run on the call's own connection inside one
//! transaction. The connection is taken at the first operation (a handler that never touches the
//! database never holds one) and `BEGIN` is pipelined with that first statement, so a transaction
//! costs no extra round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use deadpool_postgres::Object;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::database::Database;
use crate::document::{append_document, creation_time_of, documents_json, JsonbParam};
use crate::error::{ConvoyError, Result};
use crate::plan::{
    plan_delete, plan_get, plan_insert, plan_query, plan_replace, QueryPlan, Statement,
};
use crate::schema::{sync_schema, Schema, SyncReport, Table};
use crate::sql::quote_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Query,
    Mutation,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
        }
    }

    fn begin_sql(self) -> &'static str {
        match self {
            // One snapshot for the whole query, and a promise to Postgres that nothing is written.
            Self::Query => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            // Serializable: a read-modify-write can never lose an update; conflicts re-run.
            Self::Mutation => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// What the JavaScript side answered for a call: the result as JSON text, or an error.
pub type Outcome = Result<String>;

pub struct Call {
    pub id: u32,
    pub kind: CallKind,
    /// A query that has so far issued one statement per run runs without a transaction: one
    /// statement is one snapshot already, and BEGIN and COMMIT would cost Postgres two more.
    /// Its second statement would see another snapshot, so it restarts the call instead.
    single_statement: bool,
    transaction: tokio::sync::Mutex<Transaction>,
    responder: Mutex<Option<oneshot::Sender<Outcome>>>,
    /// Told whether the call committed, when someone asked (`ctx.afterCommit`).
    committed: Mutex<Option<oneshot::Sender<bool>>>,
}

#[derive(Default)]
struct Transaction {
    connection: Option<Object>,
    began: bool,
    finished: bool,
    /// Statements run so far (counted in single-statement mode).
    statements: u32,
    /// A single-statement call issued a second statement: run it again in a transaction.
    needs_restart: bool,
    /// The first statement that failed: Postgres has aborted the transaction, so every later
    /// statement fails the same way and COMMIT is impossible.
    failure: Option<ConvoyError>,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // A call abandoned mid-transaction (its HTTP client went away, a panic) must not hand an
        // open transaction back to the pool: close that connection instead.
        if let Some(connection) = self.connection.take() {
            if self.began && !self.finished {
                drop(Object::take(connection));
            }
        }
    }
}

pub struct Engine {
    database: Database,
    schema: RwLock<Arc<Schema>>,
    calls: Mutex<HashMap<u32, Arc<Call>>>,
    next_call_id: AtomicU32,
}

impl Engine {
    pub fn new(database: Database) -> Self {
        Self {
            database,
            schema: RwLock::new(Arc::new(Schema::default())),
            calls: Mutex::new(HashMap::new()),
            next_call_id: AtomicU32::new(1),
        }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.read().expect("schema lock poisoned").clone()
    }

    /// Makes `schema` the one queries are planned against, after reading what the database says
    /// of its unmanaged tables.
    pub async fn set_schema(&self, mut schema: Schema) -> Result<()> {
        crate::schema::introspect_unmanaged(&self.database, &mut schema).await?;
        *self.schema.write().expect("schema lock poisoned") = Arc::new(schema);
        Ok(())
    }

    pub async fn sync_schema(&self, schema: &Schema, dry_run: bool) -> Result<SyncReport> {
        sync_schema(&self.database, schema, dry_run).await
    }

    /// Registers a new call; its outcome arrives on the returned receiver (see [`Engine::respond`]).
    /// Mutations always run in a transaction; a query runs in one when `transactional`.
    pub fn begin_call(
        &self,
        kind: CallKind,
        transactional: bool,
    ) -> (Arc<Call>, oneshot::Receiver<Outcome>) {
        let (sender, receiver) = oneshot::channel();
        let mut calls = self.calls.lock().expect("calls lock poisoned");
        // Ids wrap after four billion calls; skip any still in flight.
        let id = loop {
            let id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !calls.contains_key(&id) {
                break id;
            }
        };
        let call = Arc::new(Call {
            id,
            kind,
            single_statement: kind == CallKind::Query && !transactional,
            transaction: tokio::sync::Mutex::new(Transaction::default()),
            responder: Mutex::new(Some(sender)),
            committed: Mutex::new(None),
        });
        calls.insert(id, call.clone());
        (call, receiver)
    }

    /// Delivers the JavaScript side's answer for a call. An answer for a call that has already
    /// ended (timed out, or answered twice) is dropped.
    pub fn respond(&self, call_id: u32, outcome: Outcome) {
        let Ok(call) = self.call(call_id) else { return };
        let sender = call
            .responder
            .lock()
            .expect("responder lock poisoned")
            .take();
        if let Some(sender) = sender {
            // The receiver is gone only if the request was abandoned; nothing is left to tell.
            let _ = sender.send(outcome);
        }
    }

    /// Delivers the answer like [`Engine::respond`], then resolves with whether the call's
    /// transaction committed: `false` for a rollback and for an attempt that conflicted and runs
    /// again. The watch is set up before the answer is sent, so the commit cannot slip past it.
    pub async fn respond_awaiting_commit(&self, call_id: u32, outcome: Outcome) -> bool {
        let Ok(call) = self.call(call_id) else {
            return false;
        };
        let (sender, receiver) = oneshot::channel();
        *call.committed.lock().expect("commit watch lock poisoned") = Some(sender);
        self.respond(call_id, outcome);
        receiver.await.unwrap_or(false)
    }

    /// Ends a call: commits (when `commit` and nothing failed) or rolls back, and returns the
    /// connection to the pool. A conflict — in a statement or at COMMIT — comes back as
    /// `ConvoyError::Conflict` so that the caller can run the function again.
    pub async fn finish_call(&self, call: &Call, commit: bool) -> Result<()> {
        let result = self.end_transaction(call, commit).await;
        let watcher = call
            .committed
            .lock()
            .expect("commit watch lock poisoned")
            .take();
        if let Some(watcher) = watcher {
            let _ = watcher.send(commit && result.is_ok());
        }
        result
    }

    async fn end_transaction(&self, call: &Call, commit: bool) -> Result<()> {
        self.calls
            .lock()
            .expect("calls lock poisoned")
            .remove(&call.id);
        let mut transaction = call.transaction.lock().await;
        transaction.finished = true;
        // Whatever the handler made of the failed statement, the call must run again.
        if transaction.needs_restart {
            return Err(ConvoyError::Restart);
        }
        let failure = transaction.failure.take();
        let Some(connection) = transaction.connection.take() else {
            return failure.map_or(Ok(()), Err);
        };
        if !transaction.began {
            return Ok(());
        }
        let commit = commit && failure.is_none();
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        if let Err(error) = connection.batch_execute(end).await {
            // The connection's state is unknown now: never reuse it.
            drop(Object::take(connection));
            return Err(error.into());
        }
        match failure {
            Some(failure) if failure.is_retryable_conflict() => Err(failure),
            // The handler caught a database error and returned normally; what it meant to
            // write cannot be committed, so the caller gets the error instead.
            Some(failure) if !commit && call.kind == CallKind::Mutation => Err(failure),
            _ => Ok(()),
        }
    }

    fn call(&self, call_id: u32) -> Result<Arc<Call>> {
        self.calls
            .lock()
            .expect("calls lock poisoned")
            .get(&call_id)
            .cloned()
            .ok_or_else(|| {
                ConvoyError::Internal(
                    "ctx.db was used after its function returned (is an await missing?)".into(),
                )
            })
    }

    /// The document with this id as JSON text, or `"null"`; `table: None` looks in every table.
    pub async fn get(&self, call_id: u32, table: Option<&str>, id: &str) -> Result<String> {
        Ok(self
            .locate(call_id, table, id)
            .await?
            .map_or_else(|| "null".to_owned(), |(_, document)| document))
    }

    /// The document with this id and the table it is in.
    pub async fn locate(
        &self,
        call_id: u32,
        table: Option<&str>,
        id: &str,
    ) -> Result<Option<(String, String)>> {
        let Ok(id) = Uuid::parse_str(id) else {
            // Not an id at all: no document has it.
            return Ok(None);
        };
        let statement = plan_get(&self.schema(), table, id)?;
        let rows = self.run(call_id, &statement).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let table: String = row
            .try_get(0)
            .map_err(|error| ConvoyError::Internal(error.to_string()))?;
        let mut document = String::new();
        append_document(&mut document, row, 1)?;
        Ok(Some((table, document)))
    }

    pub async fn query(&self, call_id: u32, plan_json: &str) -> Result<String> {
        let plan: QueryPlan = serde_json::from_str(plan_json)
            .map_err(|error| ConvoyError::InvalidArgs(format!("invalid query: {error}")))?;
        let statement = plan_query(&self.schema(), &plan)?;
        let rows = self.run(call_id, &statement).await?;
        match statement.shape {
            crate::plan::RowShape::Document => documents_json(&rows),
            crate::plan::RowShape::JsonText => crate::document::json_texts(&rows),
        }
    }

    /// One page of a query: `{"page", "isDone", "continueCursor"}`.
    pub async fn paginate(
        &self,
        call_id: u32,
        plan_json: &str,
        cursor: Option<&str>,
        num_items: u32,
    ) -> Result<String> {
        let plan: QueryPlan = serde_json::from_str(plan_json)
            .map_err(|error| ConvoyError::InvalidArgs(format!("invalid query: {error}")))?;
        let (statement, query) =
            crate::page::plan_page(&self.schema(), &plan, plan_json, cursor, num_items)?;
        let rows = self.run(call_id, &statement).await?;
        crate::page::page_json(
            &rows,
            num_items,
            &crate::plan::order_key(&self.schema(), &plan)?,
            &query,
            cursor,
        )
    }

    /// Inserts a document (JSON object text, already validated against the table's schema in
    /// JavaScript) and returns its new UUIDv7 id.
    pub async fn insert(&self, call_id: u32, table: &str, document_json: &str) -> Result<String> {
        if !document_json.trim_start().starts_with('{') {
            return Err(ConvoyError::InvalidArgs(
                "a document must be a JSON object".into(),
            ));
        }
        let schema = self.schema();
        let definition = schema.table(table)?;
        if !definition.managed {
            return self
                .insert_unmanaged(call_id, definition, document_json)
                .await;
        }
        let sql = plan_insert(&schema, table)?;
        let call = self.writing_call(call_id)?;
        let id = Uuid::now_v7();
        let created_at = creation_time_of(&id);
        let document = JsonbParam(document_json);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&id, &document, &created_at];
        self.run_with(&call, &sql, &params, ConvoyError::from)
            .await?;
        Ok(id.hyphenated().to_string())
    }

    /// An insert into an existing relational table: only the given columns, so the table's own
    /// defaults (serials, `now()`) fill the rest. Returns the primary key as text, or "" without one.
    async fn insert_unmanaged(
        &self,
        call_id: u32,
        table: &Table,
        document_json: &str,
    ) -> Result<String> {
        let document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(document_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
            })?;
        let mut columns = Vec::with_capacity(document.len());
        for field in document.keys() {
            if !table.columns.iter().any(|column| &column.name == field) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {field:?}",
                    table.name
                )));
            }
            columns.push(quote_ident(field)?);
        }
        let relation = quote_ident(&table.name)?;
        let returning = match table.primary_key.as_slice() {
            [key] => format!("{}::text", quote_ident(key)?),
            _ => "NULL::text".to_owned(),
        };
        let list = columns.join(", ");
        let call = self.writing_call(call_id)?;
        let document = JsonbParam(document_json);
        let rows = if columns.is_empty() {
            let sql = format!("INSERT INTO {relation} DEFAULT VALUES RETURNING {returning}");
            self.run_with(&call, &sql, &[], ConvoyError::from).await?
        } else {
            let sql = format!(
                "INSERT INTO {relation} ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $1::jsonb) RETURNING {returning}"
            );
            self.run_with(&call, &sql, &[&document], ConvoyError::from)
                .await?
        };
        let id: Option<String> = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(id.unwrap_or_default())
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
        if !document_json.trim_start().starts_with('{') {
            return Err(ConvoyError::InvalidArgs(
                "a document must be a JSON object".into(),
            ));
        }
        let sql = plan_replace(&self.schema(), table)?;
        let id = parse_id(id)?;
        let call = self.writing_call(call_id)?;
        let document = JsonbParam(document_json);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, &document];
        let updated = self
            .run_with(&call, &sql, &params, ConvoyError::from)
            .await?;
        if updated.is_empty() {
            return Err(ConvoyError::NotFound(format!(
                "there is no document {id} in {table}"
            )));
        }
        Ok(())
    }

    /// Deletes a document. A missing document is `NOT_FOUND`.
    pub async fn delete(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        let sql = plan_delete(&self.schema(), table)?;
        let id = parse_id(id)?;
        let call = self.writing_call(call_id)?;
        if self
            .run_with(&call, &sql, &[&id], ConvoyError::from)
            .await?
            .is_empty()
        {
            return Err(ConvoyError::NotFound(format!(
                "there is no document {id} in {table}"
            )));
        }
        Ok(())
    }

    fn writing_call(&self, call_id: u32) -> Result<Arc<Call>> {
        let call = self.call(call_id)?;
        if call.kind != CallKind::Mutation {
            return Err(ConvoyError::Internal(
                "queries cannot write; use a mutation".into(),
            ));
        }
        Ok(call)
    }

    /// Runs the app's own SQL; `params_json` is a JSON array bound to `$1…$n`.
    pub async fn raw(&self, call_id: u32, sql: &str, params_json: &str) -> Result<String> {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(params_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!(
                    "raw SQL parameters must be a JSON array: {error}"
                ))
            })?;
        let call = self.call(call_id)?;
        if call.single_statement {
            // In a query, raw SQL runs only inside the READ ONLY transaction: without one, a
            // write in it would commit on its own.
            call.transaction.lock().await.needs_restart = true;
            return Err(ConvoyError::Restart);
        }
        let params: Vec<crate::raw::JsonParam> = values.iter().map(crate::raw::JsonParam).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let schema = self.schema();
        let rows = self
            .run_with(&call, sql, &refs, |error| {
                crate::raw::explain_failure(error, &schema)
            })
            .await?;
        crate::raw::rows_json(&rows)
    }

    async fn run(&self, call_id: u32, statement: &Statement) -> Result<Vec<tokio_postgres::Row>> {
        let call = self.call(call_id)?;
        let params = statement.param_refs();
        if !call.single_statement {
            return self
                .run_with(&call, &statement.sql, &params, ConvoyError::from)
                .await;
        }
        let mut transaction = self.open(&call).await?;
        if transaction.statements > 0 {
            transaction.needs_restart = true;
            return Err(ConvoyError::Restart);
        }
        transaction.statements += 1;
        // The connection goes back to the pool as soon as its one statement is answered.
        let connection = transaction.connection.take().expect("open() connects");
        let result = async {
            let prepared = connection.prepare_cached(&statement.sql).await?;
            connection.query(&prepared, &params).await
        }
        .await;
        result.map_err(|error| transaction.fail(error.into()))
    }

    /// Runs one statement on the call's transaction, beginning it (pipelined) if this is the
    /// first; a failure marks the transaction failed, described by `describe`.
    async fn run_with(
        &self,
        call: &Call,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        describe: impl FnOnce(tokio_postgres::Error) -> ConvoyError,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let mut transaction = self.open(call).await?;
        let begin = (!transaction.began).then(|| call.kind.begin_sql());
        transaction.began = true;
        let connection = transaction.connection.as_ref().expect("open() connects");
        let work = async {
            let prepared = connection.prepare_cached(sql).await?;
            connection.query(&prepared, params).await
        };
        let result = match begin {
            Some(begin) => {
                let (began, rows) = tokio::join!(connection.batch_execute(begin), work);
                began.and(rows)
            }
            None => work.await,
        };
        result.map_err(|error| transaction.fail(describe(error)))
    }

    /// Locks the call's transaction, taking a pooled connection at its first use.
    async fn open<'a>(&self, call: &'a Call) -> Result<tokio::sync::MutexGuard<'a, Transaction>> {
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
            transaction.connection = Some(self.database.connection().await?);
        }
        Ok(transaction)
    }
}

impl Transaction {
    fn fail(&mut self, error: ConvoyError) -> ConvoyError {
        if self.failure.is_none() {
            self.failure = Some(error.clone());
        }
        error
    }
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ConvoyError::InvalidArgs(format!("{id:?} is not a document id")))
}
