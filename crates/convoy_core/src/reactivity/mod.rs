//! What a query read, what a mutation wrote, and the log of commits between them
//! (docs/architecture.md § Reactivity).
//!
//! A subscription re-runs only when a commit wrote something its query read. Reads are recorded
//! as coarsely as is safe: an indexed read as its table, index and equality prefix (its range is
//! taken as the whole prefix), a `get` as its id, anything else — a scan, a filter without an
//! index, raw SQL — as its whole table or every table. A write is recorded as its table, its id
//! and its document before and after, so it matches an indexed read when either version's key
//! starts with the read's prefix. Over-matching costs a re-run whose unchanged result is not sent;
//! under-matching would be a lost update, so every doubt resolves towards "it may have changed".

mod announcement;
mod commit_log;
pub mod external_writes;
pub mod live;
mod neighbours;
mod read_set;
pub mod registry;
mod write_set;

pub use announcement::{Announcement, CHANNEL};
pub use commit_log::CommitLog;
pub use live::{LiveQueries, Session, Subscribe};
pub use neighbours::Neighbours;
pub use read_set::{IndexRead, Key, ReadSet};
pub use registry::Registry;
pub use write_set::{Write, WriteSet};

#[cfg(test)]
mod tests;
