//! The planner: the query IR that `ctx.db.query(...)` builds in JavaScript (docs/architecture.md)
//! becomes one parameterised statement. Names come from the schema and are quoted; every value
//! is a bind parameter.

mod column_documents;
pub(crate) mod columns;
mod ir;
pub mod page;
pub mod rows;
mod select;
mod statement;
mod storage;
mod typed_rows;
mod writes;

pub use column_documents::ColumnsShape;
pub use ir::*;
pub(crate) use select::build_select;
pub use select::{order_key, plan_get, plan_query};
pub use statement::*;
pub use storage::OrderKey;
pub use typed_rows::{plan_insert_columns, ColumnValues, ColumnsInsert};
pub use writes::*;

#[cfg(test)]
mod tests;
