//! Running one function call: dispatch to user code, wait for its answer, end its transaction,
//! and run a conflicting mutation again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use super::dispatch::{Dispatch, Dispatcher};
use super::functions::FunctionInfo;
use super::stats::CallStats;
use crate::reactivity::ReadSet;
use crate::{Call, CallKind, ConvoyError, Engine, Finished, Result};

pub struct CallRunner {
    pub engine: Arc<Engine>,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Bounds the calls waiting in Node: a `ThreadsafeFunction`'s queue is unbounded.
    pub in_flight: Semaphore,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Runs, retries and restarts, for `/metrics`.
    pub stats: CallStats,
}

impl CallRunner {
    /// Runs `path` and returns its result as JSON text.
    pub async fn run(
        &self,
        function: &FunctionInfo,
        path: &str,
        args_json: &str,
        headers_json: &str,
    ) -> Result<String> {
        self.run_tracked(function, path, args_json, headers_json)
            .await
            .0
    }

    /// Runs the mutation `path` under `key`, its client's idempotency key: a key that committed
    /// before is answered with its recorded result, without running (see
    /// `engine::idempotency`).
    pub async fn run_keyed(
        &self,
        function: &FunctionInfo,
        path: &str,
        args_json: &str,
        headers_json: &str,
        key: &str,
    ) -> Result<String> {
        if function.kind == CallKind::Mutation {
            if let Some(recorded) = self.engine.recorded_result(key).await? {
                self.stats.repeat_answered();
                return Ok(recorded);
            }
        }
        let mut reads = ReadSet::default();
        self.run_reading(
            function,
            path,
            args_json,
            headers_json,
            Some(key),
            &mut reads,
        )
        .await
    }

    /// Runs `path` and returns its result and what its last run read.
    pub async fn run_tracked(
        &self,
        function: &FunctionInfo,
        path: &str,
        args_json: &str,
        headers_json: &str,
    ) -> (Result<String>, ReadSet) {
        let mut reads = ReadSet::default();
        let result = self
            .run_reading(function, path, args_json, headers_json, None, &mut reads)
            .await;
        (result, reads)
    }

