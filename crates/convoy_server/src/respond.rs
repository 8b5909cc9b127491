//! Responses: the JSON envelopes of SPEC §6 and the one-line request log.

use std::time::Instant;

use bytes::Bytes;
use convoy_core::ConvoyError;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The request log: one line per call, with its function, outcome and duration (at `info`, on
/// the `convoy::request` target; `CONVOY_LOG` chooses what is shown).
pub(crate) fn log_request(
    kind: &str,
    function: Option<&str>,
    started: Instant,
    error: Option<&ConvoyError>,
) {
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

pub(crate) fn error_response(error: &ConvoyError) -> Response<Full<Bytes>> {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        serde_json::json!({ "error": error.to_json() }).to_string(),
    )
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
