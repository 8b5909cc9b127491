//! A planned statement: SQL text, its bind parameters, and what its rows hold.

use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::Result;
use crate::schema::Stage;

/// A bind parameter of a planned statement.
#[derive(Debug)]
pub enum Param {
    Json(Value),
    Uuid(Uuid),
    Time(SystemTime),
    Int(i64),
    Text(String),
    Float(f64),
    Bool(bool),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Json(value) => value,
            Self::Uuid(id) => id,
            Self::Time(time) => time,
            Self::Int(number) => number,
            Self::Text(text) => text,
            Self::Float(number) => number,
            Self::Bool(flag) => flag,
        }
    }
}

/// SQL text plus its parameters, ready for `prepare_cached`.
#[derive(Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    pub shape: RowShape,
}

/// What a statement's rows hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowShape {
    /// `id, data, created_at` of a managed table.
    Document,
    /// `id, NULL, created_at`, then a relational table's field columns from `first` on, of which
    /// the core writes the document (`column_documents`).
    Columns {
        first: usize,
        shape: std::sync::Arc<super::ColumnsShape>,
    },
    /// One column: the document as JSON text (an unmanaged table's row).
    JsonText,
}

impl Statement {
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(Param::as_sql).collect()
    }

    pub(crate) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }
}

pub const DOCUMENT_COLUMNS: &str = "id, data, created_at";

/// What `cell` holds when it was planned for `stage` (a statement, or an `Arc` of a plan), else
/// planned now (and kept).
pub(crate) fn planned<T: Clone>(
    cell: &OnceLock<(Stage, T)>,
    stage: Stage,
    plan: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Some((planned_for, planned)) = cell.get() {
        if *planned_for == stage {
            return Ok(planned.clone());
        }
    }
    let planned = plan()?;
    let _ = cell.set((stage, planned.clone()));
    Ok(planned)
}
