//! The connection pool: deadpool over tokio-postgres, every statement prepared once per
//! connection (`prepare_cached`).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

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
}

impl Database {
    /// Connects and checks that the database answers, so a wrong URL fails here, not at the
    /// first request.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|error| {
            ConvoyError::InvalidArgs(format!("DATABASE_URL is not a valid Postgres URL: {error}"))
        })?;
        let manager = Manager::from_config(
            config,
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
        let database = Self { pool };
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

    pub fn close(&self) {
        self.pool.close();
    }
}
