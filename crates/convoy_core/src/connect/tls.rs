//! The rustls configuration for each `sslmode`: which certificates are trusted, and how much of
//! the server's certificate is checked.
//!
//! rustls rather than OpenSSL, so that the prebuilt binaries find nothing missing on the user's
//! machine; ring as its crypto provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;
use x509_cert::der::Decode as _;

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

/// What the server's certificate was checked against, for the messages of `diagnose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// Nothing: the certificate is not checked.
    Unchecked,
    /// `sslrootcert=/path/to/ca.pem`.
    File(PathBuf),
    /// No `sslrootcert`: libpq's default file, `~/.postgresql/root.crt`, which exists.
    DefaultFile(PathBuf),
    /// `sslrootcert=system`.
    System,
    /// No `sslrootcert`, and no default file (the path looked for, if a home folder is known):
    /// the operating system's roots, where libpq would fail.
    SystemForMissingDefault(Option<PathBuf>),
}

/// The connector for `options`, and what it trusts; certificates and keys are read now, so that
/// a missing file is reported when Convoy starts, not at the first connection.
pub fn connector(options: &TlsOptions) -> Result<(MakeRustlsConnect, Trusted)> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ConvoyError::Internal(format!("TLS setup failed: {error}")))?;
    let (verifier, trusted) = server_verifier(options)?;
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
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
    Ok((MakeRustlsConnect::new(config), trusted))
}

/// The check of the server's certificate that `options` ask for.
fn server_verifier(options: &TlsOptions) -> Result<(ServerVerifier, Trusted)> {
    let verification = Verification::of(options);
    if verification == Verification::None {
        return Ok((ServerVerifier::unchecked(), Trusted::Unchecked));
    }
    let roots = trusted_roots(&options.root_certs)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots.store), provider())
        .build()
        .map_err(|error| ConvoyError::InvalidArgs(format!("sslrootcert: {error}")))?;
    let verifier = ServerVerifier {
        webpki: Some(webpki),
        check_name: verification == Verification::Full,
        trusted_as_is: roots.from_file,
        provider: provider(),
    };
    Ok((verifier, roots.trusted))
}

/// The CAs trusted to vouch for the server (see [`RootCerts`]).
struct Roots {
    store: RootCertStore,
    /// The certificates of the CA file, if one was read (not the system's).
    from_file: Vec<CertificateDer<'static>>,
    trusted: Trusted,
}

