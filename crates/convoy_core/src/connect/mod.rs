//! Connecting to Postgres as libpq would: the URL (`url`), TLS for every `sslmode` (`tls`),
//! errors that name the failing step (`diagnose`), and telling a transaction-mode pooler apart
//! (`pooler`). Every connection Convoy makes — queries, mutations, LISTEN, schema sync, the CLI —
//! is made through an [`Endpoint`].

pub mod diagnose;
pub mod pooler;
pub mod tls;
pub mod url;

use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use url::SslMode;

use crate::error::Result;

/// A connection's I/O, to be polled (spawned, or read for notifications).
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// One database URL, ready to connect with.
#[derive(Clone)]
pub struct Endpoint {
    /// The variable the URL came from, for messages: `DATABASE_URL` or `DATABASE_DIRECT_URL`.
    pub source: &'static str,
    /// tokio-postgres's settings, with its `ssl_mode` set to what `mode` means.
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    pub tls: MakeRustlsConnect,
    /// What the server's certificate is checked against, for the messages of `diagnose`.
    pub trusted: tls::Trusted,
}

impl Endpoint {
    pub fn parse(url: &str, source: &'static str) -> Result<Self> {
        let parsed = url::parse(url)?;
        let (tls, trusted) = tls::connector(&parsed.tls)?;
        let mut endpoint = Self {
            source,
            config: parsed.config,
            mode: parsed.tls.mode,
            tls,
            trusted,
        };
        endpoint.config.ssl_mode(transport_of(endpoint.mode));
        Ok(endpoint)
    }

    /// A connection and the future that drives its I/O; a failure explained (see `diagnose`).
    pub async fn open(&self) -> Result<(Client, Connection)> {
        match self.config.connect(self.tls.clone()).await {
            Ok(connected) => Ok(connected),
            Err(error) => Err(self.explain(&error).await),
        }
    }

    /// A connection of its own, its I/O driven by a task of its own until the client is dropped.
    pub async fn connect(&self) -> Result<Client> {
        let (client, connection) = self.open().await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The first connection, made when Convoy starts. `sslmode=allow` is settled here, as libpq
    /// settles it: plain text, and TLS only if the server refuses plain text; later
    /// connections go straight to what worked.
    pub async fn first_connection(&mut self) -> Result<Client> {
        if self.mode == SslMode::Allow {
            if let Err(error) = self.config.connect(self.tls.clone()).await {
                if error
                    .as_db_error()
                    .map(tokio_postgres::error::DbError::code)
                    == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                {
                    self.config
                        .ssl_mode(tokio_postgres::config::SslMode::Require);
                }
            }
        }
        self.connect().await
    }

    /// What `error` of a connection to this endpoint means, as `diagnose` says it.
    pub(crate) async fn explain(&self, error: &tokio_postgres::Error) -> crate::ConvoyError {
        diagnose::explain(
            &diagnose::Attempt {
                config: &self.config,
                mode: self.mode,
                trusted: &self.trusted,
                source: self.source,
            },
            error,
        )
        .await
    }
}

/// What tokio-postgres does on the wire for each mode; what is checked of the certificate is
/// the TLS connector's part (`tls::Verification`).
fn transport_of(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as Wire;
    match mode {
        SslMode::Disable | SslMode::Allow => Wire::Disable,
        SslMode::Prefer => Wire::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull | SslMode::NoVerify => {
            Wire::Require
        }
    }
}
