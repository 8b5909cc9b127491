//! Cross-origin requests: a browser app served from another origin (a Vite dev server on :5173,
//! say) may call the API only when its origin is allowed. An allowed origin is echoed back, never
//! a wildcard, so requests that carry credentials stay safe.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ORIGIN,
    VARY,
};

/// Origins allowed to call the API: exact origins (`https://app.example.com`), or a scheme and
/// host with any port (`http://localhost:*`).
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins {
    patterns: Vec<String>,
}

impl AllowedOrigins {
    pub fn new(patterns: impl IntoIterator<Item = String>) -> Self {
        Self {
            patterns: patterns
                .into_iter()
                .map(|pattern| pattern.trim_end_matches('/').to_owned())
                .collect(),
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix(":*") {
                Some(host) => origin.strip_prefix(host).is_some_and(|rest| {
                    rest.is_empty()
                        || rest
                            .strip_prefix(':')
                            .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
                }),
                None => origin == pattern,
            })
    }

    /// The request's origin, when it has one and it is allowed.
    pub fn allowed_origin<'a>(&self, request_headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = request_headers.get(ORIGIN)?;
        self.allows(origin.to_str().ok()?).then_some(origin)
    }

    /// Adds the CORS headers of an allowed origin to a response.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response_headers: &mut HeaderMap) {
        response_headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin {
            response_headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response_headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            // A mutation's answer names its process, which the client's next query repeats.
            response_headers.insert(
                hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-convoy-process"),
            );
        }
    }

    /// The answer to a preflight from an allowed origin.
    pub fn preflight(response_headers: &mut HeaderMap) {
        response_headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        response_headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-convoy-session, x-convoy-fresh, idempotency-key",
            ),
        );
        response_headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_and_any_port_patterns() {
        let allowed = AllowedOrigins::new([
            "http://localhost:*".to_owned(),
            "https://app.example.com/".to_owned(),
        ]);
        assert!(allowed.allows("http://localhost:5173"));
        assert!(allowed.allows("http://localhost"));
        assert!(allowed.allows("https://app.example.com"));
        assert!(!allowed.allows("http://localhost.evil.com"));
        assert!(!allowed.allows("http://localhost:5173.evil.com"));
        assert!(!allowed.allows("https://localhost:5173"));
        assert!(!allowed.allows("https://app.example.com.evil.com"));
        assert!(!AllowedOrigins::default().allows("http://localhost:5173"));
    }
}
