//! Request bodies: content type, size and nesting limits, and the headers handed to
//! `createContext`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use convoy_core::{ConvoyError, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use crate::respond::error_response;

/// Bodies are JSON. A request that says it sends something else (a file upload, XML) is refused
/// with 415 before it is read. Accepted: `application/json` and `…+json`, no `Content-Type`, and
/// the labels tools put on a JSON body by default: `text/plain` (`fetch` with a string body) and
/// `application/x-www-form-urlencoded` (`curl -d`). Cross-site browser posts, which may carry
/// those, are refused by origin before this (see [`route`]).
pub(crate) fn json_content_type(
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
pub(crate) const MAX_BODY_NESTING: usize = 64;

/// Refuses a body that nests deeper than [`MAX_BODY_NESTING`], in one pass over its bytes
/// (brackets inside strings do not count), before anything parses it.
pub(crate) fn check_nesting(body: &[u8]) -> Result<()> {
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

/// How long a request body may take before it has to keep up [`MIN_BODY_RATE`].
pub const BODY_GRACE: Duration = Duration::from_secs(10);

/// The slowest a request body may arrive, in bytes per second, after [`BODY_GRACE`]: a 1 MiB
/// body has 74 s. A client that trickles one (slowloris) is cut off.
pub const MIN_BODY_RATE: usize = 16 * 1024;

fn too_slow() -> ConvoyError {
    ConvoyError::InvalidArgs(format!(
        "the request body arrived too slowly (a body has {} s, then must keep up {} KiB/s)",
        BODY_GRACE.as_secs(),
        MIN_BODY_RATE / 1024
    ))
}

/// Reads a request body of at most `limit` bytes. A larger one is still read to its end and
/// dropped, up to a bound, so that the client (which is busy uploading) receives the 413 instead
/// of a connection reset; past the bound the connection is cut.
pub(crate) async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes> {
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
    let started = Instant::now();
    loop {
        // The body must keep coming: a grace, then at least MIN_BODY_RATE on average.
        let allowed = BODY_GRACE + Duration::from_secs_f64(received as f64 / MIN_BODY_RATE as f64);
        let Some(left) = allowed.checked_sub(started.elapsed()) else {
            return Err(too_slow());
        };
        let Ok(frame) = tokio::time::timeout(left, body.frame()).await else {
            return Err(too_slow());
        };
        let Some(frame) = frame else {
            break;
        };
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
pub(crate) fn headers_json(request: &Request<Incoming>) -> String {
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