    async fn run_reading(
        &self,
        function: &FunctionInfo,
        path: &str,
        args_json: &str,
        headers_json: &str,
        key: Option<&str>,
        reads: &mut ReadSet,
    ) -> Result<String> {
        let kind = function.kind;
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ConvoyError::Unavailable("the server is shutting down".into()))?;
        let mut attempt = 1;
        loop {
            // A query whose own timeout is longer than the server's runs in a transaction, which
            // sets its `statement_timeout`; alone, its statement would have the connection's.
            let transactional = function.needs_transaction()
                || (kind == CallKind::Query
                    && function.timeout.is_some_and(|own| own > self.timeout));
            let attempt_result = self
                .attempt(
                    Attempt {
                        kind,
                        transactional,
                        timeout: function.timeout.unwrap_or(self.timeout),
                        own_timeout: function.timeout,
                        key,
                        path,
                        args_json,
                        headers_json,
                    },
                    reads,
                )
                .await;
            match attempt_result {
                Ok(Attempted::Answered(value)) => return Ok(value),
                Ok(Attempted::AlreadyApplied) => {
                    // Another request with this key committed while this one ran.
                    self.stats.repeat_answered();
                    let key = key.expect("only a keyed mutation finds its key applied");
                    return self.engine.recorded_result(key).await?.ok_or_else(|| {
                        ConvoyError::Internal(format!("the answer recorded for key {key:?} is gone"))
                    });
                }
                Ok(Attempted::RunAgainInTransaction) => {
                    self.stats.restarted();
                    function.mark_needs_transaction();
                }
                Err(error) if error.is_retryable_conflict() && attempt < self.max_attempts => {
                    self.stats.conflict_retried();
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                // A table changed stage under the call (a graduation switched it): read the
                // stages again and run it once more, so that no call in flight at a switch fails.
                Err(error) if error.is_storage_changed() && attempt < self.max_attempts => {
                    tracing::info!(%error, path, "a table's storage changed; running the call again");
                    self.stats.storage_retried();
                    if let Err(refresh) = self.engine.refresh_stages().await {
                        tracing::warn!(error = %refresh, "could not read the tables' stages again");
                    }
                    attempt += 1;
                }
                Err(ConvoyError::Conflict(_)) => {
                    return Err(ConvoyError::Conflict(format!(
                        "{path} conflicted with concurrent mutations {attempt} times in a row; try again"
                    )))
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&self, attempt: Attempt<'_>, reads: &mut ReadSet) -> Result<Attempted> {
        let Attempt {
            kind,
            transactional,
            timeout,
            own_timeout,
            key,
            path,
            args_json,
            headers_json,
        } = attempt;
        // `#connect` and `#identify` run createContext alone, not a function.
        if !path.starts_with('#') {
            self.stats.execution(kind);
        }
        let (call, answer) = self.engine.begin_call(kind, transactional, own_timeout);
        if let (CallKind::Mutation, Some(key)) = (kind, key) {
            self.engine.keyed(&call, key)?;
        }
        let mut guard = CallGuard {
            engine: self.engine.clone(),
            call: Some(call.clone()),
        };
        self.dispatcher.dispatch(Dispatch {
            call_id: call.id,
            kind,
            path: path.to_owned(),
            args_json: args_json.to_owned(),
            headers_json: headers_json.to_owned(),
        })?;
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ConvoyError::Internal(format!(
                "{path} ended without an answer"
            ))),
            Err(_) => {
                // Its statement stops in Postgres now, and its connection is not reused.
                self.engine.abandon(&call).await;
                Err(ConvoyError::Internal(format!(
                    "{path} did not finish within {} ms (its timeout) and was abandoned",
                    timeout.as_millis()
                )))
            }
        };
        let call = guard
            .call
            .take()
            .expect("the guard holds the call until here");
        *reads = call.reads();
        match kind {
            CallKind::Mutation => {
                if let Ok(result) = &outcome {
                    call.answered(result);
                }
                let finished = self.engine.finish_call(&call, outcome.is_ok()).await;
                match (finished, outcome) {
                    (Ok(Finished::AlreadyApplied), _) => Ok(Attempted::AlreadyApplied),
                    // A conflict outranks what the handler made of it: the whole call runs again.
                    (Err(conflict), _) if conflict.is_retryable_conflict() => Err(conflict),
                    (Err(error), Ok(_)) => Err(error),
                    (_, outcome) => outcome.map(Attempted::Answered),
                }
            }
            CallKind::Query if !transactional => {
                // Nothing to commit; but a second statement means the call must run again.
                if self.engine.finish_call(&call, true).await? == Finished::RunAgainInTransaction {
                    return Ok(Attempted::RunAgainInTransaction);
                }
                outcome.map(Attempted::Answered)
            }
            CallKind::Query => {
                // The answer is complete; ending the read-only transaction need not delay it.
                let engine = self.engine.clone();
                tokio::spawn(async move {
                    let _ = engine.finish_call(&call, true).await;
                });
                outcome.map(Attempted::Answered)
            }
        }
    }
}

/// What one run of a function came to, when it did not fail.
enum Attempted {
    Answered(String),
    /// The run is void (see [`Finished::RunAgainInTransaction`]).
    RunAgainInTransaction,
    /// Its idempotency key had committed meanwhile (see [`Finished::AlreadyApplied`]).
    AlreadyApplied,
}

/// One run of a function.
struct Attempt<'a> {
    kind: CallKind,
    transactional: bool,
    timeout: Duration,
    /// The function's own timeout, if it has one.
    own_timeout: Option<Duration>,
    /// A mutation's idempotency key.
    key: Option<&'a str>,
    path: &'a str,
    args_json: &'a str,
    headers_json: &'a str,
}

/// Stops the call's statement and rolls it back if the request is dropped before it ends (the
/// client went away).
struct CallGuard {
    engine: Arc<Engine>,
    call: Option<Arc<Call>>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                engine.abandon(&call).await;
                let _ = engine.finish_call(&call, false).await;
            });
        }
    }
}

/// Exponential backoff with jitter: 2, 4, 8 … ms (capped at 256), each scaled by 0.5–1.5 so that
/// conflicting mutations do not retry in lockstep.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64.pow(attempt.min(8));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let jitter = 0.5 + f64::from(nanos % 1000) / 1000.0;
    Duration::from_micros((base as f64 * 1000.0 * jitter) as u64)
}
