//! The app's own SQL (`ctx.db.raw`).

use super::call::CallKind;
use super::Engine;
use crate::error::Result;

impl Engine {
    /// Runs the app's own SQL with `values` bound to `$1…$n`; its rows as a JSON array.
    pub async fn raw(
        &self,
        call_id: u32,
        sql: &str,
        values: &[serde_json::Value],
    ) -> Result<String> {
        let call = self.call(call_id)?;
        if call.single_statement {
            // In a query, raw SQL runs only inside the READ ONLY transaction: without one, a
            // write in it would commit on its own.
            call.transaction.lock().await.needs_restart = true;
            return Err(super::must_run_in_transaction());
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
}
