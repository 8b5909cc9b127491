//! Running the app's functions: the function table, handing a call to user code, and the call
//! runner (retries of conflicting mutations, a query's restart into a transaction, timeouts, the
//! rollback of an abandoned call), beside the transactions they drive (`engine`).

pub mod dispatch;
pub mod functions;
pub mod runner;
pub mod stats;

pub use dispatch::{Dispatch, Dispatcher};
pub use functions::{FunctionInfo, FunctionTable, CONNECT, HEALTH, IDENTIFY, VALIDATE};
pub use runner::CallRunner;
pub use stats::CallStats;
