//! The connection pool: deadpool over tokio-postgres, every statement prepared once per
//! connection (`prepare_cached`).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls, Notification};

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

/// Two pools: one for queries (and everything else), one for mutations. A mutation's
/// connection starts every transaction serializable and marks what it writes as Convoy's
/// (`convoy.writer`, which keeps the change trigger quiet), both set once when it connects, so a
/// mutation that only inserts one document sends just its `INSERT`: one statement, its own
/// serializable transaction.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    writers: Pool,
    config: tokio_postgres::Config,
}

/// What a mutation's connection is set up with, on top of the URL's own `options`.
const WRITER_OPTIONS: &str =
    "-c default_transaction_isolation=serializable -c convoy.writer=convoy";

impl Database {
    /// Connects and checks that the database answers, so a wrong URL fails here, not at the
    /// first request.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|error| {
            ConvoyError::InvalidArgs(format!("DATABASE_URL is not a valid Postgres URL: {error}"))
        })?;
        let mut writer_config = config.clone();
        writer_config.options(&match config.get_options() {
            Some(options) => format!("{options} {WRITER_OPTIONS}"),
            None => WRITER_OPTIONS.to_owned(),
        });
        let pool = build_pool(config.clone(), pool_size)?;
        let writers = build_pool(writer_config, pool_size)?;
        let database = Self {
            pool,
            writers,
            config,
        };
        database.ping().await?;
        Ok(database)
    }

    pub async fn connection(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// A connection for a mutation (see [`Database`]).
    pub async fn writer(&self) -> Result<Object> {
        Ok(self.writers.get().await?)
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

    /// A connection of its own (outside the pool) that `LISTEN`s on `channel`; its notifications
    /// arrive on the receiver, which ends when the connection does.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Result<(
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<Notification>,
    )> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
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
    }
}

fn build_pool(config: tokio_postgres::Config, size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|error| ConvoyError::Internal(format!("could not build the pool: {error}")))
}
