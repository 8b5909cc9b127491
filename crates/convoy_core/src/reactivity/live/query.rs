//! A live query: one function, args and identity, run once for everyone who holds it, and its
//! last result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// What holds a live query (a session): it is sent each new result, and its request headers are
/// what the query's runs see.
pub(super) trait Holder: Send + Sync {
    fn deliver(&self, subscription: &str, body: Arc<str>);
    fn headers_json(&self) -> &str;
}

/// Whether `holder` is `other`, whatever type each is seen through.
pub(super) fn same_holder<T>(holder: &Arc<dyn Holder>, other: &Arc<T>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(holder), Arc::as_ptr(other))
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct QueryKey {
    pub(super) path: String,
    pub(super) args: String,
    /// Who is asking (see `Session`): results of different identities are never shared.
    pub(super) identity: String,
}

pub(crate) struct LiveQuery {
    pub(super) number: u64,
    pub(super) key: QueryKey,
    pub(super) state: Mutex<LiveState>,
}

#[derive(Default)]
pub(super) struct LiveState {
    /// The log position the last result is known to be current through.
    pub(super) through: u64,
    /// The last result, as the body of an event: `"value":…` or `"error":…`.
    pub(super) last: Option<Arc<str>>,
    /// Who holds it, and under which subscription id of theirs.
    pub(super) holders: Vec<(Weak<dyn Holder>, String)>,
    pub(super) running: bool,
    /// A commit touched it while it ran: run again.
    pub(super) dirty: bool,
    /// Runs in a row that failed because the database was unavailable (see `rerun`).
    pub(super) unavailable_runs: u32,
}

impl LiveQuery {
    /// The headers of the newest session that holds the query: all holders share one identity,
    /// and the newest has the freshest credentials (a token refreshed since others subscribed).
    pub(super) fn headers_json(&self) -> String {
        let live = self.state.lock().expect("live query poisoned");
        live.holders
            .iter()
            .rev()
            .find_map(|(holder, _)| holder.upgrade())
            .map_or_else(
                || "{}".to_owned(),
                |holder| holder.headers_json().to_owned(),
            )
    }
}

/// The live queries by function, args and identity, and how many there are of each call
/// (function and args, whoever asks).
#[derive(Default)]
pub(super) struct SharedQueries {
    pub(super) by_key: HashMap<QueryKey, Arc<LiveQuery>>,
    pub(super) calls: HashMap<(String, String), usize>,
    /// The bytes of args the live queries hold in all (each kept twice: key and call).
    pub(super) args_bytes: usize,
}

impl SharedQueries {
    pub(super) fn get_or_insert(
        &mut self,
        key: QueryKey,
        make: impl FnOnce(QueryKey) -> LiveQuery,
    ) -> Arc<LiveQuery> {
        if let Some(query) = self.by_key.get(&key) {
            return query.clone();
        }
        *self
            .calls
            .entry((key.path.clone(), key.args.clone()))
            .or_default() += 1;
        self.args_bytes += key.args.len();
        let query = Arc::new(make(key.clone()));
        self.by_key.insert(key, query.clone());
        query
    }

    pub(super) fn remove(&mut self, key: &QueryKey) {
        if self.by_key.remove(key).is_none() {
            return;
        }
        self.args_bytes -= key.args.len();
        let call = (key.path.clone(), key.args.clone());
        if let Some(count) = self.calls.get_mut(&call) {
            *count -= 1;
            if *count == 0 {
                self.calls.remove(&call);
            }
        }
    }
}
