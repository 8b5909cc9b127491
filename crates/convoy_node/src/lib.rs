//! The napi binding: converts between JavaScript and the Rust core, and holds no logic of its own.
//! Its only user is `src/server/native.ts`.

use std::sync::Arc;
use std::time::Duration;

use convoy_core::calls::{Dispatch, Dispatcher, FunctionTable};
use convoy_core::plan::QueryPlan;
use convoy_core::{ConvoyError, Database, Seen, DEFAULT_POOL_SIZE};
use convoy_server::ServerHandle;
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Result, Status};
use napi_derive::napi;

/// One tokio runtime for the process. Node already keeps a core busy, so by default tokio gets
/// one worker fewer than there are cores: on 2 cores the default runtime pushed p99 from ~15 ms
/// to ~250 ms at equal throughput (DESIGN.md). `CONVOY_WORKER_THREADS` overrides it.
#[napi_derive::module_init]
fn init() {
    let workers = std::env::var("CONVOY_WORKER_THREADS")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |cores| cores.get().saturating_sub(1))
                .max(1)
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("convoy")
        .enable_all()
        .build()
        .expect("the tokio runtime could not start");
    napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!(
            "convoy: this is a bug in Convoy's native core; please report it with the lines below."
        );
        default_hook(info);
    }));
}

/// napi rejects async calls with a generic status only, so the code travels in the message;
/// `src/server/native.ts` decodes it back into a `ConvoyError`.
fn to_js(error: ConvoyError) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("CONVOY_ERROR:{}", error.to_native_json()),
    )
}

/// A JSON value the JavaScript side sent as text.
fn json_value(text: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| {
        to_js(ConvoyError::InvalidArgs(format!(
            "{what} is not JSON: {error}"
        )))
    })
}

/// User code's answer: the result's JSON, or an error's `{code, message, data?}` JSON.
fn outcome_of(ok: bool, payload_json: String) -> convoy_core::Outcome {
    if ok {
        return Ok(payload_json);
    }
    Err(serde_json::from_str(&payload_json).map_or_else(
        |_| ConvoyError::Internal(payload_json),
        |value| ConvoyError::from_json(&value),
    ))
}

/// Starts the server log on stderr, once per process (later calls change nothing). `CONVOY_LOG`
/// (a tracing filter such as `info` or `warn,convoy::request=info`) overrides `default_filter`.
/// Lines are JSON when `json` is set, and text otherwise, coloured only at a terminal.
#[napi]
pub fn init_logging(default_filter: String, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

#[napi(object)]
pub struct ConnectOptions {
    pub database_url: String,
    /// `DATABASE_DIRECT_URL`: LISTEN and schema changes (SPEC §11).
    pub direct_database_url: Option<String>,
    pub pool_size: Option<u32>,
}

#[napi(object)]
pub struct ServerOptions {
    pub port: u32,
    pub host: Option<String>,
    pub max_body_bytes: Option<u32>,
    /// How long a function may run unless it sets its own timeout.
    pub call_timeout_ms: Option<u32>,
    /// Browser origins other than the server's own that may call it (`http://localhost:*`).
    pub allowed_origins: Option<Vec<String>>,
    /// Sync streams open at once.
    pub max_streams: Option<u32>,
    /// A sync stream that holds no subscription for this long is closed.
    pub stream_idle_timeout_ms: Option<u32>,
    /// Internal errors reach the client in full (development).
    pub dev: Option<bool>,
}

/// What a call is: JavaScript gets one of these two strings.
#[napi(string_enum = "lowercase")]
pub enum FunctionKind {
    Query,
    Mutation,
}

impl From<convoy_core::CallKind> for FunctionKind {
    fn from(kind: convoy_core::CallKind) -> Self {
        match kind {
            convoy_core::CallKind::Query => Self::Query,
            convoy_core::CallKind::Mutation => Self::Mutation,
        }
    }
}

#[napi(object)]
pub struct FunctionCall {
    pub call_id: u32,
    pub kind: FunctionKind,
    pub path: String,
    pub args_json: String,
    pub headers_json: String,
}

struct NodeDispatcher {
    dispatch: ThreadsafeFunction<FunctionCall, Unknown<'static>, FunctionCall, Status, false>,
}

impl Dispatcher for NodeDispatcher {
    fn dispatch(&self, call: Dispatch) -> convoy_core::Result<()> {
        let status = self.dispatch.call(
            FunctionCall {
                call_id: call.call_id,
                kind: call.kind.into(),
                path: call.path,
                args_json: call.args_json,
                headers_json: call.headers_json,
            },
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        match status {
            Status::Ok => Ok(()),
            status => Err(ConvoyError::Unavailable(format!(
                "the JavaScript runtime is not taking calls ({status})"
            ))),
        }
    }
}

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
        // Warnings at least, unless the caller started the log already.
        init_logging("warn".into(), false);
        let pool_size = options
            .pool_size
            .map_or(DEFAULT_POOL_SIZE, |size| size as usize);
        let database = Database::connect_with(convoy_core::ConnectOptions {
            url: options.database_url,
            direct_url: options.direct_database_url.filter(|url| !url.is_empty()),
            pool_size,
        })
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

    /// The document with this id as JSON, or `"null"`. An empty `table` means "any table".
    /// Installs the trigger that reports writes made outside Convoy (`convoy dev` does).
    #[napi]
    /// Returns the statements it ran.
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
        let defaults = convoy_server::ServerOptions::default();
        let options = convoy_server::ServerOptions {
            host: options.host.unwrap_or(defaults.host.clone()),
            port: u16::try_from(options.port).map_err(|_| {
                to_js(ConvoyError::InvalidArgs(format!(
                    "port {} is out of range",
                    options.port
                )))
            })?,
            max_body_bytes: options
                .max_body_bytes
                .map_or(defaults.max_body_bytes, |bytes| bytes as usize),
            call_timeout: options.call_timeout_ms.map_or(defaults.call_timeout, |ms| {
                Duration::from_millis(u64::from(ms))
            }),
            allowed_origins: convoy_server::AllowedOrigins::new(
                options.allowed_origins.unwrap_or_default(),
            ),
            max_streams: options
                .max_streams
                .map_or(defaults.max_streams, |streams| streams as usize),
            stream_idle_timeout: options
                .stream_idle_timeout_ms
                .map_or(defaults.stream_idle_timeout, |ms| {
                    Duration::from_millis(u64::from(ms))
                }),
            dev: options.dev.unwrap_or(defaults.dev),
            ..defaults
        };
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
