//! The HTTP/1.1 side: accept loop, routing, request limits and the JSON envelopes of SPEC §6.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use convoy_core::{CallKind, ConvoyError, Engine, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::call::{CallRunner, Dispatcher};
use crate::cors::AllowedOrigins;
use crate::functions::FunctionTable;
use crate::metrics::Metrics;

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
        }
    }
}

pub struct ServerHandle {
    pub address: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, lets each open connection finish the request it is serving, and waits for
    /// them (up to ten seconds): what SIGTERM should do.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
    }
}

struct State {
    runner: CallRunner,
    functions: Arc<FunctionTable>,
    max_body_bytes: usize,
    cors: AllowedOrigins,
}

pub async fn start(
    engine: Arc<Engine>,
    dispatcher: Arc<dyn Dispatcher>,
    functions: Arc<FunctionTable>,
    options: ServerOptions,
) -> Result<ServerHandle> {
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
    let state = Arc::new(State {
        runner: CallRunner {
            engine,
            dispatcher,
            in_flight: Semaphore::new(options.max_in_flight),
            timeout: options.call_timeout,
            max_attempts: options.max_attempts.max(1),
            metrics: Metrics::default(),
        },
        functions,
        max_body_bytes: options.max_body_bytes,
        cors: options.allowed_origins,
    });
    let (shutdown, stopping) = watch::channel(false);
    let accept_loop = tokio::spawn(accept(listener, state, stopping));
    tracing::info!(%address, "convoy server listening");
    Ok(ServerHandle {
        address,
        shutdown,
        accept_loop,
    })
}

/// How long `stop` waits for requests in flight to finish before it gives up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept(listener: TcpListener, state: Arc<State>, mut stopping: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        // Forget connections that have closed, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
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
    // keep-alive connections close at once). Wait for them, within reason.
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopped with requests still running after {DRAIN_TIMEOUT:?}");
    }
}

async fn route(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let origin = request.headers().get(ORIGIN).cloned();
    let allowed = state.cors.allowed_origin(request.headers()).cloned();
    if let Some(origin) = &origin {
        // A browser request from a page of another origin that is not allowed is refused whole,
        // not only hidden from the page: a cross-site form post must never run a mutation.
        if allowed.is_none() && !is_same_origin(origin, request.headers().get(HOST)) {
            let mut response = error_response(&ConvoyError::Forbidden(format!(
                "the origin {} may not call this server; allow it with allowedOrigins (CONVOY_ALLOWED_ORIGINS)",
                String::from_utf8_lossy(origin.as_bytes())
            )));
            state.cors.decorate(None, response.headers_mut());
            return response;
        }
    }
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = Response::new(Full::new(Bytes::new()));
        *preflight.status_mut() = StatusCode::NO_CONTENT;
        AllowedOrigins::preflight(preflight.headers_mut());
        preflight
    } else {
        handle(state, request).await
    };
    state
        .cors
        .decorate(allowed.as_ref(), response.headers_mut());
    response
}

/// Whether `Origin` names this very server (the `Host` the browser sent the request to).
fn is_same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let kind = match request.uri().path() {
        "/api/query" => CallKind::Query,
        "/api/mutation" => CallKind::Mutation,
        "/health" => return health(state, request.method()).await,
        "/metrics" => {
            let body = state.runner.metrics.render(&state.runner.engine);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return response;
        }
        path => {
            return error_response(&ConvoyError::NotFound(format!(
                "no route {path}; Convoy serves POST /api/query, POST /api/mutation, GET /health and GET /metrics"
            )))
        }
    };
    if request.method() != Method::POST {
        let mut response = error_response(&ConvoyError::InvalidArgs(format!(
            "{} takes POST with a JSON body {{\"path\", \"args\"}}",
            request.uri().path()
        )));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let response = match call(state, kind, request).await {
        Ok(value) => json_response(StatusCode::OK, format!("{{\"value\":{value}}}")),
        Err(error) => error_response(&error),
    };
    state
        .runner
        .metrics
        .answered(kind, response.status().as_u16());
    response
}

#[derive(Deserialize)]
struct CallRequest<'a> {
    path: String,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

async fn call(state: &State, kind: CallKind, request: Request<Incoming>) -> Result<String> {
    let headers_json = headers_json(&request);
    let body = read_body(request, state.max_body_bytes).await?;
    let request: CallRequest = serde_json::from_slice(&body).map_err(|error| {
        ConvoyError::InvalidArgs(format!(
            "the body must be JSON of the form {{\"path\": \"file:function\", \"args\": {{…}}}}: {error}"
        ))
    })?;
    let function = state.functions.get(&request.path).ok_or_else(|| {
        ConvoyError::NotFound(format!("there is no function named {:?}", request.path))
    })?;
    let declared_kind = function.kind;
    if declared_kind != kind {
        return Err(ConvoyError::InvalidArgs(format!(
            "{} is a {}; call it with POST /api/{}",
            request.path,
            declared_kind.as_str(),
            declared_kind.as_str()
        )));
    }
    let args = request.args.map_or("{}", RawValue::get);
    state
        .runner
        .run(&function, &request.path, args, &headers_json)
        .await
}

/// Reads a request body of at most `limit` bytes. A larger one is still read to its end and
/// dropped, up to a bound, so that the client (which is busy uploading) receives the 413 instead
/// of a connection reset; past the bound the connection is cut.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes> {
    let drain_limit = limit.saturating_mul(8).max(16 * 1024 * 1024);
    let too_large = || {
        ConvoyError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > drain_limit) {
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut buffer = BytesMut::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ConvoyError::InvalidArgs(format!("the request body could not be read: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        if received <= limit {
            buffer.extend_from_slice(&data);
        } else if received > drain_limit {
            break;
        }
    }
    if received > limit {
        return Err(too_large());
    }
    Ok(buffer.freeze())
}

/// The request's headers as a JSON object (lower-case names; repeated headers joined by ", "),
/// for `createContext(req)` in user code.
fn headers_json(request: &Request<Incoming>) -> String {
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str())
            .and_modify(|existing| {
                if let serde_json::Value::String(existing) = existing {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
            })
            .or_insert(serde_json::Value::String(value));
    }
    serde_json::Value::Object(headers).to_string()
}

async fn health(state: &State, method: &Method) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return error_response(&ConvoyError::InvalidArgs("/health takes GET".into()));
    }
    match state.runner.engine.database().ping().await {
        Ok(()) => json_response(StatusCode::OK, "{\"status\":\"ok\"}".into()),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &ConvoyError) -> Response<Full<Bytes>> {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        serde_json::json!({ "error": error.to_json() }).to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
