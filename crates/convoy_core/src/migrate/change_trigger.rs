//! Writes made outside Convoy (psql, a migration, another service) reported to the live queries
//! of every process, as precisely as Convoy's own: for each row a statement wrote, its table and
//! its row before and after — from which Convoy takes the id and the indexed fields, the write set
//! a Convoy mutation publishes (DESIGN.md § Reactivity 2) — so that a write to user A's rows wakes
//! none of user B's live queries.
//!
//! Triggers with transition tables, one per kind of statement, put the rows of each statement in
//! [`QUEUE`], an unlogged table that Convoy's processes drain
//! (`reactivity::external_writes`): no replication slot, so it works on every host. A trigger
//! that sent `NOTIFY` instead cost its writer more than half its inserts, because every notifying
//! commit takes one lock for the whole cluster; a row of an unlogged table costs a few percent
//! (docs/benchmarks.md § Writes from outside Convoy). A statement of many rows (a migration
//! updating a million) is told as "this table changed" instead, after copying at most
//! [`ROWS_PER_STATEMENT`] + 1 of its rows, so it never stalls its writer. Convoy's own
//! transactions set `convoy.writer`, and the triggers stay quiet for them (their writes travel by
//! themselves): Convoy's writes never pay for this.
//!
//! The function copies each row whole as JSON (`to_jsonb`), whatever its columns: so it goes on
//! working unchanged while a graduation moves the table from `data` to columns, and the writer
//! pays for no more than the copy.

use crate::error::Result;
use crate::schema::Table;
use crate::sql::quote_ident;

/// The rows of one statement told one by one; more are told as the table.
pub const ROWS_PER_STATEMENT: usize = 50;

/// Where the triggers put what they saw: a table name, and the row before and after as JSON
/// (both NULL: anything in the table may have changed).
pub const QUEUE: &str = "convoy.changes";

/// The queue, created once. Unlogged: a crash empties it, and every process runs its live
/// queries again when its connections come back anyway. Vacuumed as soon as a thousand rows are
/// dead, since every poll scans it.
pub const CREATE_QUEUE: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS convoy.changes (
  table_name text NOT NULL,
  old_row jsonb,
  new_row jsonb
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0)";

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
/// `convoy migrate`), so a writer needs no rights on the queue, and with a fixed `search_path`,
/// so a writer's own cannot put other functions in its place.
pub fn function(table: &Table) -> Result<String> {
    let name = function_name(table)?;
    let most = ROWS_PER_STATEMENT;
    let limit = most + 1;
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  told bigint := 0;
  written bigint := 0;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO convoy.changes (table_name, new_row)
      SELECT TG_TABLE_NAME, to_jsonb(t) FROM new_rows t LIMIT {limit};
    GET DIAGNOSTICS told = ROW_COUNT;
    written := told;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT count(*) INTO written FROM (SELECT 1 FROM new_rows LIMIT {limit}) AS s;
    IF written <= {most} THEN
      INSERT INTO convoy.changes (table_name, old_row, new_row)
        SELECT TG_TABLE_NAME, to_jsonb(b), to_jsonb(a) FROM new_rows a JOIN old_rows b ON a.id = b.id;
      GET DIAGNOSTICS told = ROW_COUNT;
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO convoy.changes (table_name, old_row)
      SELECT TG_TABLE_NAME, to_jsonb(t) FROM old_rows t LIMIT {limit};
    GET DIAGNOSTICS told = ROW_COUNT;
    written := told;
  ELSE
    written := 1;
  END IF;
  -- The table as a whole when there are too many rows, an update changed an id (its rows no
  -- longer pair up), or the statement was a TRUNCATE.
  IF told > {most} OR told < written THEN
    INSERT INTO convoy.changes (table_name) VALUES (TG_TABLE_NAME);
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
            "CREATE OR REPLACE TRIGGER {} AFTER UPDATE ON {quoted} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
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
