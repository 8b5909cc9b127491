//! Says which step of connecting failed — DNS, TCP, TLS, authentication, the database — and how
//! to fix it, so that a wrong URL costs a minute, not an afternoon.

use std::error::Error as _;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use super::tls::Trusted;
use super::url::SslMode;
use crate::error::ConvoyError;

/// What the failing connection was asked to do, for the message.
pub struct Attempt<'a> {
    pub config: &'a tokio_postgres::Config,
    pub mode: SslMode,
    /// What the server's certificate was checked against.
    pub trusted: &'a Trusted,
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
    match problem {
        TlsProblem::NotOffered => format!(
            "sslmode={} needs TLS, and the server does not offer it (its `ssl` setting is off). \
             Turn ssl on in postgresql.conf, or use sslmode=prefer or disable on a network you trust.",
            attempt.mode.name()
        ),
        TlsProblem::Certificate(problem) => format!(
            "TLS failed (sslmode={}): {}",
            attempt.mode.name(),
            certificate_message(attempt, problem)
        ),
        TlsProblem::Other(text) => format!("TLS failed (sslmode={}): {text}", attempt.mode.name()),
    }
}

const FIX_CA: &str = "Give the CA that signed the server's certificate with \
    sslrootcert=/path/to/ca.pem (your host's console offers it for download; for a self-signed \
    certificate, that certificate itself), or sslrootcert=system if it is a public CA";

/// Why the server's certificate was refused, in words, with what was trusted and the fix.
fn certificate_message(attempt: &Attempt<'_>, problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    let trusted = trusted_phrase(attempt.trusted);
    match problem {
        E::UnknownIssuer => format!(
            "the server's TLS certificate has an unknown issuer: it is not signed by a CA Convoy \
             trusts, which is {trusted}. {FIX_CA}."
        ),
        E::Other(other) if is_ca_as_server_certificate(other) => format!(
            "the server's TLS certificate is a CA certificate (basicConstraints CA:TRUE, which \
             `openssl req -x509` sets unless told otherwise), and it is not one of {trusted}. A CA \
             certificate is taken as the server's own only when it is trusted as it is: if it is \
             self-signed (as the Postgres docs make it), give that very certificate as \
             sslrootcert=/path/to/server.crt; otherwise give the server a certificate with \
             CA:FALSE, signed by the CA you give as sslrootcert."
        ),
        E::NotValidForName => format!(
            "the server's TLS certificate is not made out to {:?}. Connect by a name the \
             certificate carries, or use sslmode=verify-ca to check only the CA.",
            attempt.host()
        ),
        E::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|name| presented_name(name)).collect();
            let carries = if names.is_empty() {
                "it carries no names (no subjectAltName)".to_owned()
            } else {
                format!("it is made out to {}", names.join(", "))
            };
            format!(
                "the server's TLS certificate is not made out to {:?}: {carries}. Connect by a \
                 name the certificate carries, or use sslmode=verify-ca to check only the CA.",
                attempt.host()
            )
        }
        E::Expired => "the server's TLS certificate has expired; the server must renew it.".into(),
        E::ExpiredContext { time, not_after } => format!(
            "the server's TLS certificate expired on {} ({} days ago); the server must renew it.",
            utc_date(not_after.as_secs()),
            time.as_secs().saturating_sub(not_after.as_secs()) / 86_400
        ),
        E::NotValidYet => {
            "the server's TLS certificate is not valid yet; check both clocks.".into()
        }
        E::NotValidYetContext { not_before, .. } => format!(
            "the server's TLS certificate is not valid before {}; check the clocks of this \
             machine and of the server.",
            utc_date(not_before.as_secs())
        ),
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
            "the server's TLS certificate is not for a TLS server (its extendedKeyUsage lacks \
             serverAuth); the server needs a certificate made for serverAuth."
                .into()
        }
        E::BadSignature => format!(
            "the signature on the server's TLS certificate does not verify against the CA it \
             names as its issuer, among {trusted}. {FIX_CA}."
        ),
        E::Other(other) => format!(
            "the server's TLS certificate was refused ({other}), checked against {trusted}. \
             {FIX_CA}, or use sslmode=require to encrypt without checking it."
        ),
        other => format!(
            "the server's TLS certificate was refused ({other}), checked against {trusted}. \
             {FIX_CA}, or use sslmode=require to encrypt without checking it."
        ),
    }
}

