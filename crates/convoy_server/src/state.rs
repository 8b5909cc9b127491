//! What every request shares: the call runner, the live queries, the function table, the
//! metrics and the server's limits.

use std::sync::Arc;
use std::time::Duration;

use convoy_core::calls::{CallRunner, FunctionTable};
use convoy_core::reactivity::LiveQueries;
use convoy_core::ConvoyError;

use crate::cors::AllowedOrigins;
use crate::metrics::Metrics;

pub(crate) struct State {
    pub runner: Arc<CallRunner>,
    pub metrics: Arc<Metrics>,
    pub functions: Arc<FunctionTable>,
    pub live: Arc<LiveQueries>,
    pub max_body_bytes: usize,
    pub cors: AllowedOrigins,
    pub max_streams: usize,
    pub stream_idle_timeout: Duration,
    /// Open connections, counted against their caps.
    pub gate: std::sync::Arc<crate::connections::Gate>,
    /// The origins of the address the server listens on: what "its own origin" means. Never
    /// taken from a request's `Host`, which the caller writes (DNS rebinding).
    pub own_origins: Vec<String>,
    pub dev: bool,
}

impl State {
    /// What a client may see of an error (see [`ConvoyError::public`]).
    pub(crate) fn public_error(&self, error: ConvoyError) -> ConvoyError {
        error.public(self.dev)
    }
}
