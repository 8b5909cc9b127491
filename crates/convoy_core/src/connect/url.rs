//! Reads a libpq connection string (a `postgres://` URL or `key=value` pairs) the way libpq does.
//!
//! tokio-postgres parses most of it, but refuses values libpq accepts (`sslmode=verify-full`,
//! `allow`, node-postgres's `no-verify`) and keys it does not know (`sslrootcert`). So the keys
//! that say how to secure the connection are taken out here and everything else is handed to
//! tokio-postgres unchanged; libpq keys that change nothing for Convoy are dropped.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use crate::error::{ConvoyError, Result};

/// libpq's `sslmode`, plus node-postgres's `no-verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Plain text first; TLS only if the server refuses plain text.
    Allow,
    /// TLS if the server offers it, without checking its certificate (libpq's default).
    Prefer,
    /// TLS or nothing; the certificate is checked against `sslrootcert` only when one is given.
    Require,
    /// TLS with a certificate signed by a trusted CA, whatever name it carries.
    VerifyCa,
    /// TLS with a certificate signed by a trusted CA, for the host connected to.
    VerifyFull,
    /// node-postgres's spelling of TLS without any certificate check.
    NoVerify,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "no-verify" => Self::NoVerify,
            other => {
                return Err(invalid(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full (or node-postgres's no-verify)"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
            Self::NoVerify => "no-verify",
        }
    }
}

/// Where the CA certificates that vouch for the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// `sslrootcert` not given: `~/.postgresql/root.crt` when it exists (as libpq), else the
    /// operating system's roots (libpq would fail; hosted databases use public CAs).
    Default,
    /// `sslrootcert=system`.
    System,
    /// `sslrootcert=/path/to/ca.pem`.
    File(PathBuf),
}

/// How to secure a connection: what the URL said, before a certificate is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub root_certs: RootCerts,
    /// `sslcert` and `sslkey`: a client certificate for servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A connection string split into what tokio-postgres reads and what Convoy reads itself.
#[derive(Debug)]
pub struct ParsedUrl {
    pub config: tokio_postgres::Config,
    pub tls: TlsOptions,
}

/// Keys libpq knows that change nothing for Convoy's connections (or that rustls decides on its
/// own, like the protocol versions): accepted and ignored, so that a URL that works with psql
/// works here.
const IGNORED_KEYS: &[&str] = &[
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "requirepeer",
    "requiressl",
    "passfile",
    "client_encoding",
    "replication",
    "uselibpqcompat",
];

pub fn parse(text: &str) -> Result<ParsedUrl> {
    let text = text.trim();
    let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
    let (rest, pairs) = if is_url {
        split_url(text)?
    } else {
        (String::new(), split_key_values(text)?)
    };

    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut sslcert = None;
    let mut sslkey = None;
    let mut application_name = None;
    let mut fallback_application_name = None;
    let mut kept = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "sslmode" => sslmode = Some(SslMode::parse(&value)?),
            // node-postgres: `ssl=true` (or 1) asks for TLS with certificate checks.
            "ssl" => {
                if matches!(value.as_str(), "true" | "1") && sslmode.is_none() {
                    sslmode = Some(SslMode::VerifyFull);
                }
            }
            "sslrootcert" => sslrootcert = Some(value),
            "sslcert" => sslcert = Some(PathBuf::from(value)),
            "sslkey" => sslkey = Some(PathBuf::from(value)),
            "application_name" => application_name = Some(value),
            "fallback_application_name" => fallback_application_name = Some(value),
            "service" => {
                return Err(invalid(
                    "service= (a pg_service.conf entry) is not supported: write the host, port \
                     and database into the URL"
                        .into(),
                ))
            }
            key if IGNORED_KEYS.contains(&key) => {}
            _ => kept.push((key, value)),
        }
    }
    if let Some(name) = application_name.or(fallback_application_name) {
        kept.push(("application_name".into(), name));
    }

    let root_certs = match sslrootcert.as_deref() {
        None | Some("") => RootCerts::Default,
        Some("system") => RootCerts::System,
        Some(path) => RootCerts::File(PathBuf::from(path)),
    };
    // As libpq 16: `sslrootcert=system` makes verify-full the default, and a weaker mode with it
    // is a mistake (the system's roots vouch for names, so only checking the name means anything).
    let mode = match (sslmode, &root_certs) {
        (None, RootCerts::System) => SslMode::VerifyFull,
        (Some(mode), RootCerts::System) if mode != SslMode::VerifyFull => {
            return Err(invalid(format!(
                "sslrootcert=system needs sslmode=verify-full, not sslmode={}",
                mode.name()
            )))
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    let client_cert = match (sslcert, sslkey) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "sslcert and sslkey go together: give both, or neither".into(),
            ))
        }
    };

    let mut config = to_config(&rest, &kept, is_url)?;
    // As libpq: a password the URL leaves out may come from PGPASSWORD.
    if config.get_password().is_none() {
        if let Some(password) = std::env::var_os("PGPASSWORD") {
            config.password(password.to_string_lossy().as_bytes());
        }
    }
    Ok(ParsedUrl {
        config,
        tls: TlsOptions {
            mode,
            root_certs,
            client_cert,
        },
    })
}