fn trusted_roots(root_certs: &RootCerts) -> Result<Roots> {
    let mut store = RootCertStore::empty();
    let (file, trusted) = match root_certs {
        RootCerts::File(path) => (Some(path.clone()), Trusted::File(path.clone())),
        RootCerts::Default => match default_root_file() {
            Some(path) if path.exists() => (Some(path.clone()), Trusted::DefaultFile(path)),
            looked_for => (None, Trusted::SystemForMissingDefault(looked_for)),
        },
        RootCerts::System => (None, Trusted::System),
    };
    if let Some(path) = file {
        let from_file = read_certificates(&path, "sslrootcert")?;
        for certificate in &from_file {
            store.add(certificate.clone()).map_err(|error| {
                ConvoyError::InvalidArgs(format!(
                    "sslrootcert={}: a certificate in it is not a CA certificate rustls can use ({error})",
                    path.display()
                ))
            })?;
        }
        return Ok(Roots {
            store,
            from_file,
            trusted,
        });
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
    Ok(Roots {
        store,
        from_file: Vec::new(),
        trusted,
    })
}

/// libpq's default CA file, `~/.postgresql/root.crt`.
fn default_root_file() -> Option<PathBuf> {
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

/// Every `sslmode`'s check of the server's certificate. webpki's, with two differences that make
/// it libpq's:
///
/// - `verify-ca` (and `require` with `sslrootcert`) take a certificate signed by a trusted CA
///   whatever name it carries: the CA is private to this database.
/// - A server certificate that is itself one of the certificates of the CA file is trusted as
///   it is, within its validity (and for `verify-full`, the host's name): OpenSSL trusts a
///   self-signed certificate given as `sslrootcert`, and the Postgres docs make the server's
///   certificate that way, `CA:TRUE` included, which webpki refuses as a server's own.
///
/// With no `webpki` nothing is checked (`prefer`, `require`, `no-verify`). The handshake's
/// signatures are checked in every mode, so the session is bound to the certificate presented
/// (channel binding relies on it).
#[derive(Debug)]
struct ServerVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    trusted_as_is: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerVerifier {
    fn unchecked() -> Self {
        Self {
            webpki: None,
            check_name: false,
            trusted_as_is: Vec::new(),
            provider: provider(),
        }
    }

    /// A certificate of the CA file presented as the server's own: what is left to check once
    /// it is known to be trusted.
    fn verify_trusted_as_is(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        check_validity(end_entity, now)?;
        if self.check_name {
            verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }
}

/// The certificate's notBefore and notAfter against `now`, as webpki checks them in a chain.
fn check_validity(
    certificate: &CertificateDer<'_>,
    now: UnixTime,
) -> std::result::Result<(), rustls::Error> {
    let parsed = x509_cert::Certificate::from_der(certificate.as_ref())
        .map_err(|_| CertificateError::BadEncoding)?;
    let validity = &parsed.tbs_certificate.validity;
    let not_before = UnixTime::since_unix_epoch(validity.not_before.to_unix_duration());
    let not_after = UnixTime::since_unix_epoch(validity.not_after.to_unix_duration());
    if now < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        }
        .into());
    }
    if now > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        }
        .into());
    }
    Ok(())
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let refusal = match webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(refusal) => refusal,
        };
        // webpki checks the chain before the name, so a name error means the chain was good.
        let wrong_name_only = matches!(
            refusal,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        );
        if wrong_name_only && !self.check_name {
            return Ok(ServerCertVerified::assertion());
        }
        if self
            .trusted_as_is
            .iter()
            .any(|trusted| trusted.as_ref() == end_entity.as_ref())
        {
            return self.verify_trusted_as_is(end_entity, server_name, now);
        }
        Err(refusal)
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

#[cfg(test)]
mod tests {
    //! The verifier alone, on certificates made by openssl (`testdata/`, valid for 100 years
    //! from 2026): `self-signed.crt` by the Postgres docs' recipe (CA:TRUE, localhost and
    //! 127.0.0.1), `self-signed-same-name.crt` the same with another key, `server.crt` a CA:FALSE
    //! leaf for localhost signed by `ca.crt`, and `other-ca.crt`, which signed nothing.

