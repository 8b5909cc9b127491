//! The re-run loop: follows the commit log, and runs again each live query a commit may have
//! changed, until its result is known to be current.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

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
        let mut due = self
            .due
            .lock()
            .expect("due lock poisoned")
            .take()
            .expect("one follower");
        loop {
            tokio::select! {
                changed = watch.changed() => if changed.is_err() { return },
                Some(query) = due.recv() => {
                    self.retry(query);
                    continue;
                }
            }
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

    /// Runs `query` again, its pause over, unless a commit ran it meanwhile (and it then
    /// succeeded) or nobody holds it.
    fn retry(self: &Arc<Self>, query: Arc<LiveQuery>) {
        let mut live = query.state.lock().expect("live query poisoned");
        if live.running || live.holders.is_empty() || live.unavailable_runs == 0 {
            return;
        }
        live.running = true;
        drop(live);
        tokio::spawn(self.clone().run(query));
    }

    /// Runs a live query until a run's result is known to be current, sending each new result.
    pub(super) async fn run(self: Arc<Self>, query: Arc<LiveQuery>) {
        let engine = &self.runner.engine;
        loop {
            query.state.lock().expect("live query poisoned").dirty = false;
            let position = engine.log().position();
            let QueryKey { path, args, .. } = &query.key;
            let (result, reads) = match self.functions.get(path) {
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
            // A failed run keeps what it read before it failed: it runs again when that changes,
            // as a run that succeeded would. Failing on its arguments, it read nothing and never
            // runs again by itself; it once read everything, and a thousand such subscriptions
            // re-ran on every unrelated commit. Failing because the database was away, it also
            // runs again after a pause that doubles with each such failure.
            let unavailable = matches!(result, Err(ConvoyError::Unavailable(_)));
            let body: Arc<str> = match result {
                Ok(value) => format!("\"value\":{value}").into(),
                Err(error) => format!("\"error\":{}", error.public(self.dev).to_json()).into(),
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
            live.unavailable_runs = if unavailable {
                live.unavailable_runs.saturating_add(1)
            } else {
                0
            };
            if !(stale || live.dirty) {
                live.running = false;
                let retry = (unavailable && !stale).then(|| retry_pause(live.unavailable_runs));
                drop(live);
                if let Some(pause) = retry {
                    let (retries, query) = (self.retries.clone(), query.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(pause).await;
                        let _ = retries.send(query);
                    });
                }
                self.progress.notify_waiters();
                return;
            }
        }
    }
}

/// The pause before a live query that failed `runs` times in a row for want of the database
/// runs again: 1 s, doubling, at most 30 s.
fn retry_pause(runs: u32) -> Duration {
    Duration::from_secs(1 << runs.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}
