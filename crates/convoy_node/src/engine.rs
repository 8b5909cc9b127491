//! The `Engine` class JavaScript holds: the core's engine, its functions, its server.

use std::sync::Arc;

use convoy_core::calls::FunctionTable;
use convoy_core::plan::QueryPlan;
use convoy_core::{ConvoyError, Database, Seen};
use convoy_server::ServerHandle;
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Result, Status};
use napi_derive::napi;

use crate::connect::ConnectOptions;
use crate::dispatch::{FunctionCall, NodeDispatcher};
use crate::errors::{json_value, outcome_of, to_js};
use crate::logging::init_logging;
use crate::server_options::ServerOptions;

#[napi]
pub struct Engine {
    core: Arc<convoy_core::Engine>,
    functions: Arc<FunctionTable>,
    server: tokio::sync::Mutex<Option<ServerHandle>>,
}

#[napi]
impl Engine {
    #[napi(factory)]
    pub async fn connect(options: ConnectOptions) -> Result<Engine> {
        // Warnings at least, unless the caller started the log already. The pool's own warning
        // of a failed connection says less than Convoy's (`convoy::database`) of the same one.
        init_logging("warn,deadpool.postgres=error".into(), false);
        let database = Database::connect_with(options.into())
            .await
            .map_err(to_js)?;
        Ok(Engine {
            core: Arc::new(convoy_core::Engine::new(database)),
            functions: Arc::new(FunctionTable::default()),
            server: tokio::sync::Mutex::new(None),
        })
    }

    /// Creates what the schema needs; returns the report as JSON.
    #[napi]
    pub async fn sync_schema(&self, schema_json: String, dry_run: bool) -> Result<String> {
        let schema = convoy_core::Schema::from_json(&schema_json).map_err(to_js)?;
        let report = self
            .core
            .sync_schema(&schema, dry_run)
            .await
            .map_err(to_js)?;
        Ok(serde_json::to_string(&report).expect("a report serializes"))
    }

    #[napi]
    pub async fn set_schema(&self, schema_json: String) -> Result<()> {
        let schema = convoy_core::Schema::from_json(&schema_json).map_err(to_js)?;
        self.core.set_schema(schema).await.map_err(to_js)?;
        Ok(())
    }

    /// Replaces the app's functions: `{"functions": [{"path", "kind", "timeoutMs"?}],
    /// "authenticates": bool}` (`authenticates`: streams run `createContext` when they open).
    #[napi]
    pub fn set_functions(&self, functions_json: String) -> Result<()> {
        self.functions
            .replace_from_json(&functions_json)
            .map(|_| ())
            .map_err(|message| to_js(ConvoyError::InvalidArgs(message)))
    }

    /// What a graduation of `table` runs, step by step, as JSON (`convoy graduate --dry-run`).
    #[napi]
    pub fn graduation_plan(&self, table: String) -> Result<String> {
        let plan = self.core.graduation_plan(&table).map_err(to_js)?;
        Ok(serde_json::to_string(&plan).expect("a plan serializes"))
    }

    /// Runs (or resumes) the graduation of `table` up to serving from its columns; `optionsJson`
    /// is `{batchMillis?, maxRowsPerSecond?}`. Returns the status as JSON.
    #[napi]
    pub async fn graduate(&self, table: String, options_json: String) -> Result<String> {
        let options: convoy_core::graduate::BackfillOptions = serde_json::from_str(&options_json)
            .map_err(|error| {
            to_js(ConvoyError::InvalidArgs(format!(
                "graduation options: {error}"
            )))
        })?;
        status_json(self.core.graduate(&table, &options).await)
    }

    /// Where the graduation of `table` is, as JSON.
    #[napi]
    pub async fn graduation_status(&self, table: String) -> Result<String> {
        status_json(self.core.graduation_status(&table).await)
    }

    /// `convoy graduate --complete`: the columns become the truth.
    #[napi]
    pub async fn complete_graduation(&self, table: String) -> Result<String> {
        status_json(self.core.complete_graduation(&table).await)
    }

    /// `convoy graduate --abort`: the table as it was before.
    #[napi]
    pub async fn abort_graduation(&self, table: String) -> Result<String> {
        status_json(self.core.abort_graduation(&table).await)
    }

