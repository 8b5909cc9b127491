//! The connection pools: deadpool over tokio-postgres, every statement prepared once per
//! connection (`prepare_cached`), every connection made through [`Endpoint`] (TLS, errors).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Notification};

use crate::connect::{pooler, Endpoint};
use crate::error::{ConvoyError, Result};

/// A pool of this size served the most requests per second with the lowest latency on a
/// 2-core machine (DESIGN.md); more connections only made every latency worse.
pub const DEFAULT_POOL_SIZE: usize = 8;

pub struct PoolStatus {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
    pub max_size: usize,
}

/// Where Convoy connects, as the app's environment says.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `DATABASE_URL`: queries and mutations.
    pub url: String,
    /// `DATABASE_DIRECT_URL`: LISTEN and schema changes, which a transaction-mode pooler cannot
    /// carry (SPEC §11). Without it, `url` serves those too.
    pub direct_url: Option<String>,
    pub pool_size: usize,
}

/// Three pools: queries (and everything else), mutations, and schema changes. A mutation's
/// connection starts every transaction serializable and marks what it writes as Convoy's
/// (`convoy.writer`, which keeps the change trigger quiet), both set once when it connects, so a
/// mutation that only inserts one document sends just its `INSERT`: one statement, its own
/// serializable transaction.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    writers: Pool,
    /// Schema sync's connections (it holds a session advisory lock): on the direct URL.
    schema: Pool,
    /// The endpoint the query and mutation pools connect to, for explaining their failures.
    serving: Endpoint,
    /// The endpoint of the LISTEN connection and the schema pool.
    direct: Endpoint,
    /// The `statement_timeout` of the query and mutation pools' connections, in ms (0: none).
    statement_timeout_ms: Arc<AtomicU64>,
}

/// What a mutation's connection is set up with. Sent as statements after connecting rather
/// than as startup `options`, which `PgBouncer` refuses ("unsupported startup parameter").
const WRITER_SETUP: &str =
    "SET default_transaction_isolation = 'serializable'; SET convoy.writer = 'convoy'";

