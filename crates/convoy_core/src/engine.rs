//! The engine: the pool, the current schema, and the calls in flight.
//!
//! A call is one run of a user function. Its `ctx.db` operations arrive one by one from
//! JavaScript, tagged with the call's id, and all run on the call's own connection inside one
//! transaction. The connection is taken at the first operation (a handler that never touches the
//! database never holds one) and `BEGIN` is pipelined with that first statement, so a transaction
//! costs no extra round trip. Writes cost none either: they wait in the call and travel pipelined
//! with its next statement or with `COMMIT` (see [`Writes`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use deadpool_postgres::Object;
use futures_util::future::join_all;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::database::Database;
use crate::document::{creation_time_of, documents_json, epoch_millis, has_nul, JsonbParam, Parts};
use crate::error::{ConvoyError, Result};
use crate::group_commit::{GroupCommit, GroupCommitStats, LoneInsert};
use crate::plan::{
    plan_delete, plan_get, plan_insert, plan_insert_rows, plan_query, plan_replace, QueryPlan,
    Statement,
};
use crate::reactivity::{
    Announcement, CommitLog, IndexRead, Key, ReadSet, Write, WriteSet, CHANNEL,
};
use crate::schema::{sync_schema, Schema, SyncReport, Table};
use crate::sql::quote_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Query,
    Mutation,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
        }
    }

    fn begin_sql(self) -> &'static str {
        match self {
            // One snapshot for the whole query, and a promise to Postgres that nothing is written.
            Self::Query => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            // Serializable: a read-modify-write can never lose an update; conflicts re-run.
            // (A mutation's connection also says so by default; see `Database`.)
            Self::Mutation => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// What the JavaScript side answered for a call: the result as JSON text, or an error.
pub type Outcome = Result<String>;

pub struct Call {
    pub id: u32,
    pub kind: CallKind,
    /// A query that has so far issued one statement per run runs without a transaction: one
    /// statement is one snapshot already, and BEGIN and COMMIT would cost Postgres two more.
    /// Its second statement would see another snapshot, so it restarts the call instead.
    single_statement: bool,
    transaction: tokio::sync::Mutex<Transaction>,
    responder: Mutex<Option<oneshot::Sender<Outcome>>>,
    /// Told whether the call committed, when someone asked (`ctx.afterCommit`).
    committed: Mutex<Option<oneshot::Sender<bool>>>,
    writes: Mutex<Writes>,
    /// What the call has read, for the subscriptions that run it (see `reactivity`).
    reads: Mutex<ReadSet>,
}

impl Call {
    fn writes(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes.lock().expect("writes lock poisoned")
    }

    fn read(&self, record: impl FnOnce(&mut ReadSet)) {
        record(&mut self.reads.lock().expect("reads lock poisoned"));
    }

    /// Everything the call has read so far.
    pub fn reads(&self) -> ReadSet {
        self.reads.lock().expect("reads lock poisoned").clone()
    }
}

/// How many documents a mutation remembers (see [`Writes::seen`]); reads past this many are not
/// remembered, and a `patch` of such a document reads it again.
const SEEN_LIMIT: usize = 1000;

/// A mutation's writes not yet sent, and the documents it has seen.
///
/// A write is not sent when it is made: it travels to Postgres pipelined ahead of the call's next
/// statement, or with `COMMIT`, so it costs no round trip of its own (Convex, too, holds a
/// mutation's writes until it commits). Every statement follows the writes made before it, so the
/// call reads its own writes, and a write that fails still fails the call before it can commit.
#[derive(Default)]
struct Writes {
    pending: Vec<PendingWrite>,
    /// Documents this call has read or written, as it sees them now — its snapshot plus its own
    /// writes, exactly what Postgres would answer — so that `patch` or `get` of a document just
    /// read needs no round trip. Raw SQL can change anything: it makes the call forget them all.
    seen: HashMap<Uuid, SeenDocument>,
    /// A write refused before it was queued: the call cannot commit.
    failure: Option<ConvoyError>,
    /// What the call wrote, for the commit log: table, id, and the fields before and after.
    changes: Vec<Changed>,
    /// Raw SQL ran: it may have written anything.
    wrote_anything: bool,
}

/// A write as the commit log will record it: its fields as JSON text, before and after.
struct Changed {
    table: String,
    id: Option<Uuid>,
    old: Option<String>,
    new: Option<String>,
}

struct SeenDocument {
    table: String,
    /// `None` once this call deleted it.
    stored: Option<(f64, String)>,
}

impl Writes {
    fn remember(&mut self, table: &str, parts: &Parts) {
        if self.seen.len() < SEEN_LIMIT || self.seen.contains_key(&parts.id) {
            let stored = Some((parts.creation_time, parts.data.to_owned()));
            self.seen.insert(
                parts.id,
                SeenDocument {
                    table: table.to_owned(),
                    stored,
                },
            );
        }
    }
}

/// What a mutation knows of a document without asking Postgres.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not read or written by this call (or forgotten): ask Postgres.
    Unknown,
    /// Deleted by this call.
    Deleted,
    Document {
        table: String,
        json: String,
    },
}

