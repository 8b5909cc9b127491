//! How errors and answers cross between the core and JavaScript.

use convoy_core::ConvoyError;
use napi::{Error, Result, Status};

/// napi rejects async calls with a generic status only, so the code travels in the message;
/// `src/server/native.ts` decodes it back into a `ConvoyError`.
pub(crate) fn to_js(error: ConvoyError) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("CONVOY_ERROR:{}", error.to_native_json()),
    )
}

/// A JSON value the JavaScript side sent as text.
pub(crate) fn json_value(text: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| {
        to_js(ConvoyError::InvalidArgs(format!(
            "{what} is not JSON: {error}"
        )))
    })
}

/// User code's answer: the result's JSON, or an error's `{code, message, data?}` JSON.
pub(crate) fn outcome_of(ok: bool, payload_json: String) -> convoy_core::Outcome {
    if ok {
        return Ok(payload_json);
    }
    Err(serde_json::from_str(&payload_json).map_or_else(
        |_| ConvoyError::Internal(payload_json),
        |value| ConvoyError::from_json(&value),
    ))
}
