//! The functions the app defines, by wire name (`dir/file:export`). Replaced whole on reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use convoy_core::CallKind;
use serde::Deserialize;

pub struct FunctionInfo {
    pub kind: CallKind,
    /// Set once a run of this query issued more than one statement: from then on it starts in
    /// a transaction instead of restarting into one.
    needs_transaction: AtomicBool,
}

impl FunctionInfo {
    pub fn needs_transaction(&self) -> bool {
        self.needs_transaction.load(Ordering::Relaxed)
    }

    pub fn mark_needs_transaction(&self) {
        self.needs_transaction.store(true, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct FunctionTable {
    functions: RwLock<HashMap<String, Arc<FunctionInfo>>>,
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
        let mut functions = HashMap::with_capacity(entries.len());
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
            let info = FunctionInfo {
                kind,
                needs_transaction: AtomicBool::new(false),
            };
            functions.insert(entry.path, Arc::new(info));
        }
        let count = functions.len();
        *self
            .functions
            .write()
            .expect("function table lock poisoned") = functions;
        Ok(count)
    }

    pub fn get(&self, path: &str) -> Option<Arc<FunctionInfo>> {
        self.functions
            .read()
            .expect("function table lock poisoned")
            .get(path)
            .cloned()
    }
}
