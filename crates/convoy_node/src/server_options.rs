//! `Engine.startServer`'s options, converted to the server's.

use std::time::Duration;

use convoy_core::ConvoyError;
use napi::Result;
use napi_derive::napi;

use crate::errors::to_js;

/// The HTTP server's options, as `src/server/native.ts` passes them.
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
    /// Open connections; past it a connection is served `/health` only.
    pub max_connections: Option<u32>,
    /// Open connections from one client address, likewise.
    pub max_connections_per_address: Option<u32>,
    /// Internal errors reach the client in full (development).
    pub dev: Option<bool>,
}

impl TryFrom<ServerOptions> for convoy_server::ServerOptions {
    type Error = napi::Error;

    fn try_from(options: ServerOptions) -> Result<Self> {
        let defaults = convoy_server::ServerOptions::default();
        Ok(convoy_server::ServerOptions {
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
            max_streams: count(options.max_streams, defaults.max_streams),
            stream_idle_timeout: options
                .stream_idle_timeout_ms
                .map_or(defaults.stream_idle_timeout, |ms| {
                    Duration::from_millis(u64::from(ms))
                }),
            max_connections: count(options.max_connections, defaults.max_connections),
            max_connections_per_address: count(
                options.max_connections_per_address,
                defaults.max_connections_per_address,
            ),
            dev: options.dev.unwrap_or(defaults.dev),
            ..defaults
        })
    }
}

/// A count the caller may set, else the server's default.
fn count(option: Option<u32>, default: usize) -> usize {
    option.map_or(default, |count| count as usize)
}
