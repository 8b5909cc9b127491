//! Convoy's HTTP server (SPEC §6): `POST /api/query`, `POST /api/mutation`, the sync stream
//! `GET /api/sync`, `GET /health`,
//! served by hyper on the core's tokio runtime. User functions run elsewhere (in Node); the
//! server reaches them through the core's call runner and its `Dispatcher`.

mod cors;
mod http;
mod metrics;
mod sse;

pub use cors::AllowedOrigins;
pub use http::{start, ServerHandle, ServerOptions};