    /// Read-only SQL of Convoy's own tools (the conformance report, the dashboard), outside any
    /// function call: `statementsJson` is `[[sql, [values…]], …]`, run in one snapshot; returns
    /// each statement's rows, as a JSON array of arrays.
    #[napi]
    pub async fn read_for_tool(&self, statements_json: String) -> Result<String> {
        let statements: Vec<(String, Vec<serde_json::Value>)> =
            serde_json::from_str(&statements_json).map_err(|error| {
                to_js(ConvoyError::InvalidArgs(format!(
                    "statements must be [[sql, [values]], ...]: {error}"
                )))
            })?;
        self.core.read_for_tool(&statements).await.map_err(to_js)
    }

    /// Installs the trigger that reports writes made outside Convoy (`convoy dev` and
    /// `CONVOY_CHANGE_TRIGGER=1 convoy migrate` do); returns the statements it ran.
    #[napi]
    pub async fn install_change_trigger(&self) -> Result<Vec<String>> {
        self.core.install_change_trigger().await.map_err(to_js)
    }

    /// The app's tables that lack the change trigger (the production server checks, never installs).
    #[napi]
    pub async fn tables_without_change_trigger(&self) -> Result<Vec<String>> {
        self.core
            .tables_without_change_trigger()
            .await
            .map_err(to_js)
    }

    /// The document with this id as JSON, or `"null"`. An empty `table` means "any table".
    #[napi]
    pub async fn db_get(&self, call_id: u32, table: String, id: String) -> Result<String> {
        let table = (!table.is_empty()).then_some(table.as_str());
        let found = self.core.get(call_id, table, &id).await.map_err(to_js)?;
        Ok(found.unwrap_or_else(|| "null".to_owned()))
    }

    /// `{"table", "document"}` for the document with this id, in whichever table it is; `"null"`
    /// when there is none.
    #[napi]
    pub async fn db_locate(&self, call_id: u32, id: String) -> Result<String> {
        let found = self.core.locate(call_id, None, &id).await.map_err(to_js)?;
        Ok(found.map_or_else(
            || "null".to_owned(),
            |(table, document)| located_json(&table, &document),
        ))
    }

    /// What a mutation knows of a document without asking Postgres: `{"table", "document"}` as
    /// `db_locate` answers, `"null"` for one it deleted, `""` for one it has not seen.
    #[napi]
    pub fn db_seen(&self, call_id: u32, id: String) -> Result<String> {
        Ok(match self.core.seen(call_id, &id).map_err(to_js)? {
            Seen::Unknown => String::new(),
            Seen::Deleted => "null".to_owned(),
            Seen::Document { table, json } => located_json(&table, &json),
        })
    }

    /// Inserts into any table; an unmanaged table's row is written at once, for its primary key.
    #[napi]
    pub async fn db_insert(
        &self,
        call_id: u32,
        table: String,
        document_json: String,
    ) -> Result<String> {
        self.core
            .insert(call_id, &table, &document_json)
            .await
            .map_err(to_js)
    }

    /// Queues an insert into a managed table and returns the new id (writes travel with the
    /// call's next statement or its COMMIT).
    #[napi]
    pub fn db_queue_insert(
        &self,
        call_id: u32,
        table: String,
        document_json: String,
    ) -> Result<String> {
        self.core
            .queue_insert(call_id, &table, &document_json)
            .map_err(to_js)
    }

    /// Queues a replace of a document the call has seen (`db_seen` or `db_locate` first).
    #[napi]
    pub fn db_queue_replace(
        &self,
        call_id: u32,
        table: String,
        id: String,
        document_json: String,
    ) -> Result<()> {
        self.core
            .queue_replace(call_id, &table, &id, &document_json)
            .map_err(to_js)
    }

    /// Queues a delete of a document the call has seen.
    #[napi]
    pub fn db_queue_delete(&self, call_id: u32, table: String, id: String) -> Result<()> {
        self.core.queue_delete(call_id, &table, &id).map_err(to_js)
    }

    /// Writes columns of an unmanaged table's row, named by its primary key as JSON: those of
    /// `document_json`, or with `every_field` all the schema's fields.
    #[napi]
    pub async fn db_update_unmanaged(
        &self,
        call_id: u32,
        table: String,
        key_json: String,
        document_json: String,
        every_field: bool,
    ) -> Result<()> {
        let key = json_value(&key_json, "the primary key")?;
        self.core
            .update_unmanaged(call_id, &table, &key, &document_json, every_field)
            .await
            .map_err(to_js)
    }

