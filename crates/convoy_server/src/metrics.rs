//! `GET /metrics`: counters in the Prometheus text format, kept in atomics so that counting costs
//! a request nothing measurable.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use convoy_core::calls::CallStats;
use convoy_core::reactivity::LiveQueries;
use convoy_core::{CallKind, Engine};

#[derive(Default)]
pub struct Metrics {
    /// Answered calls by kind and outcome: [query, mutation] × [ok, client error, server error].
    calls: [[AtomicU64; 3]; 2],
    /// Sync streams open now.
    streams: AtomicU64,
    /// Query calls answered from a live query's current result.
    served_live: AtomicU64,
}

fn kind_index(kind: CallKind) -> usize {
    match kind {
        CallKind::Query => 0,
        CallKind::Mutation => 1,
    }
}

impl Metrics {
    pub fn stream_opened(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn served_live(&self) {
        self.served_live.fetch_add(1, Ordering::Relaxed);
    }

    pub fn answered(&self, kind: CallKind, status: u16) {
        let outcome = match status {
            200..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        self.calls[kind_index(kind)][outcome].fetch_add(1, Ordering::Relaxed);
    }

    /// Everything counted, the call runner's `calls` and the engine's included.
    // One exposition, one metric after another: long, but flat.
    #[allow(clippy::too_many_lines)]
    pub fn render(
        &self,
        engine: &Engine,
        calls: &CallStats,
        live: &LiveQueries,
        live_queries: usize,
    ) -> String {
        let mut out = String::new();
        let kinds = ["query", "mutation"];
        out.push_str("# HELP convoy_calls_total Function calls answered, by kind and outcome.\n");
        out.push_str("# TYPE convoy_calls_total counter\n");
        for (kind, counts) in kinds.iter().zip(&self.calls) {
            for (outcome, count) in ["ok", "client_error", "server_error"].iter().zip(counts) {
                let count = count.load(Ordering::Relaxed);
                writeln!(
                    out,
                    "convoy_calls_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {count}"
                )
                .expect("writing to a String");
            }
        }
        out.push_str("# HELP convoy_function_executions_total Runs of user functions, retries and restarts included.\n");
        out.push_str("# TYPE convoy_function_executions_total counter\n");
        for kind in [CallKind::Query, CallKind::Mutation] {
            writeln!(
                out,
                "convoy_function_executions_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                calls.executions(kind)
            )
            .expect("writing to a String");
        }
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            )
            .expect("writing to a String");
        };
        counter(
            &mut out,
            "convoy_mutation_conflicts_retried_total",
            "Mutation runs that conflicted with concurrent ones and ran again.",
            calls.conflicts_retried(),
        );
        counter(
            &mut out,
            "convoy_query_restarts_total",
            "Query runs restarted inside a transaction after a second statement.",
            calls.restarts(),
        );
        counter(
            &mut out,
            "convoy_storage_changes_retried_total",
            "Runs that met a table moved to another stage by a graduation, and ran again.",
            calls.storage_retries(),
        );
        counter(
            &mut out,
            "convoy_mutations_repeated_total",
            "Mutations answered with the result recorded under their idempotency key, not run again.",
            calls.repeats_answered(),
        );
        counter(
            &mut out,
            "convoy_live_query_updates_total",
            "New results of live queries sent to their subscribers.",
            live.updates(),
        );
        counter(
            &mut out,
            "convoy_queries_served_live_total",
            "Query calls answered from a live query's current result, without running it.",
            self.served_live.load(Ordering::Relaxed),
        );
        let group_commit = engine.group_commit_stats();
        counter(
            &mut out,
            "convoy_group_commit_statements_total",
            "INSERT statements that committed mutations of one insert each, together.",
            group_commit.statements,
        );
        counter(
            &mut out,
            "convoy_group_commit_rows_total",
            "Rows those statements carried: one per mutation.",
            group_commit.rows,
        );
        let pool = engine.database().status();
        let gauge = |out: &mut String, name: &str, help: &str, value: usize| {
            writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            )
            .expect("writing to a String");
        };
        gauge(
            &mut out,
            "convoy_pool_connections",
            "Open Postgres connections.",
            pool.size,
        );
        gauge(
            &mut out,
            "convoy_pool_connections_idle",
            "Open Postgres connections not in use.",
            pool.available,
        );
        gauge(
            &mut out,
            "convoy_pool_waiting",
            "Calls waiting for a Postgres connection.",
            pool.waiting,
        );
        gauge(
            &mut out,
            "convoy_pool_max_connections",
            "The pool's size limit.",
            pool.max_size,
        );
        gauge(
            &mut out,
            "convoy_sync_streams",
            "Open sync streams (GET /api/sync).",
            usize::try_from(self.streams.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
        );
        gauge(
            &mut out,
            "convoy_live_queries",
            "Distinct live queries (function, arguments and identity) subscribed to.",
            live_queries,
        );
        out
    }
}

/// Each managed table's stage as this process serves it, and each graduation's progress (read
/// from Convoy's bookkeeping, for tables that are graduating only).
pub async fn stages(engine: &Engine) -> String {
    let schema = engine.schema();
    let mut out = String::from(
        "# HELP convoy_table_stage The stage each table is served at (1): documents, graduating (with its step) or relational, and where reads come from.
# TYPE convoy_table_stage gauge
",
    );
    let mut graduating = Vec::new();
    for table in schema.managed_tables() {
        let stage = match (&table.graduation_step, table.stage) {
            (Some(_), _) => "graduating",
            (None, convoy_core::schema::Stage::Documents) => "documents",
            (None, convoy_core::schema::Stage::Relational) => "relational",
        };
        let reads = if table.reads_columns {
            "columns"
        } else {
            "data"
        };
        let step = table.graduation_step.as_deref().unwrap_or("");
        writeln!(
            out,
            "convoy_table_stage{{table=\"{}\",stage=\"{stage}\",step=\"{step}\",reads=\"{reads}\"}} 1",
            table.name
        )
        .expect("writing to a String");
        if table.graduation_step.is_some() {
            graduating.push(table.name.clone());
        }
    }
    if graduating.is_empty() {
        return out;
    }
    out.push_str(
        "# HELP convoy_graduation_rows_done Rows a graduation has backfilled.
# TYPE convoy_graduation_rows_done gauge
",
    );
    let mut totals = String::from(
        "# HELP convoy_graduation_rows_total Rows of the graduating table.
# TYPE convoy_graduation_rows_total gauge
",
    );
    for name in graduating {
        if let Ok(status) = engine.graduation_status(&name).await {
            writeln!(
                out,
                "convoy_graduation_rows_done{{table=\"{name}\"}} {}",
                status.rows_done
            )
            .expect("writing to a String");
            writeln!(
                totals,
                "convoy_graduation_rows_total{{table=\"{name}\"}} {}",
                status.rows_total
            )
            .expect("writing to a String");
        }
    }
    out.push_str(&totals);
    out
}
