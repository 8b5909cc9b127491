//! The rustls configuration for each `sslmode`: which certificates are trusted, and how much of
//! the server's certificate is checked.
//!
//! rustls rather than OpenSSL, so that the prebuilt binaries find nothing missing on the user's
//! machine; ring as its crypto provider.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::{RootCerts, SslMode, TlsOptions};
use crate::error::{ConvoyError, Result};

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: the connection is encrypted but the server is not authenticated.
    None,
    /// Signed by a trusted CA; any name.
    Chain,
    /// Signed by a trusted CA, for the host connected to.
    Full,
}

impl Verification {
    /// As libpq: `require` with an explicit `sslrootcert` checks the chain, as `verify-ca` does.
    pub fn of(options: &TlsOptions) -> Self {
        match options.mode {
            SslMode::VerifyFull => Self::Full,
            SslMode::VerifyCa => Self::Chain,
            SslMode::Require if matches!(options.root_certs, RootCerts::File(_)) => Self::Chain,
            _ => Self::None,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The connector for `options`; certificates and keys are read now, so that a missing file is
/// reported when Convoy starts, not at the first connection.
pub fn connector(options: &TlsOptions) -> Result<MakeRustlsConnect> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ConvoyError::Internal(format!("TLS setup failed: {error}")))?;
    let verification = Verification::of(options);
    let builder = match verification {
        Verification::Full => builder.with_root_certificates(trusted_roots(&options.root_certs)?),
        Verification::None | Verification::Chain => {
            let chain = match verification {
                Verification::Chain => Some(
                    WebPkiServerVerifier::builder_with_provider(
                        Arc::new(trusted_roots(&options.root_certs)?),
                        provider(),
                    )
                    .build()
                    .map_err(|error| ConvoyError::InvalidArgs(format!("sslrootcert: {error}")))?,
                ),
                _ => None,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NameNotChecked {
                    chain,
                    provider: provider(),
                }))
        }
    };
    let config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certificates(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|error| {
                ConvoyError::InvalidArgs(format!(
                    "sslkey={}: no private key could be read ({error})",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| ConvoyError::InvalidArgs(format!("sslcert/sslkey: {error}")))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The CAs trusted to vouch for the server (see [`RootCerts`]).
fn trusted_roots(root_certs: &RootCerts) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let file = match root_certs {
        RootCerts::File(path) => Some(path.clone()),
        RootCerts::Default => default_root_file().filter(|path| path.exists()),
        RootCerts::System => None,
    };
    if let Some(path) = file {
        for certificate in read_certificates(&path, "sslrootcert")? {
            store.add(certificate).map_err(|error| {
                ConvoyError::InvalidArgs(format!(
                    "sslrootcert={}: a certificate in it is not a CA certificate rustls can use ({error})",
                    path.display()
                ))
            })?;
        }
        return Ok(store);
    }
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ConvoyError::InvalidArgs(format!(
            "no trusted CA certificates were found on this system ({}); give the database's CA with \
             sslrootcert=/path/to/ca.pem",
            found
                .errors
                .first()
                .map_or_else(|| "none installed".to_owned(), ToString::to_string)
        )));
    }
    Ok(store)
}

/// libpq's default CA file, `~/.postgresql/root.crt`.
fn default_root_file() -> Option<std::path::PathBuf> {
    let home = std::env::var_os(if cfg!(windows) { "APPDATA" } else { "HOME" })?;
    let folder = if cfg!(windows) {
        "postgresql"
    } else {
        ".postgresql"
    };
    Some(Path::new(&home).join(folder).join("root.crt"))
}

fn read_certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let unreadable = |detail: String| {
        ConvoyError::InvalidArgs(format!(
            "{key}={}: no PEM certificate could be read ({detail})",
            path.display()
        ))
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(error.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| unreadable(error.to_string()))?;
    if certificates.is_empty() {
        return Err(unreadable("the file holds none".into()));
    }
    Ok(certificates)
}

/// `verify-ca`, and `prefer`/`require`/`no-verify`: a certificate checked against trusted CAs
/// whatever name it carries (libpq's verify-ca: the CA is private to this database), or — with
/// no `chain` — not checked at all. The handshake's signatures are checked either way, so the
/// session is bound to the certificate presented (channel binding relies on it).
#[derive(Debug)]
struct NameNotChecked {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NameNotChecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name, so a name error means the chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
