//! Says which step of connecting failed — DNS, TCP, TLS, authentication, the database — and how
//! to fix it, so that a wrong URL costs a minute, not an afternoon.

use std::error::Error as _;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use super::url::SslMode;
use crate::error::ConvoyError;

/// What the failing connection was asked to do, for the message.
pub struct Attempt<'a> {
    pub config: &'a tokio_postgres::Config,
    pub mode: SslMode,
    /// The variable the URL came from: `DATABASE_URL` or `DATABASE_DIRECT_URL`.
    pub source: &'a str,
}

impl Attempt<'_> {
    fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        }
    }

    fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    fn user(&self) -> &str {
        self.config.get_user().unwrap_or("(your OS user)")
    }
}

/// Turns a failed connection into an `UNAVAILABLE` whose message names the step and the fix.
pub async fn explain(attempt: &Attempt<'_>, error: &tokio_postgres::Error) -> ConvoyError {
    let what = format!(
        "could not connect to Postgres at {}:{} ({})",
        attempt.host(),
        attempt.port(),
        attempt.source
    );
    let detail = match error.as_db_error() {
        Some(db_error) => refused_by_server(attempt, db_error),
        None => match tls_problem(error) {
            Some(problem) => tls_message(attempt, problem),
            None => lost_message(attempt, error).await,
        },
    };
    ConvoyError::Unavailable(format!("{what}: {detail}"))
}

/// The server answered, and said no.
fn refused_by_server(attempt: &Attempt<'_>, db_error: &tokio_postgres::error::DbError) -> String {
    let code = db_error.code();
    let message = db_error.message();
    if *code == SqlState::INVALID_PASSWORD {
        return format!(
            "authentication failed for user {:?} ({message}). Check the user and password in \
             {}; characters like @ : / ? # in a password must be percent-encoded (@ is %40).",
            attempt.user(),
            attempt.source
        );
    }
    if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        if message.starts_with("role ") && message.ends_with("does not exist") {
            return format!(
                "{message}. Create the role (`CREATE ROLE {} LOGIN PASSWORD '…'`) or fix the user \
                 before the @ in {}.",
                attempt.user(),
                attempt.source
            );
        }
        if message.contains("no encryption") {
            return format!(
                "the server accepts only encrypted connections, and this one was plain text \
                 (sslmode={}). Use sslmode=require (or verify-full), or leave sslmode out.",
                attempt.mode.name()
            );
        }
        return format!(
            "the server refused user {:?}: {message}. Its pg_hba.conf decides who may connect \
             from where.",
            attempt.user()
        );
    }
    if *code == SqlState::INVALID_CATALOG_NAME {
        let database = attempt.config.get_dbname().unwrap_or(attempt.user());
        return format!(
            "the database {database:?} does not exist ({message}). Create it (`createdb \
             {database}`, or in your host's console) or fix the name after the last / in {}.",
            attempt.source
        );
    }
    if *code == SqlState::TOO_MANY_CONNECTIONS {
        return format!(
            "the server has no connection slots left ({message}). Lower poolSize, or use your \
             host's pooler for other clients."
        );
    }
    if *code == SqlState::CANNOT_CONNECT_NOW {
        return format!("the server is starting up or shutting down ({message}); try again.");
    }
    if message.contains("channel binding") || message.contains("SASL") {
        return format!("{message}. channel_binding=require needs TLS and SCRAM password auth.");
    }
    format!("{message} (SQLSTATE {})", code.code())
}

/// What went wrong in TLS, found among the error's causes.
enum TlsProblem<'a> {
    /// The server said it does not speak TLS.
    NotOffered,
    Certificate(&'a rustls::CertificateError),
    Other(String),
}

fn tls_problem(error: &tokio_postgres::Error) -> Option<TlsProblem<'_>> {
    let mut source = error.source();
    while let Some(cause) = source {
        // tokio-rustls reports a rustls error inside an io::Error, whose `source()` skips it.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map_or(cause, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(rustls::Error::InvalidCertificate(problem)) = inner.downcast_ref() {
            return Some(TlsProblem::Certificate(problem));
        }
        if let Some(other) = inner.downcast_ref::<rustls::Error>() {
            return Some(TlsProblem::Other(other.to_string()));
        }
        source = cause.source();
    }
    let text = error.to_string();
    if text.contains("server does not support TLS") {
        return Some(TlsProblem::NotOffered);
    }
    text.contains("TLS").then_some(TlsProblem::Other(text))
}