impl Database {
    /// Connects and checks that the database answers, so a wrong URL fails here, not at the
    /// first request.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        Self::connect_with(ConnectOptions {
            url: url.to_owned(),
            direct_url: None,
            pool_size,
        })
        .await
    }

    /// Connects as `options` say: the first connection is made here, with an error that names
    /// the step that failed; a transaction-mode pooler on `url` is found out here too.
    pub async fn connect_with(options: ConnectOptions) -> Result<Self> {
        let mut main = Endpoint::parse(&options.url, "DATABASE_URL")?;
        let mut direct = match &options.direct_url {
            Some(url) => Some(Endpoint::parse(url, "DATABASE_DIRECT_URL")?),
            None => None,
        };
        let first = main.first_connection().await?;
        let second = main.connect().await?;
        let pooled = pooler::is_transaction_pooler(&first, &second).await?;
        drop((first, second));
        if let Some(direct) = &mut direct {
            drop(direct.first_connection().await?);
        }
        let serving = match (pooled, &direct) {
            (false, _) => main.clone(),
            (true, Some(direct)) => {
                // Convoy pools its own connections and keeps prepared statements and settings on
                // each, which a transaction-mode pooler would hand to other clients mid-way.
                tracing::warn!(
                    "DATABASE_URL leads to a transaction-mode pooler; Convoy pools its own \
                     connections and serves from DATABASE_DIRECT_URL"
                );
                direct.clone()
            }
            (true, None) => return Err(ConvoyError::Unavailable(pooler_without_direct_url())),
        };
        let direct = direct.unwrap_or_else(|| main.clone());
        let size = options.pool_size.max(1);
        let statement_timeout_ms = Arc::new(AtomicU64::new(0));
        let database = Self {
            pool: build_pool(
                &serving,
                size,
                Some(Setup::serving(&statement_timeout_ms, "")),
            )?,
            writers: build_pool(
                &serving,
                size,
                Some(Setup::serving(&statement_timeout_ms, WRITER_SETUP)),
            )?,
            schema: build_pool(&direct, 2, None)?,
            serving,
            direct,
            statement_timeout_ms,
        };
        database.ping().await?;
        Ok(database)
    }

    /// Bounds every statement of the query and mutation pools by `timeout` (the server's call
    /// timeout), from their next connection on: connections made before are closed.
    pub fn limit_statements(&self, timeout: Duration) {
        let millis = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.statement_timeout_ms.store(millis, Ordering::SeqCst);
        self.pool.retain(|_, _| false);
        self.writers.retain(|_, _| false);
    }

    pub async fn connection(&self) -> Result<Object> {
        checkout(&self.pool, &self.serving).await
    }

    /// A connection for a mutation (see [`Database`]).
    pub async fn writer(&self) -> Result<Object> {
        checkout(&self.writers, &self.serving).await
    }

    /// A connection for schema changes: on `DATABASE_DIRECT_URL` when it is set.
    pub async fn schema_connection(&self) -> Result<Object> {
        checkout(&self.schema, &self.direct).await
    }

    /// `SELECT 1` on a pooled connection: what `/health` answers with.
    pub async fn ping(&self) -> Result<()> {
        let client = self.connection().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Both pools' sizes, idle connections and waiting callers together, for `/metrics`.
    pub fn status(&self) -> PoolStatus {
        let (readers, writers) = (self.pool.status(), self.writers.status());
        PoolStatus {
            size: readers.size + writers.size,
            available: readers.available + writers.available,
            waiting: readers.waiting + writers.waiting,
            max_size: readers.max_size + writers.max_size,
        }
    }

    /// Asks Postgres to stop the statement running on the connection of `token` (one of the
    /// query or mutation pools').
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) -> Result<()> {
        token.cancel_query(self.serving.tls.clone()).await?;
        Ok(())
    }

    /// A connection of its own, outside the pools, on the direct URL: for a loop that keeps one
    /// for as long as it runs.
    pub async fn own_connection(&self) -> Result<tokio_postgres::Client> {
        self.direct.connect().await
    }

    /// A connection of its own (outside the pool, on the direct URL) that `LISTEN`s on
    /// `channel`; its notifications arrive on the receiver, which ends when the connection does.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Result<(
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<Notification>,
    )> {
        let (client, mut connection) = self.direct.open().await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages =
                futures_util::stream::poll_fn(move |context| connection.poll_message(context));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(notification) = message {
                    if sender.send(notification).is_err() {
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {}", crate::sql::quote_ident(channel)?))
            .await?;
        Ok((client, receiver))
    }

    pub fn close(&self) {
        self.pool.close();
        self.writers.close();
        self.schema.close();
    }
}

fn pooler_without_direct_url() -> String {
    "DATABASE_URL leads to a transaction-mode pooler (PgBouncer, Supavisor or a Neon -pooler \
     host). Convoy keeps prepared statements, settings and LISTEN on its own connections, which \
     such a pooler cannot carry. Set DATABASE_DIRECT_URL to the database's direct (or \
     session-mode) URL — on Neon the host without -pooler, on Supabase db.<ref>.supabase.co:5432 \
     or the session pooler on port 5432 — or use that URL as DATABASE_URL."
        .into()
}

/// A pooled connection. When the pool had to connect and could not, the server log gets the
/// failure explained as the first connection's is (the step that failed, and the fix), so an
/// outage at run time reads as clearly as a wrong URL at start; the caller gets `UNAVAILABLE`
/// without the database's address, which is the operator's business, not the client's.
async fn checkout(pool: &Pool, endpoint: &Endpoint) -> Result<Object> {
    match pool.get().await {
        Ok(connection) => Ok(connection),
        Err(deadpool_postgres::PoolError::Backend(error)) => {
            let explained = endpoint.explain(&error).await;
            tracing::warn!(target: "convoy::database", "{explained}");
            Err(ConvoyError::Unavailable(
                "the database cannot be reached right now; safe to retry (the server log says why)"
                    .into(),
            ))
        }
        Err(other) => Err(other.into()),
    }
}

/// What a serving connection is set up with: the statement timeout (see
/// [`Database::limit_statements`]) and no JIT — a statement of a wide filter spent minutes
/// compiling, where neither a cancel nor a timeout is looked at — before `extra`.
#[derive(Clone)]
struct Setup {
    statement_timeout_ms: Arc<AtomicU64>,
    extra: &'static str,
}

impl Setup {
    fn serving(statement_timeout_ms: &Arc<AtomicU64>, extra: &'static str) -> Self {
        Self {
            statement_timeout_ms: statement_timeout_ms.clone(),
            extra,
        }
    }

    fn sql(&self) -> String {
        let millis = self.statement_timeout_ms.load(Ordering::SeqCst);
        // A shorter timeout of the URL's own (`options=-c statement_timeout=…`) stays.
        let timeout = if millis == 0 {
            String::new()
        } else {
            format!(
                "SELECT set_config('statement_timeout', '{millis}', false) FROM pg_settings \
                 WHERE name = 'statement_timeout' AND (setting::bigint = 0 OR setting::bigint > {millis}); "
            )
        };
        format!("SET jit = off; {timeout}{}", self.extra)
    }
}

/// A pool on `endpoint`; `setup` runs on each new connection before its first use.
fn build_pool(endpoint: &Endpoint, size: usize, setup: Option<Setup>) -> Result<Pool> {
    let manager = Manager::from_config(
        endpoint.config.clone(),
        endpoint.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)));
    if let Some(setup) = setup {
        builder = builder.post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
            let sql = setup.sql();
            Box::pin(async move { client.batch_execute(&sql).await.map_err(HookError::Backend) })
        }));
    }
    builder
        .build()
        .map_err(|error| ConvoyError::Internal(format!("could not build the pool: {error}")))
}