struct PendingWrite {
    table: String,
    id: Uuid,
    sql: String,
    change: Change,
}

enum Change {
    Insert {
        data: String,
        created_at: SystemTime,
    },
    Replace {
        data: String,
    },
    Delete,
}

impl PendingWrite {
    async fn send(&self, connection: &Object, statement: &tokio_postgres::Statement) -> Result<()> {
        let id = &self.id;
        let sent = match &self.change {
            Change::Insert { data, created_at } => connection
                .execute(statement, &[id, &JsonbParam(data), created_at])
                .await
                .map(drop),
            Change::Replace { data } => connection
                .query(statement, &[id, &JsonbParam(data)])
                .await
                .map(drop),
            Change::Delete => connection.query(statement, &[id]).await.map(drop),
        };
        sent.map_err(|error| {
            // plan_replace and plan_delete divide by zero when the row is not there.
            if error.code() == Some(&SqlState::DIVISION_BY_ZERO) {
                ConvoyError::NotFound(format!("there is no document {id} in {}", self.table))
            } else {
                error.into()
            }
        })
    }
}

/// A write to a row known only by its table: it wakes every read of that table.
fn wrote_table(call: &Call, table: &str) {
    call.writes().changes.push(Changed {
        table: table.to_owned(),
        id: None,
        old: None,
        new: None,
    });
}

fn unmanaged_table<'a>(schema: &'a Schema, name: &str) -> Result<&'a Table> {
    let table = schema.table(name)?;
    if table.managed {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {name:?} is a Convoy table: its documents are written by id"
        )));
    }
    Ok(table)
}

/// An unmanaged table's primary key column and its type, when the key is one column.
fn unmanaged_key(table: &Table) -> Result<(&str, &str)> {
    let [key] = table.primary_key.as_slice() else {
        return Err(ConvoyError::InvalidArgs(format!(
            "table {:?} has no primary key of one column, so its rows cannot be named; use ctx.db.raw",
            table.name
        )));
    };
    let column = table
        .columns
        .iter()
        .find(|column| &column.name == key)
        .ok_or_else(|| ConvoyError::Internal(format!("no column {key:?} in {}", table.name)))?;
    Ok((key, &column.sql_type))
}

/// Whether `writes` is one insert and nothing else.
fn is_one_insert(writes: &[PendingWrite]) -> bool {
    matches!(
        writes,
        [PendingWrite {
            change: Change::Insert { .. },
            ..
        }]
    )
}

/// Sends `BEGIN` (when given), then `writes`, then runs `last`, all pipelined: one round trip.
/// Returns the first failure of `BEGIN` and the writes, and what `last` returned — `None` when a
/// write could not even be prepared, and nothing was sent.
async fn pipelined<T>(
    connection: &Object,
    begin: Option<&str>,
    writes: &[PendingWrite],
    last: impl Future<Output = T>,
) -> (Result<()>, Option<T>) {
    // Prepared first, so that each write goes out the moment it is polled, in order, ahead of
    // `last`; prepare_cached asks Postgres only the first time per connection.
    let mut statements = Vec::with_capacity(writes.len());
    for write in writes {
        match connection.prepare_cached(&write.sql).await {
            Ok(statement) => statements.push(statement),
            Err(error) => return (Err(error.into()), None),
        }
    }
    let begin = async {
        match begin {
            Some(sql) => connection
                .batch_execute(sql)
                .await
                .map_err(ConvoyError::from),
            None => Ok(()),
        }
    };
    let sent = join_all(
        writes
            .iter()
            .zip(&statements)
            .map(|(write, statement)| write.send(connection, statement)),
    );
    // join! polls in order the first time, which is when each request is sent.
    let (began, sent, last) = tokio::join!(begin, sent, last);
    (began.and(sent.into_iter().collect()), Some(last))
}

#[derive(Default)]
struct Transaction {
    connection: Option<Object>,
    began: bool,
    finished: bool,
    /// Statements run so far (counted in single-statement mode).
    statements: u32,
    /// A single-statement call issued a second statement: run it again in a transaction.
    needs_restart: bool,
    /// The first statement that failed: Postgres has aborted the transaction, so every later
    /// statement fails the same way and COMMIT is impossible.
    failure: Option<ConvoyError>,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // A call abandoned mid-transaction (its HTTP client went away, a panic) must not hand an
        // open transaction back to the pool: close that connection instead.
        if let Some(connection) = self.connection.take() {
            if self.began && !self.finished {
                drop(Object::take(connection));
            }
        }
    }
}

pub struct Engine {
    database: Database,
    log: CommitLog,
    /// Names this process in its notifications, so it can skip its own.
    origin: String,
    /// Where this process's commits go to be announced to the others, once a server runs
    /// ([`Engine::follow_other_processes`]).
    publisher: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Arc<WriteSet>>>>,
    /// Whether another process has said hello: until one does, nobody needs this one's commits.
    announcing: AtomicBool,
    schema: RwLock<Arc<Schema>>,
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
            origin: Uuid::now_v7().to_string(),
            publisher: Mutex::new(None),
            announcing: AtomicBool::new(false),
            schema: RwLock::new(Arc::new(Schema::default())),
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
    pub async fn set_schema(&self, mut schema: Schema) -> Result<()> {
        crate::schema::introspect_unmanaged(&self.database, &mut schema).await?;
        *self.schema.write().expect("schema lock poisoned") = Arc::new(schema);
        Ok(())
    }