/// `postgres://user:pass@host/db?a=b&c=d` → (`postgres://user:pass@host/db`, decoded pairs).
fn split_url(text: &str) -> Result<(String, Vec<(String, String)>)> {
    let Some((base, query)) = text.split_once('?') else {
        return Ok((text.to_owned(), Vec::new()));
    };
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(format!("{part:?} in the URL's parameters has no `=value`")))?;
        pairs.push((decode(key)?, decode(value)?));
    }
    Ok((base.to_owned(), pairs))
}

fn decode(text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| invalid(format!("{text:?} is not valid percent-encoded UTF-8")))
}

/// `host=a port=5432 password='it''s'` → pairs, with libpq's quoting: values in single quotes
/// may hold spaces, and `\'` and `\\` inside them.
fn split_key_values(text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid(format!(
                "{key:?} in the connection string has no `=value`"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(invalid(format!(
                            "the quoted value of {key:?} has no closing quote"
                        )))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
}

/// Hands what is left to tokio-postgres, in the form it came in.
fn to_config(
    base: &str,
    kept: &[(String, String)],
    is_url: bool,
) -> Result<tokio_postgres::Config> {
    let text = if is_url {
        let query: Vec<String> = kept
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
            .collect();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    } else {
        kept.iter()
            .map(|(key, value)| {
                let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
                format!("{key}='{escaped}'")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    text.parse().map_err(|error| {
        invalid(format!(
            "DATABASE_URL is not a valid Postgres URL: {error} (expected \
             postgres://user:password@host:5432/database?sslmode=require)"
        ))
    })
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn invalid(message: String) -> ConvoyError {
    ConvoyError::InvalidArgs(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_sslmode_is_read() {
        for (value, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
            ("no-verify", SslMode::NoVerify),
        ] {
            let parsed = parse(&format!("postgres://u@h/db?sslmode={value}")).unwrap();
            assert_eq!(parsed.tls.mode, mode, "{value}");
        }
        assert_eq!(
            parse("postgres://u@h/db").unwrap().tls.mode,
            SslMode::Prefer
        );
        assert!(parse("postgres://u@h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn neons_url_parses_with_channel_binding_kept() {
        let parsed = parse(
            "postgresql://neondb_owner:npg_p4ss@ep-cool-name-a1b2c3.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require",
        )
        .unwrap();
        assert_eq!(parsed.tls.mode, SslMode::Require);
        assert_eq!(
            parsed.config.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Require
        );
        assert_eq!(parsed.config.get_dbname(), Some("neondb"));
        assert_eq!(parsed.config.get_password(), Some(&b"npg_p4ss"[..]));
    }

    #[test]
    fn sslrootcert_is_a_file_or_the_system() {
        let parsed =
            parse("postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca%20dir%2Fca.pem")
                .unwrap();
        assert_eq!(
            parsed.tls.root_certs,
            RootCerts::File("/tmp/ca dir/ca.pem".into())
        );
        let system = parse("postgres://u@h/db?sslrootcert=system").unwrap();
        assert_eq!(system.tls.mode, SslMode::VerifyFull);
        assert!(parse("postgres://u@h/db?sslrootcert=system&sslmode=require").is_err());
    }

    #[test]
    fn key_value_strings_with_quotes() {
        let parsed = parse(
            r"host=localhost port=5433 dbname=app user=me password='it\'s a secret' sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(parsed.tls.mode, SslMode::VerifyFull);
        assert_eq!(parsed.config.get_password(), Some(&b"it's a secret"[..]));
        assert_eq!(parsed.config.get_ports(), &[5433]);
    }

    #[test]
    fn libpq_keys_that_change_nothing_are_accepted() {
        let parsed = parse(
            "postgres://u@h/db?sslmode=require&sslcompression=0&gssencmode=disable&fallback_application_name=psql&connect_timeout=10",
        )
        .unwrap();
        assert_eq!(parsed.config.get_application_name(), Some("psql"));
        assert_eq!(
            parsed.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(10))
        );
    }

    #[test]
    fn passwords_with_escaped_characters_survive() {
        let parsed = parse("postgres://u:p%40ss%2Fw%3Ford@h:6543/db?sslmode=require").unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"p@ss/w?ord"[..]));
        assert_eq!(parsed.config.get_ports(), &[6543]);
    }
}
