//! The engine: the pool, the current schema, and the calls in flight.
//!
//! A call is one run of a user function. Its `ctx.db` operations arrive one by one from
//! JavaScript, tagged with the call's id, and all run on the call's own connection inside one
//! transaction. The connection is taken at the first operation (a handler that never touches the
//! database never holds one) and `BEGIN` is pipelined with that first statement, so a transaction
//! costs no extra round trip. Writes cost none either: they wait in the call and travel pipelined
//! with its next statement or with `COMMIT` (see [`Writes`]).

mod abandon;
mod call;
mod idempotency;
mod publish;
mod raw_sql;
mod reads;
mod tool_sql;
mod transaction;
mod unmanaged;
mod writes;

pub use call::{Call, CallKind, Outcome, Seen};

/// How a call ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Committed, or rolled back as asked.
    Done,
    /// A query that ran without a transaction issued a second statement (or raw SQL): its run
    /// is void, and it must run again inside one. What its handler answered is not the answer.
    RunAgainInTransaction,
    /// A mutation under an idempotency key that had committed already: this run rolled back, and
    /// the recorded answer is the answer.
    AlreadyApplied,
}

/// What a statement of a query that must restart into a transaction answers: its handler may
/// see it, but its run's outcome is dropped (see [`Finished::RunAgainInTransaction`]).
fn must_run_in_transaction() -> ConvoyError {
    ConvoyError::Internal("this query must run again in a transaction".into())
}

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, RwLock};

use crate::database::Database;
use crate::error::{ConvoyError, Result};
use crate::group_commit::{GroupCommit, GroupCommitStats};
use crate::migrate::{sync_schema, SyncReport};
use crate::reactivity::{CommitLog, Neighbours};
use crate::schema::Schema;

pub struct Engine {
    database: Database,
    log: CommitLog,
    /// The other processes on the database, told of this one's commits.
    neighbours: Neighbours,
    schema: RwLock<Arc<Schema>>,
    /// The schema as the app declared it, before the database said what stage each table is at:
    /// what the stages are read onto again when they change.
    declared: RwLock<Arc<Schema>>,
    calls: Mutex<HashMap<u32, Arc<Call>>>,
    next_call_id: AtomicU32,
    /// Mutations that only insert one document commit together (see [`GroupCommit`]).
    lone_inserts: GroupCommit,
}

impl Engine {
    pub fn new(database: Database) -> Self {
        Self {
            database,
            log: CommitLog::default(),
            neighbours: Neighbours::default(),
            schema: RwLock::new(Arc::new(Schema::default())),
            declared: RwLock::new(Arc::new(Schema::default())),
            calls: Mutex::new(HashMap::new()),
            next_call_id: AtomicU32::new(1),
            lone_inserts: GroupCommit::default(),
        }
    }

    /// What group commit has done so far (see [`GroupCommit`]).
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.lone_inserts.stats()
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The commits of this process, for the subscriptions whose reads they may touch.
    pub fn log(&self) -> &CommitLog {
        &self.log
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.read().expect("schema lock poisoned").clone()
    }

    /// Makes `schema` the one queries are planned against, after reading what the database says
    /// of its unmanaged tables.
    pub async fn set_schema(&self, schema: Schema) -> Result<()> {
        let mut served = schema.clone();
        crate::migrate::introspect(&self.database, &mut served).await?;
        *self.declared.write().expect("schema lock poisoned") = Arc::new(schema);
        *self.schema.write().expect("schema lock poisoned") = Arc::new(served);
        Ok(())
    }

    /// Reads every table's stage again (a graduation moved one, GRADUATION.md § Running it
    /// online) and plans from then on against what the database holds now.
    pub async fn refresh_stages(&self) -> Result<()> {
        let mut served = (*self.declared.read().expect("schema lock poisoned").clone()).clone();
        crate::migrate::introspect(&self.database, &mut served).await?;
        let changed: Vec<String> = {
            let current = self.schema();
            served
                .tables
                .iter()
                .filter(|table| {
                    current.table(&table.name).ok().is_none_or(|old| {
                        old.stage != table.stage || old.reads_columns != table.reads_columns
                    })
                })
                .map(|table| table.name.clone())
                .collect()
        };
        *self.schema.write().expect("schema lock poisoned") = Arc::new(served);
        if !changed.is_empty() {
            tracing::info!(tables = ?changed, "tables are served at a new stage");
        }
        Ok(())
    }

    /// Makes writes made outside Convoy reach live queries (see `migrate::install_change_trigger`);
    /// returns the statements it ran.
    pub async fn install_change_trigger(&self) -> Result<Vec<String>> {
        crate::migrate::install_change_trigger(&self.database, &self.schema()).await
    }

    /// The app's tables that lack the change trigger.
    pub async fn tables_without_change_trigger(&self) -> Result<Vec<String>> {
        crate::migrate::tables_without_change_trigger(&self.database, &self.schema()).await
    }

    pub async fn sync_schema(&self, schema: &Schema, dry_run: bool) -> Result<SyncReport> {
        sync_schema(&self.database, schema, dry_run).await
    }

    pub(super) fn call(&self, call_id: u32) -> Result<Arc<Call>> {
        self.calls
            .lock()
            .expect("calls lock poisoned")
            .get(&call_id)
            .cloned()
            .ok_or_else(|| {
                ConvoyError::Internal(
                    "ctx.db was used after its function returned (is an await missing?)".into(),
                )
            })
    }

    pub(super) fn writing_call(&self, call_id: u32) -> Result<Arc<Call>> {
        let call = self.call(call_id)?;
        if call.kind != CallKind::Mutation {
            return Err(ConvoyError::Internal(
                "queries cannot write; use a mutation".into(),
            ));
        }
        Ok(call)
    }
}
