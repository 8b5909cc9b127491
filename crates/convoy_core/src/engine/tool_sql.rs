//! SQL of Convoy's own tools — the conformance report of `convoy graduate --check`, the
//! dashboard — run outside any function call. Read only: a tool's statement can never change
//! data, and all the statements of one run see one snapshot.

use serde_json::Value;

use super::Engine;
use crate::error::Result;

impl Engine {
    /// Runs `statements` in order, each with its values bound to `$1…$n`, in one `READ ONLY`
    /// `REPEATABLE READ` transaction; each statement's rows as a JSON array, in a JSON array.
    pub async fn read_for_tool(&self, statements: &[(String, Vec<Value>)]) -> Result<String> {
        let mut client = self.database.connection().await?;
        let transaction = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let mut out = String::from("[");
        for (position, (sql, values)) in statements.iter().enumerate() {
            let params: Vec<crate::raw::JsonParam> =
                values.iter().map(crate::raw::JsonParam).collect();
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let rows = transaction.query(sql.as_str(), &refs).await?;
            if position > 0 {
                out.push(',');
            }
            out.push_str(&crate::raw::rows_json(&rows)?);
        }
        out.push(']');
        transaction.rollback().await?;
        Ok(out)
    }
}
