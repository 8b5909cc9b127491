//! The server log on stderr.

use napi_derive::napi;

/// Starts the server log on stderr, once per process (later calls change nothing). `CONVOY_LOG`
/// (a tracing filter such as `info` or `warn,convoy::request=info`) overrides `default_filter`.
/// Lines are JSON when `json` is set, and text otherwise, coloured only at a terminal.
#[napi]
pub fn init_logging(default_filter: String, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
