//! Writes made outside Convoy (psql, a migration, another service) reported to the live queries
//! of every process, as precisely as Convoy's own: for each row a statement wrote, its table, its
//! id and, for an update or a delete, the row as it was — from which, with the row as it is now,
//! Convoy makes the write set a Convoy mutation publishes (DESIGN.md § Reactivity 2), so that a
//! write to user A's rows wakes none of user B's live queries.
//!
//! Triggers with transition tables, one per kind of statement, put the rows of each statement in
//! [`QUEUE`], an unlogged table that Convoy's processes drain
//! (`reactivity::external_writes`): no replication slot, so it works on every host. A trigger
//! that sent `NOTIFY` instead cost its writer more than half its inserts, because every notifying
//! commit takes one lock for the whole cluster; a row of an unlogged table costs a few percent
//! (docs/benchmarks.md § Writes from outside Convoy). An insert queues only its ids: what it wrote
//! is read back by whoever drains the queue, off the writer's path. A statement of many rows (a
//! migration updating a million) is told as "this table changed" instead, after queueing at most
//! [`ROWS_PER_STATEMENT`] + 1 of its rows, so it never stalls its writer. Convoy's own
//! transactions set `convoy.writer`, and the triggers stay quiet for them (their writes travel by
//! themselves): Convoy's writes never pay for this.
//!
//! The function copies old rows whole as JSON (`to_jsonb`), whatever their columns: so it goes on
//! working unchanged while a graduation moves the table from `data` to columns.

use crate::error::Result;
use crate::schema::Table;
use crate::sql::quote_ident;

/// The rows of one statement told one by one; more are told as the table.
pub const ROWS_PER_STATEMENT: usize = 50;

/// Where the triggers put what they saw: the table, the statement's kind (`TG_OP`), the row's id
/// as text and, for an update or a delete, the row before as JSON. Without an id: anything in the
/// table may have changed.
pub const QUEUE: &str = "convoy.changes";

/// The queue, created once. Unlogged: a crash empties it, and every process runs its live
/// queries again when its connections come back anyway. The processes that drain it vacuum it
/// (every poll scans it), truncating only once it is idle: a truncation locks out the writers.
pub const CREATE_QUEUE: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS convoy.changes (
  table_name text NOT NULL,
  operation text NOT NULL,
  id text,
  old_row jsonb
) WITH (vacuum_truncate = false, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0)";

/// The triggers' names on each table: one per statement kind (a trigger with transition tables
/// takes one event), and TRUNCATE, which has no rows to tell.
pub const TRIGGERS: [&str; 4] = [
    "convoy_notify_insert",
    "convoy_notify_update",
    "convoy_notify_delete",
    "convoy_notify_truncate",
];

/// The trigger of before, table-wide and statement-level, which a new install replaces.
pub const OLD_TRIGGER: &str = "convoy_notify_change";

/// The function of one table's triggers.
pub fn function_name(table: &Table) -> Result<String> {
    Ok(format!(
        "convoy.{}",
        quote_ident(&format!("notify_{}", table.name))?
    ))
}

/// The function the triggers of `table` run. It runs as its owner (the role that ran
/// `convoy migrate`), so a writer needs no rights on the queue. Every name in it that a
/// `search_path` could resolve is qualified, so a writer's own cannot put other functions or
/// operators in their place: a `SET search_path` on the function would do as much, but it made
/// every statement in it plan anew at each call (8 % of a writer's inserts).
pub fn function(table: &Table) -> Result<String> {
    let name = function_name(table)?;
    let most = ROWS_PER_STATEMENT;
    let limit = most + 1;
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  told bigint;
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    INSERT INTO convoy.changes (table_name, operation, id)
      SELECT TG_TABLE_NAME, TG_OP, CAST(t.id AS pg_catalog.text) FROM new_rows t LIMIT {limit};
  ELSIF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    INSERT INTO convoy.changes (table_name, operation) VALUES (TG_TABLE_NAME, TG_OP);
  ELSE
    INSERT INTO convoy.changes (table_name, operation, id, old_row)
      SELECT TG_TABLE_NAME, TG_OP, CAST(t.id AS pg_catalog.text), pg_catalog.to_jsonb(t)
      FROM old_rows t LIMIT {limit};
  END IF;
  GET DIAGNOSTICS told = ROW_COUNT;
  IF told OPERATOR(pg_catalog.>) {most} THEN
    INSERT INTO convoy.changes (table_name, operation) VALUES (TG_TABLE_NAME, TG_OP);
  END IF;
  RETURN NULL;
END
$$"
    ))
}

/// The triggers of `table`, replacing the table-wide one of before. Their `WHEN` skips the
/// function for Convoy's own transactions, which tell their writes themselves.
pub fn triggers(table: &Table) -> Result<Vec<String>> {
    let quoted = quote_ident(&table.name)?;
    let function = function_name(table)?;
    let when = "WHEN (current_setting('convoy.writer', true) IS DISTINCT FROM 'convoy')";
    Ok(vec![
        format!("DROP TRIGGER IF EXISTS {OLD_TRIGGER} ON {quoted}"),
        format!(
            "CREATE OR REPLACE TRIGGER {} AFTER INSERT ON {quoted} REFERENCING NEW TABLE AS new_rows \
             FOR EACH STATEMENT {when} EXECUTE FUNCTION {function}()",
            TRIGGERS[0]
        ),
        format!(
            "CREATE OR REPLACE TRIGGER {} AFTER UPDATE ON {quoted} REFERENCING OLD TABLE AS old_rows \
             FOR EACH STATEMENT {when} EXECUTE FUNCTION {function}()",
            TRIGGERS[1]
        ),
        format!(
            "CREATE OR REPLACE TRIGGER {} AFTER DELETE ON {quoted} REFERENCING OLD TABLE AS old_rows \
             FOR EACH STATEMENT {when} EXECUTE FUNCTION {function}()",
            TRIGGERS[2]
        ),
        format!(
            "CREATE OR REPLACE TRIGGER {} AFTER TRUNCATE ON {quoted} FOR EACH STATEMENT {when} EXECUTE FUNCTION {function}()",
            TRIGGERS[3]
        ),
    ])
}
