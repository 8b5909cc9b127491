//! The HTTP/1.1 side: accept loop, routing, request limits and the JSON envelopes of SPEC §6.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

use crate::cors::AllowedOrigins;
use crate::metrics::Metrics;
use crate::sse::{credentials_of, Body};
use convoy_core::calls::{CallRunner, CallStats, Dispatcher};
use convoy_core::calls::{FunctionTable, CONNECT, IDENTIFY};
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
}

impl ServerHandle {
    /// Stops accepting, lets each open connection finish the request it is serving, and waits for
    /// them (up to ten seconds): what SIGTERM should do.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
        self.follower.abort();
        self.neighbours.abort();
    }
}

pub(crate) struct State {
    pub runner: Arc<CallRunner>,
    pub metrics: Arc<Metrics>,
    pub functions: Arc<FunctionTable>,
    pub live: Arc<LiveQueries>,
    max_body_bytes: usize,
    cors: AllowedOrigins,
    pub max_streams: usize,
    pub stream_idle_timeout: Duration,
    dev: bool,
}

pub async fn start(
    engine: Arc<Engine>,
    dispatcher: Arc<dyn Dispatcher>,
    functions: Arc<FunctionTable>,
    options: ServerOptions,
) -> Result<ServerHandle> {
    let neighbours = tokio::spawn(engine.clone().follow_other_processes());
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

async fn route(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
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
            return response.map(BodyExt::boxed_unsync);
        }
    }
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = Response::new(Full::new(Bytes::new()));
        *preflight.status_mut() = StatusCode::NO_CONTENT;
        AllowedOrigins::preflight(preflight.headers_mut());
        preflight.map(BodyExt::boxed_unsync)
    } else if request.uri().path() == "/api/sync" {
        sync_stream(state, &request).await
    } else if let Some(session) = request.uri().path().strip_prefix("/api/sync/") {
        let session = session.to_owned();
        sync_change(state, &session, request)
            .await
            .map(BodyExt::boxed_unsync)
    } else {
        handle(state, request).await.map(BodyExt::boxed_unsync)
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
            let live_queries = state.live.len();
            let body = state.metrics.render(&state.runner.engine, &state.runner.stats, &state.live, live_queries);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return response;
        }
        path => {
            return error_response(&ConvoyError::NotFound(format!(
                "no route {path}; Convoy serves POST /api/query, POST /api/mutation, GET /api/sync, GET /health and GET /metrics"
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
    if let Err(response) = json_content_type(&request) {
        return *response;
    }
    // A client with a sync stream names its session: the answer then waits until the stream
    // carries the mutation's effect on its subscriptions, and says how far to read.
    let session = (kind == CallKind::Mutation)
        .then(|| request.headers().get(SESSION_HEADER))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let started = Instant::now();
    let mut path = None;
    let response = match call(state, kind, request, &mut path).await {
        Ok(value) => {
            let settled = match &session {
                Some(session) => {
                    let position = state.runner.engine.log().position();
                    state.live.settle(session, position).await
                }
                None => None,
            };
            let body = match settled {
                Some(seq) => format!("{{\"value\":{value},\"sync\":{seq}}}"),
                None => format!("{{\"value\":{value}}}"),
            };
            log_request(kind.as_str(), path.as_deref(), started, None);
            json_response(StatusCode::OK, body)
        }
        Err(error) => {
            let error = state.public_error(error);
            log_request(kind.as_str(), path.as_deref(), started, Some(&error));
            error_response(&error)
        }
    };
    state.metrics.answered(kind, response.status().as_u16());
    response
}

/// The header naming the caller's sync session on a mutation (read-your-writes).
const SESSION_HEADER: &str = "x-convoy-session";

/// `GET /api/sync`: a new session's event stream. When the app authenticates requests, its
/// `createContext` runs once, now: a refusal answers with its error instead of a stream.
async fn sync_stream(state: &Arc<State>, request: &Request<Incoming>) -> Response<Body> {
    if request.method() != Method::GET {
        let mut response = error_response(&ConvoyError::InvalidArgs(
            "/api/sync takes GET, and answers with an event stream".into(),
        ));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response.map(BodyExt::boxed_unsync);
    }
    if state.live.sessions() >= state.max_streams {
        return error_response(&ConvoyError::Unavailable(format!(
            "this server has {} sync streams open, its limit; try again later",
            state.max_streams
        )))
        .map(BodyExt::boxed_unsync);
    }
    let headers_json = headers_json(request);
    // Without createContext, handlers see nothing of the request: one identity for everyone.
    let mut identity = String::new();
    if let Some(connect) = state.functions.connect() {
        let started = Instant::now();
        match state
            .runner
            .run(&connect, CONNECT, "{}", &headers_json)
            .await
        {
            Ok(context) => identity = context,
            Err(error) => {
                let error = state.public_error(error);
                log_request("sync", None, started, Some(&error));
                return error_response(&error).map(BodyExt::boxed_unsync);
            }
        }
    }
    let session = state
        .live
        .open(identity, credentials_of(request.headers()), headers_json);
    let body = crate::sse::stream(
        state.live.clone(),
        state.metrics.clone(),
        session,
        state.stream_idle_timeout,
    );
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold events back in a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `POST /api/sync/<session>`: add and remove the session's subscriptions.
async fn sync_change(
    state: &Arc<State>,
    session: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response = error_response(&ConvoyError::InvalidArgs(
            "/api/sync/<session> takes POST with {\"add\", \"remove\"}".into(),
        ));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let result = async {
        let session = state.live.session(session).ok_or_else(|| {
            ConvoyError::NotFound(format!(
                "there is no sync session {session:?}; open one with GET /api/sync"
            ))
        })?;
        if credentials_of(request.headers()) != session.credentials() {
            return Err(ConvoyError::Forbidden(
                "this session belongs to another identity (Authorization and Cookie must match the stream's)".into(),
            ));
        }
        if let Err(response) = json_content_type(&request) {
            return Ok(Some(*response));
        }
        let body = read_body(request, state.max_body_bytes).await?;
        check_nesting(&body)?;
        crate::sse::change(&state.live, &session, &body).map(|()| None)
    }
    .await;
    match result {
        Ok(Some(refused)) => refused,
        Ok(None) => json_response(StatusCode::OK, "{\"value\":null}".into()),
        Err(error) => error_response(&state.public_error(error)),
    }
}

/// Bodies are JSON. A request that says it sends something else (a file upload, XML) is refused
/// with 415 before it is read. Accepted: `application/json` and `…+json`, no `Content-Type`, and
/// the labels tools put on a JSON body by default: `text/plain` (`fetch` with a string body) and
/// `application/x-www-form-urlencoded` (`curl -d`). Cross-site browser posts, which may carry
/// those, are refused by origin before this (see [`route`]).
fn json_content_type(
    request: &Request<Incoming>,
) -> std::result::Result<(), Box<Response<Full<Bytes>>>> {
    let Some(value) = request.headers().get(CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .ok()
        .and_then(|value| value.split(';').next())
        .map(|media_type| media_type.trim().to_ascii_lowercase());
    if media_type.is_some_and(|media_type| {
        media_type == "application/json"
            || media_type.ends_with("+json")
            || media_type == "text/plain"
            || media_type == "application/x-www-form-urlencoded"
    }) {
        return Ok(());
    }
    let mut response = error_response(&ConvoyError::InvalidArgs(format!(
        "the body must be JSON, sent with Content-Type: application/json (not {})",
        String::from_utf8_lossy(value.as_bytes())
    )));
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    Err(Box::new(response))
}

/// How deeply a request body's arrays and objects may nest. Documents are held to far less (16
/// levels, in the TypeScript layer); this keeps a hostile body from costing more than a scan.
const MAX_BODY_NESTING: usize = 64;

/// Refuses a body that nests deeper than [`MAX_BODY_NESTING`], in one pass over its bytes
/// (brackets inside strings do not count), before anything parses it.
fn check_nesting(body: &[u8]) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BODY_NESTING {
                    return Err(ConvoyError::InvalidArgs(format!(
                        "the body nests arrays and objects more than {MAX_BODY_NESTING} levels deep"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CallRequest<'a> {
    path: String,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

/// Runs the call a request asks for; `path` learns the function's name once the body is read.
async fn call(
    state: &State,
    kind: CallKind,
    request: Request<Incoming>,
    path: &mut Option<String>,
) -> Result<String> {
    let headers_json = headers_json(&request);
    let body = read_body(request, state.max_body_bytes).await?;
    check_nesting(&body)?;
    let request: CallRequest = serde_json::from_slice(&body).map_err(|error| {
        ConvoyError::InvalidArgs(format!(
            "the body must be JSON of the form {{\"path\": \"file:function\", \"args\": {{…}}}}: {error}"
        ))
    })?;
    *path = Some(request.path.clone());
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
    if kind == CallKind::Query && state.live.is_live(&request.path, args) {
        // Someone subscribes to this very query. If it is the caller (as createContext tells;
        // everyone is, without one) and the result is current, no run is needed.
        let position = state.runner.engine.log().position();
        let identity = match state.functions.connect() {
            Some(connect) => {
                state
                    .runner
                    .run(&connect, IDENTIFY, "{}", &headers_json)
                    .await?
            }
            None => String::new(),
        };
        if let Some(value) = state
            .live
            .current_result(&request.path, args, &identity, position)
        {
            state.metrics.served_live();
            return Ok(value);
        }
    }
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

impl State {
    /// What a client may see of an error (see [`ConvoyError::public`]).
    pub(crate) fn public_error(&self, error: ConvoyError) -> ConvoyError {
        error.public(self.dev)
    }
}

/// The request log: one line per call, with its function, outcome and duration (at `info`, on
/// the `convoy::request` target; `CONVOY_LOG` chooses what is shown).
fn log_request(kind: &str, function: Option<&str>, started: Instant, error: Option<&ConvoyError>) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let function = function.unwrap_or("");
    match error {
        None => tracing::info!(
            target: "convoy::request",
            kind,
            function,
            outcome = "ok",
            duration_ms,
        ),
        Some(error) => {
            let request_id = match error {
                ConvoyError::App {
                    data: Some(data), ..
                } => data.get("requestId").and_then(|id| id.as_str()),
                _ => None,
            };
            tracing::info!(
                target: "convoy::request",
                kind,
                function,
                outcome = error.code(),
                status = error.http_status(),
                duration_ms,
                request_id,
            );
        }
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

#[cfg(test)]
mod tests {
    use super::{check_nesting, MAX_BODY_NESTING};

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(check_nesting(nested(MAX_BODY_NESTING).as_bytes()).is_ok());
        assert!(check_nesting(nested(MAX_BODY_NESTING + 1).as_bytes()).is_err());
        assert!(check_nesting(nested(100_000).as_bytes()).is_err());
        let brackets_in_a_string =
            format!(r#"{{"text": "{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(check_nesting(brackets_in_a_string.as_bytes()).is_ok());
        assert!(check_nesting(br#"{"a": "\\", "b": [[1]]}"#).is_ok());
    }
}