    /// Makes writes made outside Convoy reach live queries (see `schema::install_change_trigger`).
    pub async fn install_change_trigger(&self) -> Result<()> {
        crate::schema::install_change_trigger(&self.database, &self.schema()).await
    }

    pub async fn sync_schema(&self, schema: &Schema, dry_run: bool) -> Result<SyncReport> {
        sync_schema(&self.database, schema, dry_run).await
    }

    /// Registers a new call; its outcome arrives on the returned receiver (see [`Engine::respond`]).
    /// Mutations always run in a transaction; a query runs in one when `transactional`.
    pub fn begin_call(
        &self,
        kind: CallKind,
        transactional: bool,
    ) -> (Arc<Call>, oneshot::Receiver<Outcome>) {
        let (sender, receiver) = oneshot::channel();
        let mut calls = self.calls.lock().expect("calls lock poisoned");
        // Ids wrap after four billion calls; skip any still in flight.
        let id = loop {
            let id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !calls.contains_key(&id) {
                break id;
            }
        };
        let call = Arc::new(Call {
            id,
            kind,
            single_statement: kind == CallKind::Query && !transactional,
            transaction: tokio::sync::Mutex::new(Transaction::default()),
            responder: Mutex::new(Some(sender)),
            committed: Mutex::new(None),
            writes: Mutex::new(Writes::default()),
            reads: Mutex::new(ReadSet::default()),
        });
        calls.insert(id, call.clone());
        (call, receiver)
    }

    /// Delivers the JavaScript side's answer for a call. An answer for a call that has already
    /// ended (timed out, or answered twice) is dropped.
    pub fn respond(&self, call_id: u32, outcome: Outcome) {
        let Ok(call) = self.call(call_id) else { return };
        let sender = call
            .responder
            .lock()
            .expect("responder lock poisoned")
            .take();
        if let Some(sender) = sender {
            // The receiver is gone only if the request was abandoned; nothing is left to tell.
            let _ = sender.send(outcome);
        }
    }

    /// Delivers the answer like [`Engine::respond`], then resolves with whether the call's
    /// transaction committed: `false` for a rollback and for an attempt that conflicted and runs
    /// again. The watch is set up before the answer is sent, so the commit cannot slip past it.
    pub async fn respond_awaiting_commit(&self, call_id: u32, outcome: Outcome) -> bool {
        let Ok(call) = self.call(call_id) else {
            return false;
        };
        let (sender, receiver) = oneshot::channel();
        *call.committed.lock().expect("commit watch lock poisoned") = Some(sender);
        self.respond(call_id, outcome);
        receiver.await.unwrap_or(false)
    }

    /// Ends a call: commits (when `commit` and nothing failed) or rolls back, and returns the
    /// connection to the pool. A conflict — in a statement or at COMMIT — comes back as
    /// `ConvoyError::Conflict` so that the caller can run the function again.
    pub async fn finish_call(&self, call: &Call, commit: bool) -> Result<()> {
        let result = self.end_transaction(call, commit).await;
        let watcher = call
            .committed
            .lock()
            .expect("commit watch lock poisoned")
            .take();
        if let Some(watcher) = watcher {
            let _ = watcher.send(commit && result.is_ok());
        }
        result
    }

    async fn end_transaction(&self, call: &Call, commit: bool) -> Result<()> {
        self.calls
            .lock()
            .expect("calls lock poisoned")
            .remove(&call.id);
        let mut transaction = call.transaction.lock().await;
        transaction.finished = true;
        // Whatever the handler made of the failed statement, the call must run again.
        if transaction.needs_restart {
            return Err(ConvoyError::Restart);
        }
        let writes = std::mem::take(&mut *call.writes());
        let failure = transaction.failure.take().or(writes.failure);
        let commit = commit && failure.is_none();
        // The writes not sent yet go with COMMIT; a rollback just forgets them.
        let mut pending = if commit { writes.pending } else { Vec::new() };
        if transaction.connection.is_none() && is_one_insert(&pending) {
            // A mutation that only inserts one document: its INSERT alone is a transaction (a
            // mutation's connection makes it a serializable one), shared with the other such
            // inserts of the moment. No BEGIN, no COMMIT.
            let write = pending.pop().expect("one insert");
            let Change::Insert { data, created_at } = write.change else {
                unreachable!("is_one_insert")
            };
            let rows_sql = plan_insert_rows(&self.schema(), &write.table)?;
            let insert = LoneInsert {
                table: write.table,
                id: write.id,
                data,
                created_at,
                sql: write.sql,
                rows_sql,
            };
            self.lone_inserts.insert(&self.database, insert).await?;
            self.committed(&writes.changes, writes.wrote_anything);
            return Ok(());
        }
        if transaction.connection.is_none() && !pending.is_empty() {
            transaction.connection = Some(self.connection_for(call.kind).await?);
        }
        let Some(connection) = transaction.connection.take() else {
            return failure.map_or(Ok(()), Err);
        };
        if !transaction.began && pending.is_empty() {
            return Ok(());
        }
        let begin = (!transaction.began).then(|| call.kind.begin_sql());
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        let (sent, ended) =
            pipelined(&connection, begin, &pending, connection.batch_execute(end)).await;
        // A failed write aborted the transaction, and COMMIT then rolled it back.
        let Some(ended) = ended else {
            // Nothing was sent, not even COMMIT: the transaction is still open.
            drop(Object::take(connection));
            return sent;
        };
        if let Err(error) = &ended {
            if error.as_db_error().is_none() {
                // No answer to COMMIT: the connection's state is unknown, never reuse it.
                drop(Object::take(connection));
            }
        }
        sent?;
        ended?;
        if commit {
            self.committed(&writes.changes, writes.wrote_anything);
        }
        match failure {
            Some(failure) if failure.is_retryable_conflict() => Err(failure),
            // The handler caught a database error and returned normally; what it meant to
            // write cannot be committed, so the caller gets the error instead.
            Some(failure) if !commit && call.kind == CallKind::Mutation => Err(failure),
            _ => Ok(()),
        }
    }

