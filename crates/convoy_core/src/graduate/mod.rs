//! `convoy graduate`: a live document table moved to relational storage while every process keeps
//! serving it (GRADUATION.md § Running it online). Each step is recorded in `convoy.graduations`
//! as it ends, and the backfill's place with every batch, so that a run stopped anywhere —
//! Ctrl-C, `kill -9`, a lost connection — goes on from there when run again.
//!
//! Until `complete`, `data` stays the truth: a trigger keeps the columns equal to it, so whichever
//! way a process reads (it switches to the columns when told, see `Engine::refresh_stages`) it
//! reads the same, and `abort` only drops what expand added.

mod backfill;
mod ddl;
mod locks;

use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::error::{ConvoyError, Result};
use crate::schema::{Stage, Table};
use crate::sql::quote_ident;
use crate::Engine;

pub use backfill::BackfillOptions;

/// Where a graduation is, as `convoy graduate --status` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraduationStatus {
    pub table: String,
    /// `documents`, `graduating` or `relational`.
    pub stage: String,
    /// While graduating: `expand`, `backfill`, `validate` or `columns` (served from the columns).
    pub step: Option<String>,
    pub rows_done: i64,
    pub rows_total: i64,
    pub batch_size: i32,
    /// Seconds since the graduation started.
    pub seconds: f64,
}

/// What a graduation runs, step by step, for review (`--dry-run` writes it to files).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraduationPlan {
    pub expand: Vec<String>,
    pub backfill: String,
    pub validate: Vec<String>,
    pub indexes: Vec<String>,
    pub complete: Vec<String>,
    pub abort: Vec<String>,
}

impl Engine {
    /// The table as it will be once relational: the declared table, at the relational stage.
    fn graduation_target(&self, name: &str) -> Result<Table> {
        let table = self.schema().table(name)?.clone();
        if !table.managed {
            return Err(ConvoyError::InvalidArgs(format!(
                "{name} is unmanaged: Convoy does not own it, so it cannot graduate it"
            )));
        }
        Ok(Table {
            stage: Stage::Relational,
            ..table
        })
    }

    pub fn graduation_plan(&self, name: &str) -> Result<GraduationPlan> {
        let target = self.graduation_target(name)?;
        Ok(GraduationPlan {
            expand: ddl::expand(&target)?,
            backfill: ddl::backfill_batch(&target)?,
            validate: ddl::validate(&target)?,
            indexes: ddl::indexes(&target)?
                .into_iter()
                .map(|(_, statement)| statement)
                .collect(),
            complete: ddl::complete(&target)?,
            abort: ddl::abort(&target)?,
        })
    }

    pub async fn graduation_status(&self, name: &str) -> Result<GraduationStatus> {
        status(self.database(), name).await
    }

    /// Runs the graduation of `name` up to serving from the columns, from wherever it stopped.
    pub async fn graduate(
        &self,
        name: &str,
        options: &BackfillOptions,
    ) -> Result<GraduationStatus> {
        let database = self.database();
        let client = database.schema_connection().await?;
        client.batch_execute(ddl::BOOKKEEPING).await?;
        let current = status(database, name).await?;
        let target = match current.stage.as_str() {
            "relational" => {
                return Err(ConvoyError::InvalidArgs(format!(
                    "{name} is relational already: there is nothing to graduate"
                )))
            }
            "graduating" => self.resumed_target(name).await?,
            _ => {
                let target = self.graduation_target(name)?;
                self.begin(&target).await?;
                target
            }
        };
        let mut step = status(database, name).await?.step;
        while let Some(current) = step.clone() {
            match current.as_str() {
                "expand" => {
                    for statement in ddl::expand(&target)? {
                        locks::run(database, &statement).await?;
                    }
                    advance(database, name, "backfill").await?;
                }
                "backfill" => {
                    backfill::run(database, &target, options).await?;
                    advance(database, name, "validate").await?;
                }
                "validate" => {
                    for statement in ddl::validate(&target)? {
                        locks::run(database, &statement).await?;
                    }
                    for (index, statement) in ddl::indexes(&target)? {
                        locks::build_index(database, &index, &statement).await?;
                    }
                    advance(database, name, "columns").await?;
                    // Every process reads from the columns from now on.
                    client.batch_execute(&ddl::notify_stages()?).await?;
                }
                _ => break,
            }
            step = status(database, name).await?.step;
        }
        status(database, name).await
    }

    /// The target of a graduation under way: the plan it recorded, not what the app says now.
    async fn resumed_target(&self, name: &str) -> Result<Table> {
        let client = self.database().connection().await?;
        let plan: String = client
            .query_one(
                "SELECT plan::text FROM convoy.graduations WHERE table_name = $1",
                &[&name],
            )
            .await?
            .get(0);
        let mut target = self.graduation_target(name)?;
        target.field_columns = serde_json::from_str(&plan).map_err(|error| {
            ConvoyError::Internal(format!(
                "the recorded graduation plan is unreadable: {error}"
            ))
        })?;
        Ok(target)
    }

