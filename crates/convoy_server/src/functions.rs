//! The functions the app defines, by wire name (`dir/file:export`). Replaced whole on reload.

use std::collections::HashMap;
use std::sync::RwLock;

use convoy_core::CallKind;
use serde::Deserialize;

#[derive(Default)]
pub struct FunctionTable {
    kinds: RwLock<HashMap<String, CallKind>>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    kind: String,
}

impl FunctionTable {
    /// Replaces the table from `[{"path", "kind"}]`.
    pub fn replace_from_json(&self, json: &str) -> Result<usize, String> {
        let entries: Vec<Entry> = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut kinds = HashMap::with_capacity(entries.len());
        for entry in entries {
            let kind = match entry.kind.as_str() {
                "query" => CallKind::Query,
                "mutation" => CallKind::Mutation,
                other => {
                    return Err(format!(
                        "function {} has unknown kind {other:?}",
                        entry.path
                    ))
                }
            };
            kinds.insert(entry.path, kind);
        }
        let count = kinds.len();
        *self.kinds.write().expect("function table lock poisoned") = kinds;
        Ok(count)
    }

    pub fn kind_of(&self, path: &str) -> Option<CallKind> {
        self.kinds
            .read()
            .expect("function table lock poisoned")
            .get(path)
            .copied()
    }
}