    /// Deletes an unmanaged table's row, named by its primary key as JSON.
    #[napi]
    pub async fn db_delete_unmanaged(
        &self,
        call_id: u32,
        table: String,
        key_json: String,
    ) -> Result<()> {
        let key = json_value(&key_json, "the primary key")?;
        self.core
            .delete_unmanaged(call_id, &table, &key)
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn db_query(&self, call_id: u32, plan_json: String) -> Result<String> {
        let plan = QueryPlan::from_json(&plan_json).map_err(to_js)?;
        self.core.query(call_id, &plan).await.map_err(to_js)
    }

    /// One page of a query: `{"page", "isDone", "continueCursor"}` as JSON.
    #[napi]
    pub async fn db_paginate(
        &self,
        call_id: u32,
        plan_json: String,
        cursor: Option<String>,
        num_items: u32,
    ) -> Result<String> {
        let plan = QueryPlan::from_json(&plan_json).map_err(to_js)?;
        self.core
            .paginate(call_id, &plan, cursor.as_deref(), num_items)
            .await
            .map_err(to_js)
    }

    /// The app's own SQL with `$1…$n` bound to the JSON array `params_json`; rows as JSON.
    #[napi]
    pub async fn db_raw(&self, call_id: u32, sql: String, params_json: String) -> Result<String> {
        let params: Vec<serde_json::Value> =
            serde_json::from_str(&params_json).map_err(|error| {
                to_js(ConvoyError::InvalidArgs(format!(
                    "raw SQL parameters must be a JSON array: {error}"
                )))
            })?;
        self.core.raw(call_id, &sql, &params).await.map_err(to_js)
    }

    /// Starts the HTTP server; resolves with the port it listens on.
    #[napi]
    pub async fn start_server(
        &self,
        options: ServerOptions,
        dispatch: ThreadsafeFunction<FunctionCall, Unknown<'static>, FunctionCall, Status, false>,
    ) -> Result<u32> {
        let mut server = self.server.lock().await;
        if server.is_some() {
            return Err(to_js(ConvoyError::Internal(
                "the server is already running".into(),
            )));
        }
        let options = convoy_server::ServerOptions::try_from(options)?;
        let handle = convoy_server::start(
            self.core.clone(),
            Arc::new(NodeDispatcher { dispatch }),
            self.functions.clone(),
            options,
        )
        .await
        .map_err(to_js)?;
        let port = u32::from(handle.address.port());
        *server = Some(handle);
        Ok(port)
    }

    /// The answer of user code for a call: its result as JSON text, or a `{code, message, data?}`
    /// error as JSON text.
    #[napi]
    pub fn respond(&self, call_id: u32, ok: bool, payload_json: String) {
        self.core.respond(call_id, outcome_of(ok, payload_json));
    }

    /// Like `respond`, then resolves with whether the call committed (for `ctx.afterCommit`).
    #[napi]
    pub async fn respond_awaiting_commit(
        &self,
        call_id: u32,
        ok: bool,
        payload_json: String,
    ) -> bool {
        self.core
            .respond_awaiting_commit(call_id, outcome_of(ok, payload_json))
            .await
    }

    /// Stops the HTTP server and releases the dispatch function, so Node can exit.
    #[napi]
    pub async fn stop_server(&self) -> Result<()> {
        if let Some(handle) = self.server.lock().await.take() {
            handle.stop().await;
        }
        Ok(())
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.stop_server().await?;
        self.core.database().close();
        Ok(())
    }
}

/// `{"table", "document"}` with the document's JSON text as it is.
fn located_json(table: &str, document: &str) -> String {
    format!(
        "{{\"table\":{},\"document\":{document}}}",
        serde_json::Value::from(table)
    )
}

/// A graduation's status as JSON, or its failure as the error JavaScript sees.
fn status_json(
    status: convoy_core::Result<convoy_core::graduate::GraduationStatus>,
) -> Result<String> {
    Ok(serde_json::to_string(&status.map_err(to_js)?).expect("a status serializes"))
}