fn tls_message(attempt: &Attempt<'_>, problem: TlsProblem<'_>) -> String {
    let fix_ca =
        "Give the CA that signed the server's certificate with sslrootcert=/path/to/ca.pem \
                  (your host's console offers it for download), or sslrootcert=system if it is \
                  a public CA";
    match problem {
        TlsProblem::NotOffered => format!(
            "sslmode={} needs TLS, and the server does not offer it (its `ssl` setting is off). \
             Turn ssl on in postgresql.conf, or use sslmode=prefer or disable on a network you trust.",
            attempt.mode.name()
        ),
        TlsProblem::Certificate(problem) => {
            use rustls::CertificateError as E;
            let reason = match problem {
                E::UnknownIssuer => {
                    format!("the server's TLS certificate is not signed by a CA Convoy trusts. {fix_ca}.")
                }
                E::NotValidForName | E::NotValidForNameContext { .. } => format!(
                    "the server's TLS certificate is not made out to {:?} ({problem}). Connect by a \
                     name the certificate carries, or use sslmode=verify-ca to check only the CA.",
                    attempt.host()
                ),
                E::Expired | E::ExpiredContext { .. } => format!(
                    "the server's TLS certificate has expired ({problem}); the server must renew it."
                ),
                E::NotValidYet | E::NotValidYetContext { .. } => format!(
                    "the server's TLS certificate is not valid yet ({problem}); check both clocks."
                ),
                other => format!(
                    "the server's TLS certificate was refused: {other}. {fix_ca}, or use \
                     sslmode=require to encrypt without checking it."
                ),
            };
            format!("TLS failed (sslmode={}): {reason}", attempt.mode.name())
        }
        TlsProblem::Other(text) => format!("TLS failed (sslmode={}): {text}", attempt.mode.name()),
    }
}

/// No answer from Postgres: the connection could not be made (DNS, TCP), or was made and then
/// lost or refused before the server said why.
async fn lost_message(attempt: &Attempt<'_>, error: &tokio_postgres::Error) -> String {
    let text = error.to_string();
    let cause = io_cause(error).unwrap_or_else(|| {
        error
            .source()
            .map_or_else(|| text.clone(), ToString::to_string)
    });
    if text.starts_with("error connecting to server") || text.starts_with("timeout waiting") {
        return network_message(attempt, error).await;
    }
    if cause.contains("password missing") || text.contains("password missing") {
        return format!(
            "the server asks user {:?} for a password, and {} has none. Write it into the URL \
             (postgresql://user:password@host/db, percent-encoding @ : / ? #) or set PGPASSWORD.",
            attempt.user(),
            attempt.source
        );
    }
    if text.starts_with("authentication error") {
        return format!(
            "authentication failed before the server answered ({cause}). Is the password missing \
             from {}? With channel_binding=require the server must offer SCRAM with channel \
             binding, which needs TLS and a SCRAM password.",
            attempt.source
        );
    }
    format!(
        "the connection was opened, then closed before Postgres answered ({text}: {cause}). A \
         proxy or load balancer in front of Postgres may have closed it, or it expects another \
         protocol on this port."
    )
}

/// No answer from Postgres: DNS or TCP. The name is resolved again here to tell the two apart.
async fn network_message(attempt: &Attempt<'_>, error: &tokio_postgres::Error) -> String {
    let host = attempt.host();
    let port = attempt.port();
    if host.starts_with('/') {
        return format!(
            "{error}. Is Postgres running, with its socket in {host}? (`pg_isready -h {host}`)"
        );
    }
    // An IPv6 address goes in brackets before its port.
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let resolved = tokio::net::lookup_host(target).await;
    match resolved {
        Err(lookup) => format!(
            "DNS: the host name {host:?} could not be resolved ({lookup}). Check the host in {} \
             for a typo, or this machine's network.",
            attempt.source
        ),
        Ok(addresses) => {
            let addresses: Vec<String> = addresses.map(|address| address.to_string()).collect();
            let cause = io_cause(error).unwrap_or_else(|| error.to_string());
            format!(
                "TCP: {host} resolves ({}), but no connection could be made to port {port}: \
                 {cause}. Is Postgres running and listening there (`listen_addresses`), and does \
                 a firewall or security group let this machine in?",
                addresses.join(", ")
            )
        }
    }
}

fn io_cause(error: &tokio_postgres::Error) -> Option<String> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.to_string());
        }
        source = cause.source();
    }
    None
}
