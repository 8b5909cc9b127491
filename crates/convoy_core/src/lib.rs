//! Convoy's database core: the pool, schema sync, the planner and the transactions of function
//! calls. Pure Rust: the HTTP server and the Node binding sit on top of it.

pub mod calls;
pub mod connect;
pub mod database;
pub mod document;
pub mod engine;
pub mod error;
pub mod graduate;
pub mod group_commit;
pub mod migrate;
pub mod plan;
pub mod raw;
pub mod reactivity;
pub mod schema;
pub mod sql;

pub use database::{ConnectOptions, Database, DEFAULT_POOL_SIZE};
pub use engine::{Call, CallKind, Engine, Finished, Outcome, Seen};
pub use error::{ConvoyError, ErrorCode, Result};
pub use migrate::SyncReport;
pub use schema::Schema;