/// webpki's refusal of a CA certificate as a server's own (rustls passes it on as `Other`).
fn is_ca_as_server_certificate(other: &rustls::OtherError) -> bool {
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

fn trusted_phrase(trusted: &Trusted) -> String {
    match trusted {
        Trusted::Unchecked => "nothing".into(),
        Trusted::File(path) => format!("the certificates in sslrootcert={}", path.display()),
        Trusted::DefaultFile(path) => format!(
            "the certificates in {} (libpq's default file, read as no sslrootcert was given)",
            path.display()
        ),
        Trusted::System => "the operating system's CAs (sslrootcert=system)".into(),
        Trusted::SystemForMissingDefault(Some(path)) => format!(
            "the operating system's CAs (no sslrootcert was given, and libpq's default file {} \
             does not exist)",
            path.display()
        ),
        Trusted::SystemForMissingDefault(None) => "the operating system's CAs (no sslrootcert \
            was given, and there is no home folder for libpq's default ~/.postgresql/root.crt)"
            .into(),
    }
}

/// A name of the certificate as webpki reports it (`DnsName("localhost")`), as written in it.
fn presented_name(name: &str) -> String {
    for (prefix, suffix) in [("DnsName(\"", "\")"), ("IpAddress(", ")")] {
        if let Some(inner) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        {
            return inner.to_owned();
        }
    }
    name.to_owned()
}

/// `2026-12-01` for seconds since 1970 (UTC), by Howard Hinnant's days-to-civil algorithm.
fn utc_date(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} (UTC)")
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{CertificateError, OtherError};

    use super::*;

    fn message(trusted: &Trusted, host: &str, problem: &CertificateError) -> String {
        let mut config = tokio_postgres::Config::new();
        config.host(host).port(5432);
        let attempt = Attempt {
            config: &config,
            mode: SslMode::VerifyFull,
            trusted,
            source: "DATABASE_URL",
        };
        let text = certificate_message(&attempt, problem);
        assert!(!text.contains("OtherError"), "{text}");
        text
    }

    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds))
    }

    fn file() -> Trusted {
        Trusted::File(PathBuf::from("/etc/db/root.pem"))
    }

    #[test]
    fn a_ca_certificate_as_the_servers_own_is_named_with_the_fix() {
        let problem =
            CertificateError::Other(OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        let text = message(&file(), "localhost", &problem);
        assert!(
            text.contains("is a CA certificate (basicConstraints CA:TRUE"),
            "{text}"
        );
        assert!(text.contains("not one of the certificates in sslrootcert=/etc/db/root.pem"));
        assert!(text.contains("give that very certificate as sslrootcert="));
    }

    #[test]
    fn an_unknown_issuer_says_what_was_trusted() {
        let text = message(&file(), "localhost", &CertificateError::UnknownIssuer);
        assert!(text.contains("unknown issuer"), "{text}");
        assert!(text.contains("the certificates in sslrootcert=/etc/db/root.pem"));
        let text = message(
            &Trusted::System,
            "localhost",
            &CertificateError::UnknownIssuer,
        );
        assert!(
            text.contains("the operating system's CAs (sslrootcert=system)"),
            "{text}"
        );
        let missing =
            Trusted::SystemForMissingDefault(Some("/home/me/.postgresql/root.crt".into()));
        let text = message(&missing, "localhost", &CertificateError::UnknownIssuer);
        assert!(
            text.contains("no sslrootcert was given, and libpq's default file /home/me/.postgresql/root.crt does not exist"),
            "{text}"
        );
        let default = Trusted::DefaultFile("/home/me/.postgresql/root.crt".into());
        let text = message(&default, "localhost", &CertificateError::UnknownIssuer);
        assert!(
            text.contains("/home/me/.postgresql/root.crt (libpq's default file"),
            "{text}"
        );
    }

    #[test]
    fn a_wrong_host_name_names_the_host_and_the_names_the_certificate_carries() {
        let problem = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("db.example.com").unwrap().to_owned(),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        };
        let text = message(&file(), "db.example.com", &problem);
        assert!(
            text.contains(
                "not made out to \"db.example.com\": it is made out to localhost, 127.0.0.1"
            ),
            "{text}"
        );
        assert!(text.contains("sslmode=verify-ca"));
    }

    #[test]
    fn an_expired_certificate_gives_the_date() {
        let problem = CertificateError::ExpiredContext {
            time: at(1_798_761_600 + 86_400 * 3),
            not_after: at(1_798_761_600),
        };
        let text = message(&file(), "localhost", &problem);
        assert!(
            text.contains("expired on 2027-01-01 (UTC) (3 days ago)"),
            "{text}"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 (UTC)");
        assert_eq!(utc_date(951_782_400), "2000-02-29 (UTC)");
        assert_eq!(utc_date(4_954_435_199), "2126-12-31 (UTC)");
    }
}
