//! Routing (SPEC §6): `POST /api/query` and `/api/mutation`, the sync stream and its session
//! changes, `/health` and `/metrics`, with the origin check in front.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use convoy_core::{CallKind, ConvoyError, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::body::{check_nesting, headers_json, json_content_type, read_body};
use crate::cors::AllowedOrigins;
use crate::respond::{error_response, json_response, log_request};
use crate::sse::{credentials_of, has_credentials, Body};
use crate::state::State;
use convoy_core::calls::{FunctionInfo, CONNECT, HEALTH, IDENTIFY, VALIDATE};
use convoy_core::reactivity::{Session, Subscribe};

pub(crate) async fn route(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let origin = request.headers().get(ORIGIN).cloned();
    let allowed = state.cors.allowed_origin(request.headers()).cloned();
    if let Some(origin) = &origin {
        // A browser request from a page of another origin that is not allowed is refused whole,
        // not only hidden from the page: a cross-site form post must never run a mutation.
        if allowed.is_none() && !is_own_origin(state, origin) {
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

/// Whether `origin` is the server's own (the address it listens on), so a page it served may call
/// it without being listed in `allowedOrigins`.
fn is_own_origin(state: &State, origin: &HeaderValue) -> bool {
    origin.to_str().is_ok_and(|origin| {
        state
            .own_origins
            .iter()
            .any(|own| own.eq_ignore_ascii_case(origin))
    })
}

pub(crate) async fn handle(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let kind = match request.uri().path() {
        "/api/query" => CallKind::Query,
        "/api/mutation" => CallKind::Mutation,
        "/health" => return health(state, request.method()).await,
        "/metrics" => {
            let live_queries = state.live.len();
            let mut body = state.metrics.render(&state.runner.engine, &state.runner.stats, &state.live, live_queries);
            body.push_str(&crate::metrics::stages(&state.runner.engine).await);
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
    // Naming another identity's session (to wait on its stream, or learn how far it has read) is
    // refused before the mutation runs.
    let owned = match session.as_deref().map(|id| state.live.session(id)) {
        Some(Some(named)) => owns_session(state, &named, &request).await,
        _ => Ok(()),
    };
    if let Err(error) = owned {
        let error = state.public_error(error);
        log_request(kind.as_str(), None, started, Some(&error));
        let response = error_response(&error);
        state.metrics.answered(kind, response.status().as_u16());
        return response;
    }
    let response = match call(state, kind, request, &mut path).await {
        Ok(value) => {
            if kind == CallKind::Mutation {
                // Answered only once the other processes can hear of it: a client that reads
                // from another process next can ask that one to catch up first.
                state.runner.engine.announced().await;
            }
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
            let mut response = json_response(StatusCode::OK, body);
            if kind == CallKind::Mutation {
                if let Ok(process) = HeaderValue::from_str(state.runner.engine.process_id()) {
                    response.headers_mut().insert(PROCESS_HEADER, process);
                }
            }
            response
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

/// Whether `subscription` names a query its args fit (the app's own check of them, in
/// JavaScript, without running the query).
async fn subscribable(state: &State, subscription: &Subscribe) -> Result<()> {
    let Some(function) = state.functions.get(&subscription.path) else {
        return Err(ConvoyError::NotFound(format!(
            "there is no function named {:?}",
            subscription.path
        )));
    };
    if function.kind != CallKind::Query {
        return Err(ConvoyError::InvalidArgs(format!(
            "{} is a mutation; only queries can be subscribed to",
            subscription.path
        )));
    }
    // The args as a string: JavaScript parses them as it parses a call's.
    let question = serde_json::json!({ "path": subscription.path, "args": subscription.args });
    let checker = FunctionInfo::new(CallKind::Query, None);
    state
        .runner
        .run(&checker, VALIDATE, &question.to_string(), "{}")
        .await
        .map(|_| ())
}

/// Refuses a caller who is not the one the session was opened for: with `createContext`, whose
/// answer for this request's headers must be the one it gave when the stream opened, whatever
/// headers the app identifies callers by; without it (one identity for everyone), or when what it
/// returned cannot be compared (not plain data: the stream got an identity of its own, see
/// `identityOf` in src/server/identity.ts), the request's `Authorization` and `Cookie` must be the
/// stream's — and, in the second case, not both missing (such a stream is then nobody's to change).
pub(crate) async fn owns_session(
    state: &State,
    session: &Session,
    request: &Request<Incoming>,
) -> Result<()> {
    let comparable = !session.identity().starts_with(UNCOMPARABLE_IDENTITY);
    let same = match state.functions.connect() {
        Some(connect) if comparable => {
            let headers_json = headers_json(request);
            state
                .runner
                .run(&connect, IDENTIFY, "{}", &headers_json)
                .await?
                == session.identity()
        }
        // Not plain data: the caller must bring the stream's credentials, and some — when both it
        // and a stranger send none, equal credentials would let anyone in.
        Some(_) => {
            let credentials = credentials_of(request.headers());
            has_credentials(&credentials) && credentials == session.credentials()
        }
        None => credentials_of(request.headers()) == session.credentials(),
    };
    if same {
        Ok(())
    } else {
        Err(ConvoyError::Forbidden(
            "this sync session belongs to another identity: only the caller that opened its stream may change it or name it".into(),
        ))
    }
}

/// How the identity of a stream whose context is not plain data begins (JSON text of
/// `stream:<uuid>`): a new one each time `createContext` runs, so never equal to another.
const UNCOMPARABLE_IDENTITY: &str = "\"stream:";

/// The header naming the caller's sync session on a mutation (read-your-writes).
pub(crate) const SESSION_HEADER: &str = "x-convoy-session";

/// `GET /api/sync`: a new session's event stream. When the app authenticates requests, its
/// `createContext` runs once, now: a refusal answers with its error instead of a stream.
pub(crate) async fn sync_stream(state: &Arc<State>, request: &Request<Incoming>) -> Response<Body> {
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
pub(crate) async fn sync_change(
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
        owns_session(state, &session, &request).await?;
        if let Err(response) = json_content_type(&request) {
            return Ok(Err(*response));
        }
        let body = read_body(request, state.max_body_bytes).await?;
        check_nesting(&body)?;
        let change = crate::sse::parse_change(&body)?;
        // Refused now, each with its error on the stream, rather than subscribed and failing on
        // every run: an unknown function, a mutation, or args the function's input refuses.
        // Checked all at once: a change of a thousand subscriptions is not a thousand turns.
        let checks = futures_util::future::join_all(
            change
                .add
                .iter()
                .map(|subscription| subscribable(state, subscription)),
        )
        .await;
        let mut accepted = Vec::with_capacity(change.add.len());
        let mut refused = Vec::new();
        for (subscription, check) in change.add.into_iter().zip(checks) {
            match check {
                Ok(()) => accepted.push(subscription),
                Err(error) => refused.push((subscription.id, error)),
            }
        }
        state.live.change(&session, accepted, &change.remove)?;
        for (id, error) in refused {
            state.live.refuse(&session, &id, error);
        }
        if !change.settle {
            return Ok(Ok(None));
        }
        // Read-your-writes when a mutation was answered by another process: once this one has
        // heard of every commit answered before now, and its subscriptions have run on them,
        // say how far the stream must be read.
        state.runner.engine.caught_up_with_others().await;
        let position = state.runner.engine.log().position();
        Ok(Ok(state.live.settle(session.id(), position).await))
    }
    .await;
    match result {
        Ok(Err(refused)) => refused,
        Ok(Ok(None)) => json_response(StatusCode::OK, "{\"value\":null}".into()),
        Ok(Ok(Some(seq))) => {
            json_response(StatusCode::OK, format!("{{\"value\":null,\"sync\":{seq}}}"))
        }
        Err(error) => error_response(&state.public_error(error)),
    }
}

#[derive(Deserialize)]
struct CallRequest<'a> {
    path: String,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

/// Runs the call a request asks for; `path` learns the function's name once the body is read.
pub(crate) async fn call(
    state: &State,
    kind: CallKind,
    request: Request<Incoming>,
    path: &mut Option<String>,
) -> Result<String> {
    let headers_json = headers_json(&request);
    // Fresh unless the mutation was this process's own: its log has that commit already.
    let fresh = request
        .headers()
        .get(FRESH_HEADER)
        .is_some_and(|process| process.as_bytes() != state.runner.engine.process_id().as_bytes());
    let key = (kind == CallKind::Mutation)
        .then(|| request.headers().get(IDEMPOTENCY_KEY))
        .flatten()
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ConvoyError::InvalidArgs("an Idempotency-Key must be visible ASCII".into())
            })
        })
        .transpose()?;
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
    // A client that has just seen a mutation answered (perhaps by another process) asks for a
    // run: a live result here may not have heard of that commit yet.
    if kind == CallKind::Query && !fresh && state.live.is_live(&request.path, args) {
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
    match key {
        Some(key) => {
            state
                .runner
                .run_keyed(&function, &request.path, args, &headers_json, &key)
                .await
        }
        None => {
            state
                .runner
                .run(&function, &request.path, args, &headers_json)
                .await
        }
    }
}

/// The header of a query sent soon after a mutation was answered, naming the process that
/// answered it (from [`PROCESS_HEADER`]): another process must not answer it from a live result,
/// which may not have heard of that commit yet.
pub(crate) const FRESH_HEADER: &str = "x-convoy-fresh";

/// The header of a mutation's answer that names the process that committed it.
pub(crate) const PROCESS_HEADER: &str = "x-convoy-process";

/// The header a client names a mutation by, the same on every retry of it, so that it applies
/// at most once (see `convoy_core::engine::idempotency`).
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A connection admitted over a cap (see `connections`): `/health` is answered, anything else is
/// `503 UNAVAILABLE`, and the connection closes after.
pub(crate) async fn health_only(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let mut response = if request.uri().path() == "/health" {
        health(state, request.method()).await
    } else {
        error_response(&ConvoyError::Unavailable(
            "the server has too many open connections (its cap, or this address's); try again shortly".into(),
        ))
    };
    response
        .headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    response.map(BodyExt::boxed_unsync)
}

pub(crate) async fn health(state: &State, method: &Method) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return error_response(&ConvoyError::InvalidArgs("/health takes GET".into()));
    }
    if let Err(error) = state.runner.engine.database().ping().await {
        return error_response(&error);
    }
    // The database answers; so must JavaScript, where every function runs. A blocked event loop
    // once left /health at 200 while nothing else was served.
    let javascript = FunctionInfo::new(CallKind::Query, Some(EVENT_LOOP_LIMIT));
    match state.runner.run(&javascript, HEALTH, "{}", "{}").await {
        Ok(_) => json_response(StatusCode::OK, "{\"status\":\"ok\"}".into()),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{{\"status\":\"degraded\",\"error\":{{\"code\":\"UNAVAILABLE\",\"message\":\"the JavaScript event loop did not answer within {} ms\"}}}}",
                EVENT_LOOP_LIMIT.as_millis()
            ),
        ),
    }
}

/// How long `/health` waits for JavaScript to answer before it reports the process degraded.
pub const EVENT_LOOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);
