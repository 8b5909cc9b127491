//! Reads: documents by id, queries and pages, each recorded in the call's read set.

use uuid::Uuid;

use super::call::{CallKind, SeenDocument};
use super::Engine;
use crate::document::{documents_json, Parts};
use crate::error::{ConvoyError, Result};
use crate::plan::{plan_get, plan_query, QueryPlan};
use crate::reactivity::{IndexRead, Key};

impl Engine {
    /// The document with this id as JSON text, if there is one; `table: None` looks in every
    /// table.
    pub async fn get(&self, call_id: u32, table: Option<&str>, id: &str) -> Result<Option<String>> {
        Ok(self
            .locate(call_id, table, id)
            .await?
            .map(|(_, document)| document))
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
            let stored = Some((parts.creation_time, parts.data.to_string()));
            let seen = SeenDocument {
                table: table.clone(),
                stored,
            };
            call.writes().seen.insert(parts.id, seen);
        }
        Ok(Some((table, parts.to_json()?)))
    }

    /// Records what a query plan reads: its index's equality prefix, or its whole table.
    pub(super) fn record_read(&self, call_id: u32, plan: &QueryPlan) -> Result<()> {
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
    pub(super) fn read_documents(
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

    /// The documents `plan` selects, as a JSON array.
    pub async fn query(&self, call_id: u32, plan: &QueryPlan) -> Result<String> {
        let statement = plan_query(&self.schema(), plan)?;
        self.record_read(call_id, plan)?;
        let rows = self.run(call_id, &statement).await?;
        match &statement.shape {
            shape @ (crate::plan::RowShape::Document | crate::plan::RowShape::Columns { .. }) => {
                self.read_documents(call_id, &plan.table, |each| {
                    documents_json(&rows, shape, each)
                })
            }
            crate::plan::RowShape::JsonText => crate::document::json_texts(&rows),
        }
    }

    /// One page of a query: `{"page", "isDone", "continueCursor"}`.
    pub async fn paginate(
        &self,
        call_id: u32,
        plan: &QueryPlan,
        cursor: Option<&str>,
        num_items: u32,
    ) -> Result<String> {
        let (statement, query) =
            crate::plan::page::plan_page(&self.schema(), plan, cursor, num_items)?;
        self.record_read(call_id, plan)?;
        let rows = self.run(call_id, &statement).await?;
        let key = crate::plan::order_key(&self.schema(), plan)?;
        self.read_documents(call_id, &plan.table, |each| {
            crate::plan::page::page_json(
                &rows,
                num_items,
                &key,
                &query,
                cursor,
                &statement.shape,
                each,
            )
        })
    }
}