    /// Logs and announces what a call that just committed wrote.
    fn committed(&self, changes: &[Changed], wrote_anything: bool) {
        let Some(commit) = self.write_set(changes, wrote_anything) else {
            return;
        };
        let commit = Arc::new(commit);
        self.log.append(commit.clone());
        // Read after COMMIT: a commit that finds it false committed before this process
        // welcomed anyone, so the newcomer's re-run after the welcome sees it.
        if self.announcing.load(Ordering::SeqCst) {
            let publisher = self.publisher.lock().expect("publisher lock poisoned");
            if let Some(publisher) = publisher.as_ref() {
                let _ = publisher.send(commit);
            }
        }
    }

    /// What a call wrote, as the commit log records it; `None` when it wrote nothing.
    fn write_set(&self, changes: &[Changed], wrote_anything: bool) -> Option<WriteSet> {
        if changes.is_empty() && !wrote_anything {
            return None;
        }
        let parse = |data: &Option<String>| {
            data.as_deref()
                .map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
        };
        let writes = changes
            .iter()
            .map(|changed| Write {
                table: changed.table.clone(),
                id: changed.id,
                old: parse(&changed.old),
                new: parse(&changed.new),
            })
            .collect();
        Some(WriteSet {
            everything: wrote_anything,
            writes,
        })
    }

