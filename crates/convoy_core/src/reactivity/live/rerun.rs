//! The re-run loop: follows the commit log, and runs again each live query a commit may have
//! changed, until its result is known to be current.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::query::{LiveQuery, QueryKey};
use super::LiveQueries;
use crate::error::ConvoyError;
use crate::reactivity::{ReadSet, WriteSet};
use crate::CallKind;

impl LiveQueries {
    /// Follows the commit log and re-runs the live queries each commit may have touched, for as
    /// long as the log lasts.
    pub async fn follow_commits(self: Arc<Self>) {
        let log = self.runner.engine.log();
        let mut watch = log.watch();
        let mut position = log.position();
        while watch.changed().await.is_ok() {
            let newest = log.position();
            let commits = log.since(position);
            position = newest;
            let schema = self.runner.engine.schema();
            let touched: Vec<Arc<LiveQuery>> = {
                let registry = self.registry.lock().expect("registry poisoned");
                let mut numbers = HashSet::new();
                match &commits {
                    // Commits no longer in the log: any query may have changed.
                    None => registry.touched(&WriteSet::everything(), &schema, &mut numbers),
                    Some(commits) => {
                        for (_, commit) in commits {
                            registry.touched(commit, &schema, &mut numbers);
                        }
                    }
                }
                numbers
                    .iter()
                    .filter_map(|number| registry.get(*number).cloned())
                    .collect()
            };
            for query in touched {
                let mut live = query.state.lock().expect("live query poisoned");
                if live.running {
                    live.dirty = true;
                } else {
                    live.running = true;
                    drop(live);
                    tokio::spawn(self.clone().run(query));
                }
            }
            self.processed.store(newest, Ordering::SeqCst);
            self.progress.notify_waiters();
        }
    }

    /// Runs a live query until a run's result is known to be current, sending each new result.
    pub(super) async fn run(self: Arc<Self>, query: Arc<LiveQuery>) {
        let engine = &self.runner.engine;
        loop {
            query.state.lock().expect("live query poisoned").dirty = false;
            let position = engine.log().position();
            let QueryKey { path, args, .. } = &query.key;
            let (result, mut reads) = match self.functions.get(path) {
                Some(function) if function.kind == CallKind::Query => {
                    let headers_json = query.headers_json();
                    self.runner
                        .run_tracked(&function, path, args, &headers_json)
                        .await
                }
                Some(_) => (
                    Err(ConvoyError::InvalidArgs(format!(
                        "{path} is a mutation; only queries can be subscribed to"
                    ))),
                    ReadSet::default(),
                ),
                None => (
                    Err(ConvoyError::NotFound(format!(
                        "there is no function named {path:?}"
                    ))),
                    ReadSet::default(),
                ),
            };
            let body: Arc<str> = match result {
                Ok(value) => format!("\"value\":{value}").into(),
                Err(error) => {
                    // A failed run (the database away, a bug since fixed) tries again on any commit.
                    reads = ReadSet::everything();
                    format!("\"error\":{}", error.public(self.dev).to_json()).into()
                }
            };
            // Checked and registered under the registry's lock: a commit logged after the check
            // is matched against these reads when the follower gets to it.
            let mut registry = self.registry.lock().expect("registry poisoned");
            let through = engine.log().position();
            let stale = engine
                .log()
                .touched_since(position, &reads, &engine.schema());
            let mut live = query.state.lock().expect("live query poisoned");
            if live.holders.is_empty() {
                // Everyone unsubscribed while it ran.
                registry.remove(query.number);
                live.running = false;
                return;
            }
            registry.set(query.number, query.clone(), reads);
            drop(registry);
            if !stale {
                live.through = through;
            }
            let changed = live.last.as_deref() != Some(&*body);
            if changed {
                live.last = Some(body.clone());
                self.updates.fetch_add(1, Ordering::Relaxed);
                for (holder, id) in &live.holders {
                    if let Some(holder) = holder.upgrade() {
                        holder.deliver(id, body.clone());
                    }
                }
            }
            if !(stale || live.dirty) {
                live.running = false;
                drop(live);
                self.progress.notify_waiters();
                return;
            }
        }
    }
}
