//! The functions the app defines, by wire name (`dir/file:export`). Replaced whole on reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::CallKind;
use serde::Deserialize;

/// The wire name of the call that authenticates a sync stream: user code runs the app's
/// `createContext` for it. No function can have this name (wire names are `file:export`), and
/// calls by HTTP can never reach it.
pub const CONNECT: &str = "#connect";

/// The call that runs `createContext` for a query request alone, to learn who asks (a result of
/// theirs that a live query holds answers the request without a run).
pub const IDENTIFY: &str = "#identify";

/// The call `/health` makes to see that JavaScript answers: a blocked event loop serves nothing.
pub const HEALTH: &str = "#health";

/// The call that checks a subscription's args against its query's input, without running it:
/// `{"path", "args": "<the args' JSON text>"}` in, `true` or the app's `INVALID_ARGS` out.
pub const VALIDATE: &str = "#validate";

pub struct FunctionInfo {
    pub kind: CallKind,
    /// How long a run may take before its caller gets an error; `None`: the server's default.
    pub timeout: Option<Duration>,
    /// Set once a run of this query issued more than one statement: from then on it starts in
    /// a transaction instead of restarting into one.
    needs_transaction: AtomicBool,
}

impl FunctionInfo {
    pub fn new(kind: CallKind, timeout: Option<Duration>) -> Self {
        Self {
            kind,
            timeout,
            needs_transaction: AtomicBool::new(false),
        }
    }

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
    /// Present when the app authenticates requests (`createContext`): sync streams run it once
    /// when they open.
    connect: RwLock<Option<Arc<FunctionInfo>>>,
}

/// `{"functions": [{"path", "kind", "timeoutMs"?}], "authenticates": bool}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Table {
    functions: Vec<Entry>,
    #[serde(default)]
    authenticates: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    path: String,
    kind: String,
    timeout_ms: Option<u64>,
}

impl FunctionTable {
    /// Replaces the table from its JSON description (see [`Table`]).
    pub fn replace_from_json(&self, json: &str) -> Result<usize, String> {
        let table: Table = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut functions = HashMap::with_capacity(table.functions.len());
        for entry in table.functions {
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
            if entry.path.starts_with('#') {
                return Err(format!("{:?} is not a function name", entry.path));
            }
            let timeout = entry.timeout_ms.map(Duration::from_millis);
            functions.insert(entry.path, Arc::new(FunctionInfo::new(kind, timeout)));
        }
        let count = functions.len();
        *self
            .functions
            .write()
            .expect("function table lock poisoned") = functions;
        *self.connect.write().expect("function table lock poisoned") = table
            .authenticates
            .then(|| Arc::new(FunctionInfo::new(CallKind::Query, None)));
        Ok(count)
    }

    pub fn get(&self, path: &str) -> Option<Arc<FunctionInfo>> {
        self.functions
            .read()
            .expect("function table lock poisoned")
            .get(path)
            .cloned()
    }

    /// The call that authenticates a new sync stream, when the app has one.
    pub fn connect(&self) -> Option<Arc<FunctionInfo>> {
        self.connect
            .read()
            .expect("function table lock poisoned")
            .clone()
    }
}