    /// Announces this process's commits to the other processes on the database and appends
    /// theirs to the log, for as long as it runs, on a connection of its own that `LISTEN`s.
    ///
    /// A process alone on its database announces nothing: a `NOTIFY` costs Postgres a serialized
    /// step at every commit (inside each transaction it halved the insert benchmark). So a
    /// process that starts listening says hello; each one already there starts announcing and
    /// answers welcome; the newcomer starts announcing too and answers ready. A welcome or a
    /// ready makes every live query of its receiver run again, which covers whatever the sender
    /// committed before it began to announce.
    ///
    /// Commits are announced after they commit, in batches: whatever committed while the last
    /// `NOTIFY` was under way goes out in the next one. When the connection breaks, every live
    /// query here runs again and the process says hello anew, since notifications may have been
    /// missed both ways.
    pub async fn follow_other_processes(self: Arc<Self>) {
        let (sender, mut commits) = tokio::sync::mpsc::unbounded_channel();
        *self.publisher.lock().expect("publisher lock poisoned") = Some(sender);
        let mut connected_before = false;
        loop {
            match self.database.listen(CHANNEL).await {
                Ok((client, mut notifications)) => {
                    if connected_before {
                        self.log.append(Arc::new(WriteSet::everything()));
                    }
                    connected_before = true;
                    let mut outgoing = vec![Announcement::Hello];
                    let mut batch: Vec<Arc<WriteSet>> = Vec::new();
                    loop {
                        while let Ok(commit) = commits.try_recv() {
                            batch.push(commit);
                        }
                        if !batch.is_empty() {
                            outgoing.push(Announcement::Commit(combined(&batch)));
                            batch.clear();
                        }
                        if let Err(error) = self.announce(&client, outgoing.drain(..)).await {
                            tracing::warn!(%error, "could not announce commits to other processes");
                            break;
                        }
                        tokio::select! {
                            notification = notifications.recv() => match notification {
                                Some(notification) => {
                                    if let Some(answer) = self.heard(notification.payload()) {
                                        outgoing.push(answer);
                                    }
                                }
                                None => break,
                            },
                            commit = commits.recv() => match commit {
                                Some(commit) => batch.push(commit),
                                None => return,
                            },
                        }
                    }
                    tracing::warn!("the LISTEN connection closed; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, "could not LISTEN for other processes' commits");
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            // What committed meanwhile, the others learn when they answer the next hello.
            while commits.try_recv().is_ok() {}
        }
    }

    async fn announce(
        &self,
        client: &tokio_postgres::Client,
        announcements: impl Iterator<Item = Announcement>,
    ) -> Result<()> {
        let schema = self.schema();
        for announcement in announcements {
            let payload = announcement.payload(&self.origin, &schema);
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
        }
        Ok(())
    }

    /// Another process's announcement; returns the answer it needs, if any.
    fn heard(&self, payload: &str) -> Option<Announcement> {
        match Announcement::parse(payload) {
            Some((origin, _)) if origin == self.origin => None,
            Some((_, Announcement::Hello)) => {
                self.announcing.store(true, Ordering::SeqCst);
                Some(Announcement::Welcome)
            }
            Some((_, Announcement::Welcome)) => {
                self.announcing.store(true, Ordering::SeqCst);
                self.log.append(Arc::new(WriteSet::everything()));
                Some(Announcement::Ready)
            }
            Some((_, Announcement::Ready)) => {
                self.log.append(Arc::new(WriteSet::everything()));
                None
            }
            Some((_, Announcement::Commit(commit))) => {
                self.log.append(Arc::new(commit));
                None
            }
            None => {
                self.log.append(Arc::new(WriteSet::everything()));
                None
            }
        }
    }

    fn call(&self, call_id: u32) -> Result<Arc<Call>> {
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

    /// The document with this id as JSON text, or `"null"`; `table: None` looks in every table.
    pub async fn get(&self, call_id: u32, table: Option<&str>, id: &str) -> Result<String> {
        Ok(self
            .locate(call_id, table, id)
            .await?
            .map_or_else(|| "null".to_owned(), |(_, document)| document))
    }

    /// The document with this id and the table it is in.
    pub async fn locate(
        &self,
        call_id: u32,
        table: Option<&str>,
        id: &str,
    ) -> Result<Option<(String, String)>> {
        let Ok(id) = Uuid::parse_str(id) else {
            // Not an id at all: no document has it.
            return Ok(None);
        };
        let statement = plan_get(&self.schema(), table, id)?;
        self.call(call_id)?.read(|reads| {
            reads.ids.insert(id);
        });
        let rows = self.run(call_id, &statement).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let table: String = row
            .try_get(0)
            .map_err(|error| ConvoyError::Internal(error.to_string()))?;
        let parts = Parts::of_row(row, 1)?;
        let call = self.call(call_id)?;
        if call.kind == CallKind::Mutation {
            // Remembered even past the limit: a located document is usually about to be written.
            let stored = Some((parts.creation_time, parts.data.to_owned()));
            let seen = SeenDocument {
                table: table.clone(),
                stored,
            };
            call.writes().seen.insert(parts.id, seen);
        }
        Ok(Some((table, parts.to_json()?)))
    }

    /// What this call knows of a document without asking Postgres: in a mutation, the documents it
    /// has read or written (see [`Writes`]).
    pub fn seen(&self, call_id: u32, id: &str) -> Result<Seen> {
        let call = self.call(call_id)?;
        let Ok(id) = Uuid::parse_str(id) else {
            return Ok(Seen::Unknown);
        };
        let writes = call.writes();
        let Some(seen) = writes.seen.get(&id) else {
            return Ok(Seen::Unknown);
        };
        Ok(match &seen.stored {
            None => Seen::Deleted,
            Some((creation_time, data)) => Seen::Document {
                table: seen.table.clone(),
                json: Parts {
                    id,
                    creation_time: *creation_time,
                    data,
                }
                .to_json()?,
            },
        })
    }

    /// Records what a query plan reads: its index's equality prefix, or its whole table.
    fn record_read(&self, call_id: u32, plan: &QueryPlan) -> Result<()> {
        let call = self.call(call_id)?;
        let managed = self.schema().table(&plan.table)?.managed;
        call.read(|reads| match &plan.index {
            Some(index) if managed => reads.ranges.push(IndexRead {
                table: plan.table.clone(),
                index: index.name.clone(),
                prefix: index.eq.iter().map(|eq| Key::of(Some(&eq.value))).collect(),
            }),
            _ => {
                reads.tables.insert(plan.table.clone());
            }
        });
        Ok(())
    }

    /// Renders documents read from `table`; a mutation remembers them (see [`Writes::seen`]).
    fn read_documents(
        &self,
        call_id: u32,
        table: &str,
        render: impl FnOnce(&mut dyn FnMut(&Parts)) -> Result<String>,
    ) -> Result<String> {
        let call = self.call(call_id)?;
        if call.kind != CallKind::Mutation {
            return render(&mut |_| {});
        }
        let mut writes = call.writes();
        render(&mut |parts| writes.remember(table, parts))
    }

    pub async fn query(&self, call_id: u32, plan_json: &str) -> Result<String> {
        let plan: QueryPlan = serde_json::from_str(plan_json)
            .map_err(|error| ConvoyError::InvalidArgs(format!("invalid query: {error}")))?;
        let statement = plan_query(&self.schema(), &plan)?;
        self.record_read(call_id, &plan)?;
        let rows = self.run(call_id, &statement).await?;
        match statement.shape {
            crate::plan::RowShape::Document => {
                self.read_documents(call_id, &plan.table, |each| documents_json(&rows, each))
            }
            crate::plan::RowShape::JsonText => crate::document::json_texts(&rows),
        }
    }

    /// One page of a query: `{"page", "isDone", "continueCursor"}`.
    pub async fn paginate(
        &self,
        call_id: u32,
        plan_json: &str,
        cursor: Option<&str>,
        num_items: u32,
    ) -> Result<String> {
        let plan: QueryPlan = serde_json::from_str(plan_json)
            .map_err(|error| ConvoyError::InvalidArgs(format!("invalid query: {error}")))?;
        let (statement, query) =
            crate::page::plan_page(&self.schema(), &plan, plan_json, cursor, num_items)?;
        self.record_read(call_id, &plan)?;
        let rows = self.run(call_id, &statement).await?;
        let key = crate::plan::order_key(&self.schema(), &plan)?;
        self.read_documents(call_id, &plan.table, |each| {
            crate::page::page_json(&rows, num_items, &key, &query, cursor, each)
        })
    }

    /// Inserts a document (JSON object text, already validated against the table's schema in
    /// JavaScript) and returns its new id: the primary key of an unmanaged table's row, or a
    /// UUIDv7 for a managed table, whose insert is queued (see [`Engine::queue_insert`]).
    pub async fn insert(&self, call_id: u32, table: &str, document_json: &str) -> Result<String> {
        let schema = self.schema();
        let definition = schema.table(table)?;
        if definition.managed {
            return self.queue_insert(call_id, table, document_json);
        }
        expect_object(document_json)?;
        self.insert_unmanaged(call_id, definition, document_json)
            .await
    }

    /// Queues an insert into a managed table (see [`Writes`]) and returns the new UUIDv7 id.
    pub fn queue_insert(&self, call_id: u32, table: &str, document_json: &str) -> Result<String> {
        let sql = plan_insert(&self.schema(), table)?;
        let call = self.writing_call(call_id)?;
        let id = Uuid::now_v7();
        let created_at = creation_time_of(&id);
        let data = document_json.to_owned();
        self.queue(&call, table, id, sql, Change::Insert { data, created_at })?;
        Ok(id.hyphenated().to_string())
    }

    /// An insert into an existing relational table: only the given columns, so the table's own
    /// defaults (serials, `now()`) fill the rest. Returns the primary key as text, or "" without one.
    async fn insert_unmanaged(
        &self,
        call_id: u32,
        table: &Table,
        document_json: &str,
    ) -> Result<String> {
        let document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(document_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
            })?;
        let mut columns = Vec::with_capacity(document.len());
        for field in document.keys() {
            if !table.columns.iter().any(|column| &column.name == field) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {field:?}",
                    table.name
                )));
            }
            columns.push(quote_ident(field)?);
        }
        let relation = quote_ident(&table.name)?;
        let returning = match table.primary_key.as_slice() {
            [key] => format!("{}::text", quote_ident(key)?),
            _ => "NULL::text".to_owned(),
        };
        let list = columns.join(", ");
        let call = self.writing_call(call_id)?;
        let document = JsonbParam(document_json);
        let rows = if columns.is_empty() {
            let sql = format!("INSERT INTO {relation} DEFAULT VALUES RETURNING {returning}");
            self.run_with(&call, &sql, &[], ConvoyError::from).await?
        } else {
            let sql = format!(
                "INSERT INTO {relation} ({list}) SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $1::jsonb) RETURNING {returning}"
            );
            self.run_with(&call, &sql, &[&document], ConvoyError::from)
                .await?
        };
        wrote_table(&call, &table.name);
        let id: Option<String> = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(id.unwrap_or_default())
    }

    /// Writes columns of an unmanaged table's row, found by its one-column primary key (`key_json`,
    /// the key as JSON): the fields `document_json` names, or with `every_field` all the fields
    /// the schema declares (those it leaves out become NULL). A missing row is `NOT_FOUND`.
    pub async fn update_unmanaged(
        &self,
        call_id: u32,
        table: &str,
        key_json: &str,
        document_json: &str,
        every_field: bool,
    ) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(document_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!("a document must be a JSON object: {error}"))
            })?;
        let (key, key_type) = unmanaged_key(table)?;
        let mut names: Vec<&str> = if every_field {
            table.fields.iter().map(String::as_str).collect()
        } else {
            document.keys().map(String::as_str).collect()
        };
        names.retain(|name| *name != key);
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            if !table.columns.iter().any(|column| column.name == name) {
                return Err(ConvoyError::InvalidArgs(format!(
                    "table {:?} has no column {name:?}",
                    table.name
                )));
            }
            columns.push(quote_ident(name)?);
        }
        let relation = quote_ident(&table.name)?;
        let key = quote_ident(key)?;
        let list = columns.join(", ");
        let sql = if columns.is_empty() {
            // Nothing to write: only make sure the row is there.
            format!("SELECT 1 FROM {relation} WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type}")
        } else {
            format!(
                "UPDATE {relation} SET ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{relation}, $2::jsonb)) \
                 WHERE {key} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1"
            )
        };
        let key_param = JsonbParam(key_json);
        let document = JsonbParam(document_json);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = if columns.is_empty() {
            vec![&key_param]
        } else {
            vec![&key_param, &document]
        };
        self.write_named_row(call_id, table, &sql, &params, key_json)
            .await
    }

    /// Deletes an unmanaged table's row by its one-column primary key; a missing one is
    /// `NOT_FOUND`.
    pub async fn delete_unmanaged(&self, call_id: u32, table: &str, key_json: &str) -> Result<()> {
        let schema = self.schema();
        let table = unmanaged_table(&schema, table)?;
        let (key, key_type) = unmanaged_key(table)?;
        let sql = format!(
            "DELETE FROM {} WHERE {} = ($1::jsonb #>> '{{}}')::{key_type} RETURNING 1",
            quote_ident(&table.name)?,
            quote_ident(key)?
        );
        self.write_named_row(call_id, table, &sql, &[&JsonbParam(key_json)], key_json)
            .await
    }

    /// Runs a statement that writes the unmanaged row `key_json` names and answers a row if it
    /// found one: `NOT_FOUND` if not.
    async fn write_named_row(
        &self,
        call_id: u32,
        table: &Table,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        key_json: &str,
    ) -> Result<()> {
        let call = self.writing_call(call_id)?;
        let rows = self.run_with(&call, sql, params, ConvoyError::from).await?;
        if rows.is_empty() {
            return Err(ConvoyError::NotFound(format!(
                "there is no row of {} with primary key {key_json}",
                table.name
            )));
        }
        wrote_table(&call, &table.name);
        Ok(())
    }

    /// Replaces a document's fields (JSON object text, validated in JavaScript). A missing
    /// document is `NOT_FOUND`.
    pub async fn replace(
        &self,
        call_id: u32,
        table: &str,
        id: &str,
        document_json: &str,
    ) -> Result<()> {
        self.expect_document(call_id, table, id).await?;
        self.queue_replace(call_id, table, id, document_json)
    }

    /// Deletes a document. A missing document is `NOT_FOUND`.
    pub async fn delete(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        self.expect_document(call_id, table, id).await?;
        self.queue_delete(call_id, table, id)
    }

    /// Makes sure the call has seen the document in `table`, asking Postgres if need be.
    async fn expect_document(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        if self.seen(call_id, id)? == Seen::Unknown {
            self.locate(call_id, Some(table), &parse_id(id)?.to_string())
                .await?;
        }
        Ok(())
    }

    /// Queues a replace of a document the call has seen (read, located or written); one it has
    /// not seen, or not in `table`, is `NOT_FOUND`.
    pub fn queue_replace(
        &self,
        call_id: u32,
        table: &str,
        id: &str,
        document_json: &str,
    ) -> Result<()> {
        let sql = plan_replace(&self.schema(), table)?;
        let call = self.writing_call(call_id)?;
        let id = self.seen_in(&call, table, id)?;
        let data = document_json.to_owned();
        self.queue(&call, table, id, sql, Change::Replace { data })
    }

    /// Queues a delete of a document the call has seen, as [`Engine::queue_replace`].
    pub fn queue_delete(&self, call_id: u32, table: &str, id: &str) -> Result<()> {
        let sql = plan_delete(&self.schema(), table)?;
        let call = self.writing_call(call_id)?;
        let id = self.seen_in(&call, table, id)?;
        self.queue(&call, table, id, sql, Change::Delete)
    }

    /// The id, when the call has seen that document in `table`.
    fn seen_in(&self, call: &Call, table: &str, id: &str) -> Result<Uuid> {
        let id = parse_id(id)?;
        let writes = call.writes();
        match writes.seen.get(&id) {
            Some(seen) if seen.table == table && seen.stored.is_some() => Ok(id),
            _ => Err(ConvoyError::NotFound(format!(
                "there is no document {id} in {table}"
            ))),
        }
    }

    /// Queues a write of the call's (see [`Writes`]), keeping what it has seen up to date.
    fn queue(&self, call: &Call, table: &str, id: Uuid, sql: String, change: Change) -> Result<()> {
        let mut writes = call.writes();
        if let Change::Insert { data, .. } | Change::Replace { data } = &change {
            if let Err(error) = expect_object(data) {
                writes.failure.get_or_insert(error.clone());
                return Err(error);
            }
        }
        let old = writes
            .seen
            .get(&id)
            .and_then(|seen| seen.stored.as_ref())
            .map(|(_, data)| data.clone());
        let new = match &change {
            Change::Insert { data, .. } | Change::Replace { data } => Some(data.clone()),
            Change::Delete => None,
        };
        writes.changes.push(Changed {
            table: table.to_owned(),
            id: Some(id),
            old,
            new,
        });
        let stored = match &change {
            Change::Insert { data, created_at } => Some((epoch_millis(*created_at), data.clone())),
            Change::Replace { data } => writes
                .seen
                .get(&id)
                .and_then(|seen| seen.stored.as_ref())
                .map(|(creation_time, _)| (*creation_time, data.clone())),
            Change::Delete => None,
        };
        if writes.seen.len() < SEEN_LIMIT || writes.seen.contains_key(&id) {
            let table = table.to_owned();
            writes.seen.insert(id, SeenDocument { table, stored });
        }
        writes.pending.push(PendingWrite {
            table: table.to_owned(),
            id,
            sql,
            change,
        });
        Ok(())
    }

    fn writing_call(&self, call_id: u32) -> Result<Arc<Call>> {
        let call = self.call(call_id)?;
        if call.kind != CallKind::Mutation {
            return Err(ConvoyError::Internal(
                "queries cannot write; use a mutation".into(),
            ));
        }
        Ok(call)
    }

    /// Runs the app's own SQL; `params_json` is a JSON array bound to `$1…$n`.
    pub async fn raw(&self, call_id: u32, sql: &str, params_json: &str) -> Result<String> {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(params_json).map_err(|error| {
                ConvoyError::InvalidArgs(format!(
                    "raw SQL parameters must be a JSON array: {error}"
                ))
            })?;
        let call = self.call(call_id)?;
        if call.single_statement {
            // In a query, raw SQL runs only inside the READ ONLY transaction: without one, a
            // write in it would commit on its own.
            call.transaction.lock().await.needs_restart = true;
            return Err(ConvoyError::Restart);
        }
        call.read(|reads| reads.everything = true);
        if call.kind == CallKind::Mutation {
            call.writes().wrote_anything = true;
        }
        let params: Vec<crate::raw::JsonParam> = values.iter().map(crate::raw::JsonParam).collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let schema = self.schema();
        let rows = self
            .run_with(&call, sql, &refs, |error| {
                crate::raw::explain_failure(error, &schema)
            })
            .await;
        // The app's SQL may have changed any document.
        call.writes().seen.clear();
        crate::raw::rows_json(&rows?)
    }

    async fn run(&self, call_id: u32, statement: &Statement) -> Result<Vec<tokio_postgres::Row>> {
        let call = self.call(call_id)?;
        let params = statement.param_refs();
        if !call.single_statement {
            return self
                .run_with(&call, &statement.sql, &params, ConvoyError::from)
                .await;
        }
        let mut transaction = self.open(&call).await?;
        if transaction.statements > 0 {
            transaction.needs_restart = true;
            return Err(ConvoyError::Restart);
        }
        transaction.statements += 1;
        // The connection goes back to the pool as soon as its one statement is answered.
        let connection = transaction.connection.take().expect("open() connects");
        let result = async {
            let prepared = connection.prepare_cached(&statement.sql).await?;
            connection.query(&prepared, &params).await
        }
        .await;
        result.map_err(|error| transaction.fail(error.into()))
    }

    /// Runs one statement on the call's transaction, pipelined behind `BEGIN` if this is the first
    /// and behind the writes not sent yet; a failure marks the transaction failed, described by
    /// `describe` when it is the statement's own.
    async fn run_with(
        &self,
        call: &Call,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        describe: impl FnOnce(tokio_postgres::Error) -> ConvoyError,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let mut transaction = self.open(call).await?;
        let begin = (!transaction.began).then(|| call.kind.begin_sql());
        transaction.began = true;
        let pending = std::mem::take(&mut call.writes().pending);
        let connection = transaction.connection.as_ref().expect("open() connects");
        let work = async {
            let prepared = connection.prepare_cached(sql).await?;
            connection.query(&prepared, params).await
        };
        let result = match pipelined(connection, begin, &pending, work).await {
            (Ok(()), Some(rows)) => rows.map_err(describe),
            (sent, _) => sent.and(Err(ConvoyError::Internal("a write was not sent".into()))),
        };
        result.map_err(|error| transaction.fail(error))
    }

    async fn connection_for(&self, kind: CallKind) -> Result<Object> {
        match kind {
            CallKind::Query => self.database.connection().await,
            CallKind::Mutation => self.database.writer().await,
        }
    }

    /// Locks the call's transaction, taking a pooled connection at its first use.
    async fn open<'a>(&self, call: &'a Call) -> Result<tokio::sync::MutexGuard<'a, Transaction>> {
        let mut transaction = call.transaction.lock().await;
        if transaction.finished {
            return Err(ConvoyError::Internal(
                "ctx.db was used after its function returned (is an await missing?)".into(),
            ));
        }
        if let Some(failure) = &transaction.failure {
            return Err(failure.clone());
        }
        if transaction.connection.is_none() {
            transaction.connection = Some(self.connection_for(call.kind).await?);
        }
        Ok(transaction)
    }
}

impl Transaction {
    fn fail(&mut self, error: ConvoyError) -> ConvoyError {
        if self.failure.is_none() {
            self.failure = Some(error.clone());
        }
        error
    }
}

/// A document as it is written: a JSON object Postgres will take (JSONB refuses NUL characters).
fn expect_object(document_json: &str) -> Result<()> {
    if !document_json.trim_start().starts_with('{') {
        return Err(ConvoyError::InvalidArgs(
            "a document must be a JSON object".into(),
        ));
    }
    if has_nul(document_json) {
        return Err(ConvoyError::InvalidArgs(
            "a document cannot hold the NUL character (\\u0000): Postgres JSONB refuses it".into(),
        ));
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ConvoyError::InvalidArgs(format!("{id:?} is not a document id")))
}

/// Several commits as one.
fn combined(batch: &[Arc<WriteSet>]) -> WriteSet {
    WriteSet {
        everything: batch.iter().any(|commit| commit.everything),
        writes: batch
            .iter()
            .flat_map(|commit| commit.writes.iter().cloned())
            .collect(),
    }
}
