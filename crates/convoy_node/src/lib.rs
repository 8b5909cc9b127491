//! The napi binding: converts between JavaScript and the Rust core, and holds no logic of its own.
//! Its only user is `src/server/native.ts`, which is typed against the generated `native.d.cts`.

mod connect;
mod dispatch;
mod engine;
mod errors;
mod logging;
mod runtime;
mod server_options;