    /// Records a new graduation: its plan, its rows, the stage; refuses a column that is there
    /// already (`abort` must be able to drop every column the graduation added, and only those).
    async fn begin(&self, target: &Table) -> Result<()> {
        let client = self.database().schema_connection().await?;
        let existing: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
                &[&quote_ident(&target.name)?],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !existing.iter().any(|column| column == "data") {
            return Err(ConvoyError::InvalidArgs(format!(
                "{} holds no documents (it has no data column): there is nothing to graduate",
                target.name
            )));
        }
        if let Some(column) = target
            .field_columns
            .iter()
            .find(|column| existing.contains(&column.column))
        {
            return Err(ConvoyError::InvalidArgs(format!(
                "{} has a column {} already (added by hand?), where the graduation would put the field {}: \
                 drop or rename that column, or choose another name with .relational({{ columns: {{ {}: '...' }} }})",
                target.name, column.column, column.field, column.field
            )));
        }
        let plan = serde_json::to_string(&target.field_columns).expect("columns serialize");
        let quoted = quote_ident(&target.name)?;
        let total: i64 = client
            .query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
            .await?
            .get(0);
        client
            .execute(
                "INSERT INTO convoy.graduations (table_name, step, plan, rows_total) VALUES ($1, 'expand', $2::text::jsonb, $3)",
                &[&target.name, &plan, &total],
            )
            .await?;
        client
            .execute(
                "UPDATE convoy.tables SET stage = 'graduating' WHERE name = $1",
                &[&target.name],
            )
            .await?;
        client.batch_execute(&ddl::notify_stages()?).await?;
        Ok(())
    }

    /// `--complete`: the columns become the truth, `data` goes; the table is then what
    /// `.relational()` creates.
    pub async fn complete_graduation(&self, name: &str) -> Result<GraduationStatus> {
        let current = status(self.database(), name).await?;
        if current.step.as_deref() != Some("columns") {
            return Err(ConvoyError::InvalidArgs(match current.step {
                None => format!("{name} is not graduating (it is {}): nothing to complete", current.stage),
                Some(step) => format!(
                    "the graduation of {name} is at its {step} step: run `npx convoy graduate {name}` to finish it first"
                ),
            }));
        }
        let target = self.resumed_target(name).await?;
        locks::run_in_transaction(self.database(), &ddl::complete(&target)?).await?;
        self.drop_sync_function(&target).await?;
        status(self.database(), name).await
    }

    /// `--abort`: the table exactly as it was before the graduation began.
    pub async fn abort_graduation(&self, name: &str) -> Result<GraduationStatus> {
        let current = status(self.database(), name).await?;
        if current.stage != "graduating" {
            return Err(ConvoyError::InvalidArgs(format!(
                "{name} is not graduating (it is {}): nothing to abort",
                current.stage
            )));
        }
        let target = match self.resumed_target(name).await {
            Ok(target) => target,
            // Stopped before its plan was recorded: only the stage to put back.
            Err(_) => self.graduation_target(name)?,
        };
        locks::run_in_transaction(self.database(), &ddl::abort(&target)?).await?;
        self.drop_sync_function(&target).await?;
        status(self.database(), name).await
    }
}

impl Engine {
    /// The trigger's function, once the trigger is gone (its own statement: dropping it inside
    /// the short transaction would only lengthen it).
    async fn drop_sync_function(&self, target: &Table) -> Result<()> {
        self.database()
            .schema_connection()
            .await?
            .batch_execute(&format!(
                "DROP FUNCTION IF EXISTS {}()",
                ddl::sync_function(target)?
            ))
            .await?;
        Ok(())
    }
}

async fn advance(database: &Database, name: &str, step: &str) -> Result<()> {
    database
        .schema_connection()
        .await?
        .execute(
            "UPDATE convoy.graduations SET step = $2, updated_at = now() WHERE table_name = $1",
            &[&name, &step],
        )
        .await?;
    Ok(())
}

async fn status(database: &Database, name: &str) -> Result<GraduationStatus> {
    let client = database.connection().await?;
    let stage: Option<String> = client
        .query_opt(
            "SELECT stage FROM convoy.tables WHERE name = $1 AND to_regclass('convoy.tables') IS NOT NULL",
            &[&name],
        )
        .await?
        .map(|row| row.get(0));
    let Some(stage) = stage else {
        return Err(ConvoyError::InvalidArgs(format!(
            "{name} is not a table Convoy created here (run `npx convoy migrate` first?)"
        )));
    };
    let has_graduations: bool = client
        .query_one("SELECT to_regclass('convoy.graduations') IS NOT NULL", &[])
        .await?
        .get(0);
    let row = if has_graduations {
        client
            .query_opt(
                "SELECT step, rows_done, rows_total, batch_size, extract(epoch FROM now() - started_at)::float8
                 FROM convoy.graduations WHERE table_name = $1",
                &[&name],
            )
            .await?
    } else {
        None
    };
    Ok(GraduationStatus {
        table: name.to_owned(),
        stage,
        step: row.as_ref().map(|row| row.get(0)),
        rows_done: row.as_ref().map_or(0, |row| row.get(1)),
        rows_total: row.as_ref().map_or(0, |row| row.get(2)),
        batch_size: row.as_ref().map_or(0, |row| row.get(3)),
        seconds: row.as_ref().map_or(0.0, |row| row.get(4)),
    })
}
