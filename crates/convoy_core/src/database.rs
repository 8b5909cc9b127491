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

#[derive(Clone)]
pub struct Database {
    pool: Pool,
    config: tokio_postgres::Config,
}

impl Database {
    /// Connects and checks that the database answers, so a wrong URL fails here, not at the
    /// first request.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|error| {
            ConvoyError::InvalidArgs(format!("DATABASE_URL is not a valid Postgres URL: {error}"))
        })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|error| ConvoyError::Internal(format!("could not build the pool: {error}")))?;
        let database = Self { pool, config };
        database.ping().await?;
        Ok(database)
    }

    pub async fn connection(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// `SELECT 1` on a pooled connection: what `/health` answers with.
    pub async fn ping(&self) -> Result<()> {
        let client = self.connection().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The pool's size, idle connections and waiting callers, for `/metrics`.
    pub fn status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            size: status.size,
            available: status.available,
            waiting: status.waiting,
            max_size: status.max_size,
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
