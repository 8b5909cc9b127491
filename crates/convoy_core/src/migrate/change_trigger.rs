//! Writes made outside Convoy (psql, a migration, another service) reported to the live queries
//! of every process, as precisely as Convoy's own: for each row a statement wrote, its table, id
//! and the old and new values of the table's indexed fields — the write set a Convoy mutation
//! publishes (DESIGN.md § Reactivity 2), so that a write to user A's rows wakes none of user B's
//! live queries.
//!
//! Triggers with transition tables, one per kind of statement, collect the rows after each
//! statement and `NOTIFY` them: no replication slot, so it works on every host. A statement of
//! many rows (a migration updating a million) is told as "this table changed" instead, after
//! reading at most [`ROWS_PER_NOTICE`] of its rows, so it never stalls its writer or floods the
//! channel. Convoy's own transactions set `convoy.writer`, and the triggers stay quiet for them
//! (their writes travel by themselves): Convoy's writes never pay for this.
//!
//! The function reads each row as JSON (`to_jsonb`), and finds the fields in `data` or in the
//! columns, whichever the row has: so it goes on working unchanged while a graduation moves the
//! table from one to the other.

use crate::error::Result;
use crate::reactivity::CHANNEL;
use crate::schema::{ColumnKind, Table};
use crate::sql::{quote_ident, quote_literal};

/// The rows of one statement told one by one; more are told as the table.
pub const ROWS_PER_NOTICE: usize = 50;

/// Postgres refuses notification payloads of 8000 bytes or more.
const PAYLOAD_LIMIT: usize = 7900;

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

/// The indexed fields of a row as a JSONB object, from the row's JSON `r`: out of `data` for a
/// document table, out of the columns once it is relational. A missing field is left out, as a
/// Convoy write set leaves it out.
fn indexed_fields(table: &Table, row: &str) -> Result<String> {
    let mut fields: Vec<&str> = Vec::new();
    for index in &table.indexes {
        for field in &index.fields {
            if !fields.contains(&field.as_str()) {
                fields.push(field);
            }
        }
    }
    if fields.is_empty() {
        return Ok("'{}'::jsonb".to_owned());
    }
    let names = fields
        .iter()
        .map(|field| quote_literal(field))
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    // A trigger must never fail its writer: `data` that is no object (psql can write one) has no
    // fields to tell.
    let from_data = format!(
        "(SELECT coalesce(jsonb_object_agg(key, value), '{{}}'::jsonb) FROM jsonb_each(CASE WHEN jsonb_typeof({row}->'data') = 'object' THEN {row}->'data' ELSE '{{}}'::jsonb END) WHERE key = ANY (ARRAY[{names}]))"
    );
    let mut pairs = Vec::new();
    let mut missing = Vec::new();
    for field in &fields {
        let Some(column) = table.field_column(field) else {
            continue;
        };
        let key = quote_literal(field)?;
        let value = format!("{row}->{}", quote_literal(&column.column)?);
        pairs.push(format!("{key}, {value}"));
        // A typed column's NULL is `null` for a required nullable field, else a missing field;
        // as JSON a row shows both as `null`.
        let nullable_value = column.kind != ColumnKind::Jsonb && column.null_is_json_null();
        if !nullable_value {
            missing.push(format!("CASE WHEN {value} = 'null'::jsonb THEN {key} END"));
        }
    }
    let from_columns = if pairs.is_empty() {
        "'{}'::jsonb".to_owned()
    } else if missing.is_empty() {
        format!("jsonb_build_object({})", pairs.join(", "))
    } else {
        format!(
            "(jsonb_build_object({}) - array_remove(ARRAY[{}]::text[], NULL))",
            pairs.join(", "),
            missing.join(", ")
        )
    };
    Ok(format!(
        "CASE WHEN {row} ? 'data' THEN {from_data} ELSE {from_columns} END"
    ))
}

/// The function the triggers of `table` run.
pub fn function(table: &Table) -> Result<String> {
    let name = function_name(table)?;
    let new_fields = indexed_fields(table, "n")?;
    let old_fields = indexed_fields(table, "o")?;
    let channel = quote_literal(CHANNEL)?;
    let limit = ROWS_PER_NOTICE + 1;
    let most = ROWS_PER_NOTICE;
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  writes jsonb;
  told bigint := 0;
  rows_written bigint := 0;
  payload text;
BEGIN
  IF current_setting('convoy.writer', true) IS NOT DISTINCT FROM 'convoy' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    SELECT count(*), jsonb_agg(jsonb_build_object('table', TG_TABLE_NAME, 'id', n->>'id', 'old', NULL, 'new', {new_fields}))
      INTO told, writes FROM (SELECT to_jsonb(t) AS n FROM new_rows t LIMIT {limit}) AS s;
    rows_written := told;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT count(*) INTO rows_written FROM (SELECT 1 FROM new_rows LIMIT {limit}) AS s;
    SELECT count(*), jsonb_agg(jsonb_build_object('table', TG_TABLE_NAME, 'id', n->>'id', 'old', {old_fields}, 'new', {new_fields}))
      INTO told, writes
      FROM (SELECT to_jsonb(b) AS o, to_jsonb(a) AS n FROM new_rows a JOIN old_rows b ON a.id = b.id LIMIT {limit}) AS s;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT count(*), jsonb_agg(jsonb_build_object('table', TG_TABLE_NAME, 'id', o->>'id', 'old', {old_fields}, 'new', NULL))
      INTO told, writes FROM (SELECT to_jsonb(t) AS o FROM old_rows t LIMIT {limit}) AS s;
    rows_written := told;
  END IF;
  IF TG_OP <> 'TRUNCATE' AND rows_written = 0 THEN
    RETURN NULL;
  END IF;
  -- Told row by row, unless there are too many rows, an id changed, or it would not fit.
  IF TG_OP = 'TRUNCATE' OR told > {most} OR told < rows_written OR writes IS NULL THEN
    writes := NULL;
  ELSE
    payload := jsonb_build_object('origin', 'postgres', 'everything', false, 'writes', writes)::text;
    IF length(payload) > {PAYLOAD_LIMIT} THEN
      writes := NULL;
    END IF;
  END IF;
  IF writes IS NULL THEN
    payload := jsonb_build_object('origin', 'postgres', 'everything', false,
      'writes', jsonb_build_array(jsonb_build_object('table', TG_TABLE_NAME)))::text;
  END IF;
  PERFORM pg_notify({channel}, payload);
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