    use std::time::Duration;

    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/connect/testdata")
            .join(name)
    }

    fn certificate(name: &str) -> CertificateDer<'static> {
        read_certificates(&testdata(name), "test")
            .unwrap()
            .remove(0)
    }

    fn verifier(mode: SslMode, root_file: &str) -> ServerVerifier {
        let options = TlsOptions {
            mode,
            root_certs: RootCerts::File(testdata(root_file)),
            client_cert: None,
        };
        server_verifier(&options).unwrap().0
    }

    /// Seconds since 1970, as webpki's clock reads them.
    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(seconds))
    }

    /// 2027-01-01, within every test certificate's validity.
    fn now() -> UnixTime {
        at(1_798_761_600)
    }

    fn verify(
        verifier: &ServerVerifier,
        server: &str,
        host: &str,
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        verifier.verify_server_cert(&certificate(server), &[], &name, &[], now)
    }

    fn refusal(verifier: &ServerVerifier, server: &str, host: &str) -> CertificateError {
        match verify(verifier, server, host, now()) {
            Err(rustls::Error::InvalidCertificate(problem)) => problem,
            other => panic!("expected a refused certificate, got {other:?}"),
        }
    }

    #[test]
    fn docs_recipe_self_signed_certificate_given_as_sslrootcert_is_trusted() {
        let full = verifier(SslMode::VerifyFull, "self-signed.crt");
        verify(&full, "self-signed.crt", "localhost", now()).unwrap();
        verify(&full, "self-signed.crt", "127.0.0.1", now()).unwrap();
        let chain = verifier(SslMode::VerifyCa, "self-signed.crt");
        verify(&chain, "self-signed.crt", "db.example.com", now()).unwrap();
        let require = verifier(SslMode::Require, "self-signed.crt");
        verify(&require, "self-signed.crt", "db.example.com", now()).unwrap();
    }

    #[test]
    fn self_signed_certificate_among_others_in_a_bundle_is_trusted() {
        let dir = std::env::temp_dir().join(format!("convoy-tls-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle.pem");
        let mut text = std::fs::read_to_string(testdata("other-ca.crt")).unwrap();
        text.push_str(&std::fs::read_to_string(testdata("self-signed.crt")).unwrap());
        std::fs::write(&bundle, text).unwrap();
        let options = TlsOptions {
            mode: SslMode::VerifyFull,
            root_certs: RootCerts::File(bundle),
            client_cert: None,
        };
        let (full, _) = server_verifier(&options).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        verify(&full, "self-signed.crt", "localhost", now()).unwrap();
    }

    #[test]
    fn self_signed_certificate_trusted_as_is_still_needs_the_host_name_for_verify_full() {
        let full = verifier(SslMode::VerifyFull, "self-signed.crt");
        assert!(matches!(
            refusal(&full, "self-signed.crt", "db.example.com"),
            CertificateError::NotValidForNameContext { .. }
        ));
    }

    #[test]
    fn self_signed_certificate_trusted_as_is_still_needs_to_be_within_its_validity() {
        let full = verifier(SslMode::VerifyFull, "self-signed.crt");
        // 2200-01-01, after notAfter (2126); and 1970, before notBefore.
        let later = at(7_258_118_400);
        assert!(matches!(
            verify(&full, "self-signed.crt", "localhost", later),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        let chain = verifier(SslMode::VerifyCa, "self-signed.crt");
        let earlier = at(0);
        assert!(matches!(
            verify(&chain, "self-signed.crt", "localhost", earlier),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ));
    }

    #[test]
    fn another_certificate_with_the_same_name_is_not_trusted_as_is() {
        let full = verifier(SslMode::VerifyFull, "self-signed-same-name.crt");
        verify(&full, "self-signed.crt", "localhost", now()).unwrap_err();
        let chain = verifier(SslMode::VerifyCa, "self-signed-same-name.crt");
        verify(&chain, "self-signed.crt", "localhost", now()).unwrap_err();
    }

    #[test]
    fn ca_certificate_as_the_server_certificate_with_another_root_file_is_refused_as_one() {
        let full = verifier(SslMode::VerifyFull, "other-ca.crt");
        let CertificateError::Other(other) = refusal(&full, "self-signed.crt", "localhost") else {
            panic!("expected webpki's CaUsedAsEndEntity");
        };
        assert!(matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ));
    }

    #[test]
    fn leaf_signed_by_the_ca_is_checked_by_webpki() {
        let full = verifier(SslMode::VerifyFull, "ca.crt");
        verify(&full, "server.crt", "localhost", now()).unwrap();
        assert!(matches!(
            refusal(&full, "server.crt", "127.0.0.1"),
            CertificateError::NotValidForNameContext { .. }
        ));
        let chain = verifier(SslMode::VerifyCa, "ca.crt");
        verify(&chain, "server.crt", "127.0.0.1", now()).unwrap();
        let wrong_ca = verifier(SslMode::VerifyCa, "other-ca.crt");
        assert_eq!(
            refusal(&wrong_ca, "server.crt", "localhost"),
            CertificateError::UnknownIssuer
        );
    }

    #[test]
    fn unchecked_modes_take_any_certificate() {
        let options = TlsOptions {
            mode: SslMode::Require,
            root_certs: RootCerts::Default,
            client_cert: None,
        };
        let (unchecked, trusted) = server_verifier(&options).unwrap();
        assert_eq!(trusted, Trusted::Unchecked);
        verify(&unchecked, "self-signed.crt", "db.example.com", now()).unwrap();
    }
}
