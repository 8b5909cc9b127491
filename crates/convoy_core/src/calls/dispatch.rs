//! How the core hands a call to user code: the Node binding implements [`Dispatcher`] with a
//! `ThreadsafeFunction`; Rust tests stand in for it.

use crate::{CallKind, Result};

/// A call as user code receives it.
pub struct Dispatch {
    pub call_id: u32,
    pub kind: CallKind,
    pub path: String,
    pub args_json: String,
    pub headers_json: String,
}

/// Hands calls to user code (the Node binding implements it with a `ThreadsafeFunction`). The
/// answer comes back later through [`Engine::respond`].
pub trait Dispatcher: Send + Sync + 'static {
    fn dispatch(&self, call: Dispatch) -> Result<()>;
}
