//! The HTTP/1.1 server: its options, the accept loop, graceful stop, and the state every
//! request shares.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use convoy_core::{ConvoyError, Engine, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::connections::{Admission, Gate};
use crate::cors::AllowedOrigins;
use crate::metrics::Metrics;
use crate::routes::{health_only, route};
use crate::state::State;
use convoy_core::calls::FunctionTable;
use convoy_core::calls::{CallRunner, CallStats, Dispatcher};
use convoy_core::reactivity::LiveQueries;

pub struct ServerOptions {
    pub host: String,
    pub port: u16,
    /// Request bodies larger than this are refused with `PAYLOAD_TOO_LARGE` (SPEC §5: 1 MiB).
    pub max_body_bytes: usize,
    /// How long a function may take before its caller gets an error.
    pub call_timeout: Duration,
    /// Runs of a conflicting mutation before the caller gets `CONFLICT`.
    pub max_attempts: u32,
    /// Calls handed to Node and not yet answered; more wait their turn.
    pub max_in_flight: usize,
    /// Browser origins other than the server's own that may call the API.
    pub allowed_origins: AllowedOrigins,
    /// Sync streams open at once; more are refused with `UNAVAILABLE` until some close.
    pub max_streams: usize,
    /// A stream that holds no subscription for this long is closed.
    pub stream_idle_timeout: Duration,
    /// Open connections, and open connections from one client address; past either, a
    /// connection is served `/health` only (see `connections`).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Development: internal errors reach the client in full. In production the client gets a
    /// request id and the detail goes only to the server log.
    pub dev: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3737,
            max_body_bytes: 1024 * 1024,
            call_timeout: Duration::from_secs(30),
            max_attempts: 10,
            max_in_flight: 512,
            allowed_origins: AllowedOrigins::default(),
            max_streams: 10_000,
            stream_idle_timeout: Duration::from_mins(1),
            max_connections: 4096,
            max_connections_per_address: 256,
            dev: false,
        }
    }
}

pub struct ServerHandle {
    pub address: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    follower: JoinHandle<()>,
    /// Follows the other processes' commits (LISTEN/NOTIFY).
    neighbours: JoinHandle<()>,
    /// Takes writes made outside Convoy from the change triggers' queue.
    external_writes: JoinHandle<()>,
    /// Deletes idempotency keys past their lifetime.
    expire_keys: JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, lets each open connection finish the request it is serving, and waits for
    /// them (up to ten seconds): what SIGTERM should do.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
        self.follower.abort();
        self.neighbours.abort();
        // Stopped mid-poll, its transaction rolls back: the rows stay for another process.
        self.external_writes.abort();
        self.expire_keys.abort();
    }
}

pub async fn start(
    engine: Arc<Engine>,
    dispatcher: Arc<dyn Dispatcher>,
    functions: Arc<FunctionTable>,
    options: ServerOptions,
) -> Result<ServerHandle> {
    // No statement outlives the call it serves, even when Convoy cannot send its cancel.
    engine.database().limit_statements(options.call_timeout);
    let neighbours = tokio::spawn(engine.clone().follow_other_processes());
    let external_writes = tokio::spawn(engine.clone().follow_external_writes());
    let expiring = engine.clone();
    let expire_keys = tokio::spawn(async move { expiring.expire_recorded_results().await });
    let listener = TcpListener::bind((options.host.as_str(), options.port))
        .await
        .map_err(|error| {
            ConvoyError::Unavailable(format!(
                "could not listen on {}:{}: {error}",
                options.host, options.port
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|error| ConvoyError::Internal(error.to_string()))?;
    let runner = Arc::new(CallRunner {
        engine,
        dispatcher,
        in_flight: Semaphore::new(options.max_in_flight),
        timeout: options.call_timeout,
        max_attempts: options.max_attempts.max(1),
        stats: CallStats::default(),
    });
    let live = Arc::new(LiveQueries::new(
        runner.clone(),
        functions.clone(),
        options.dev,
    ));
    let state = Arc::new(State {
        runner,
        metrics: Arc::new(Metrics::default()),
        functions,
        live: live.clone(),
        max_body_bytes: options.max_body_bytes,
        cors: options.allowed_origins,
        max_streams: options.max_streams,
        stream_idle_timeout: options.stream_idle_timeout,
        gate: Gate::new(options.max_connections, options.max_connections_per_address),
        own_origins: own_origins(address),
        dev: options.dev,
    });
    let follower = tokio::spawn(live.follow_commits());
    let (shutdown, stopping) = watch::channel(false);
    let accept_loop = tokio::spawn(accept(listener, state, stopping));
    tracing::info!(%address, "convoy server listening");
    Ok(ServerHandle {
        address,
        shutdown,
        accept_loop,
        follower,
        neighbours,
        external_writes,
        expire_keys,
    })
}

/// The origins a page served from the server's own address has: its address as the browser
/// writes it, and `localhost` for a loopback or unspecified one (`0.0.0.0` is reached as any).
fn own_origins(address: SocketAddr) -> Vec<String> {
    let port = address.port();
    let ip = address.ip();
    let mut origins = Vec::new();
    if ip.is_unspecified() || ip.is_loopback() {
        origins.push(format!("http://localhost:{port}"));
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://[::1]:{port}"));
    }
    if !ip.is_unspecified() {
        origins.push(format!("http://{address}"));
    }
    origins
}

/// How long a client may take to send a request's headers, counted from the connection's start
/// or the end of its previous response: a slower one (slowloris) or an idle keep-alive
/// connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `stop` waits for requests in flight to finish before it gives up on them.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn accept(
    listener: TcpListener,
    state: Arc<State>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        // Forget connections that have closed, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping.changed() => break,
        };
        let (admission, ticket) = state.gate.admit(peer.ip());
        if admission == Admission::Refuse {
            // Over the cap and its reserve: not even read.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _ticket = ticket;
            let service = service_fn(move |request| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(if admission == Admission::HealthOnly {
                        health_only(&state, request).await
                    } else {
                        route(&state, request).await
                    })
                }
            });
            // The header timeout runs from the connection's start and from each response's end:
            // it closes slow senders and idle keep-alive connections alike.
            let connection = http1::Builder::new()
                .keep_alive(admission == Admission::Serve)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Stopping: no new connections; each open one finishes the request it is serving (idle
    // keep-alive connections close at once, sync streams end). Wait for them, within reason.
    drop(listener);
    state.live.close_all();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopped with requests still running after {DRAIN_TIMEOUT:?}");
    }
}
