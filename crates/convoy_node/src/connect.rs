//! `Engine.connect`'s options, converted to the core's.

use convoy_core::DEFAULT_POOL_SIZE;
use napi_derive::napi;

/// Where to connect, as `src/server/native.ts` passes it.
#[napi(object)]
pub struct ConnectOptions {
    pub database_url: String,
    /// `DATABASE_DIRECT_URL`: LISTEN and schema changes (SPEC §11).
    pub direct_database_url: Option<String>,
    pub pool_size: Option<u32>,
}

impl From<ConnectOptions> for convoy_core::ConnectOptions {
    fn from(options: ConnectOptions) -> Self {
        Self {
            url: options.database_url,
            direct_url: options.direct_database_url.filter(|url| !url.is_empty()),
            pool_size: options
                .pool_size
                .map_or(DEFAULT_POOL_SIZE, |size| size as usize),
        }
    }
}
