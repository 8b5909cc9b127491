//! Convoy's HTTP server (SPEC §6): `POST /api/query`, `POST /api/mutation`, the sync stream
//! `GET /api/sync`, `GET /health`,
//! served by hyper on the core's tokio runtime. User functions run elsewhere (in Node); the
//! server reaches them through the core's call runner and its `Dispatcher`.

mod body;
mod connections;
mod cors;
mod metrics;
mod respond;
mod routes;
mod server;
mod sse;
mod state;

pub use cors::AllowedOrigins;
pub use server::{start, ServerHandle, ServerOptions};
