//! Calls handed to JavaScript: their shape, and the `ThreadsafeFunction` that carries them.

use convoy_core::calls::{Dispatch, Dispatcher};
use convoy_core::ConvoyError;
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

/// What a call is: JavaScript gets one of these two strings.
#[napi(string_enum = "lowercase")]
pub enum FunctionKind {
    Query,
    Mutation,
}

impl From<convoy_core::CallKind> for FunctionKind {
    fn from(kind: convoy_core::CallKind) -> Self {
        match kind {
            convoy_core::CallKind::Query => Self::Query,
            convoy_core::CallKind::Mutation => Self::Mutation,
        }
    }
}

#[napi(object)]
pub struct FunctionCall {
    pub call_id: u32,
    pub kind: FunctionKind,
    pub path: String,
    pub args_json: String,
    pub headers_json: String,
}

pub(crate) struct NodeDispatcher {
    pub(crate) dispatch:
        ThreadsafeFunction<FunctionCall, Unknown<'static>, FunctionCall, Status, false>,
}

impl Dispatcher for NodeDispatcher {
    fn dispatch(&self, call: Dispatch) -> convoy_core::Result<()> {
        let status = self.dispatch.call(
            FunctionCall {
                call_id: call.call_id,
                kind: call.kind.into(),
                path: call.path,
                args_json: call.args_json,
                headers_json: call.headers_json,
            },
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        match status {
            Status::Ok => Ok(()),
            status => Err(ConvoyError::Unavailable(format!(
                "the JavaScript runtime is not taking calls ({status})"
            ))),
        }
    }
}
