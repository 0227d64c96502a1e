//! The TLS half of a PostgreSQL connection: rustls (with ring, the stack reqwest already uses)
//! behind `tokio_postgres`'s `MakeTlsConnect`, with the three kinds of certificate check libpq
//! has: none (`allow`, `prefer`, `require`), the chain only (`verify-ca`), and the chain and the
//! host name (`verify-full`).
//!
//! A failed handshake becomes a [`TlsFailure`] that says what went wrong in words a person can
//! act on (not trusted, name mismatch, expired, refused by the server), never rustls' debug text
//! alone. What a handshake agreed on can be observed ([`TlsInfo`]) for `diag`.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// How the server's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Any certificate (the connection is encrypted, not authenticated).
    None,
    /// Signed by one of the roots; any host name.
    Chain,
    /// Signed by one of the roots and valid for the host connected to.
    Full,
}

/// Where the trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// The platform's trusted roots (libpq's `sslrootcert=system`).
    System,
}

impl std::fmt::Display for RootCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootCert::File(p) => write!(f, "sslrootcert {}", p.display()),
            RootCert::System => f.write_str("the system's trusted roots (sslrootcert=system)"),
        }
    }
}

/// Why a TLS handshake failed, in words.
#[derive(Debug, thiserror::Error)]
pub enum TlsFailure {
    #[error(
        "the server's certificate is not trusted: no certificate authority in {roots} signed it"
    )]
    NotTrusted { roots: String },
    #[error("the server's certificate does not match the host name {host}")]
    NameMismatch { host: String },
    #[error("the server's certificate has expired")]
    Expired,
    #[error("the server's certificate is not valid yet")]
    NotValidYet,
    #[error("the server's certificate was refused: {0}")]
    BadCertificate(String),
    #[error("the server ended the TLS handshake ({0}); it may require a client certificate")]
    Alert(String),
    #[error("the TLS handshake failed: {0}")]
    Handshake(String),
    #[error("{0:?} is not a host name a certificate can be checked against")]
    BadHost(String),
}

/// What a completed handshake agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    pub cipher_suite: String,
    /// Whether the certificate chain was checked against trusted roots.
    pub verified: bool,
}

/// A rustls client configuration for one certificate check, root set and client certificate.
/// Built once (files are read here, so a bad file is refused when the settings are read) and
/// shared by every connection of the client.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    check: Check,
    roots: Arc<str>,
}

impl Connector {
    /// Reads the files and builds the rustls configuration. `roots` is required unless `check`
    /// is [`Check::None`].
    pub fn new(
        check: Check,
        roots: Option<&RootCert>,
        client_cert: Option<(&Path, &Path)>,
    ) -> Result<Connector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match (&check, roots) {
            (Check::None, _) => Arc::new(AnyCertificate(algorithms)),
            (_, None) => return Err("certificate verification needs sslrootcert".into()),
            (Check::Chain | Check::Full, Some(r)) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(load_roots(r)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("{r}: {e}"))?;
                if check == Check::Full {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certs(cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "sslkey {}: not a readable PEM private key ({e})",
                        key.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("sslcert and sslkey do not make a client identity: {e}"))?
            }
        };
        Ok(Connector {
            config: Arc::new(config),
            roots: roots.map_or_else(|| "no roots".into(), |r| r.to_string().into()),
            check,
        })
    }

    /// The rustls configuration, for drivers that take one (ScyllaDB).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// How this connector checks certificates.
    pub fn check(&self) -> &Check {
        &self.check
    }

    /// A `MakeTlsConnect` for one connection attempt; what the handshake agrees on is written to
    /// `observe` when given.
    pub fn make(&self, observe: Option<Arc<Mutex<Option<TlsInfo>>>>) -> MakeTls {
        MakeTls {
            connector: self.clone(),
            observe,
        }
    }
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {}: cannot be read ({e})", path.display()))?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| {
        format!(
            "{what} {}: not a PEM certificate file ({e})",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_roots(roots: &RootCert) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCert::File(path) => {
            for cert in read_certs(path, "sslrootcert")? {
                store.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert {}: not a usable certificate ({e})",
                        path.display()
                    )
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err("sslrootcert=system: the system has no trusted roots (Debian: apt-get install ca-certificates)".into());
            }
        }
    }
    Ok(store)
}

/// Accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the full check, with a name mismatch forgiven. webpki checks the chain before
/// the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `tokio_postgres`'s factory for one connection attempt.
#[derive(Clone)]
pub struct MakeTls {
    connector: Connector,
    observe: Option<Arc<Mutex<Option<TlsInfo>>>>,
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Handshake;
    type Error = TlsFailure;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, TlsFailure> {
        // The name is parsed when a handshake happens: for a Unix socket (no TLS) it is empty.
        Ok(Handshake {
            connector: self.connector.clone(),
            host: domain.to_string(),
            observe: self.observe.clone(),
        })
    }
}

/// One TLS handshake over an open socket.
pub struct Handshake {
    connector: Connector,
    host: String,
    observe: Option<Arc<Mutex<Option<TlsInfo>>>>,
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = TlsFailure;
    type Future = BoxFuture<'static, Result<TlsStream<S>, TlsFailure>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = ServerName::try_from(self.host.clone())
                .map_err(|_| TlsFailure::BadHost(self.host.clone()))?;
            let tls = tokio_rustls::TlsConnector::from(self.connector.config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| failure(e, &self.host, &self.connector.roots))?;
            if let Some(observe) = &self.observe {
                let (_, session) = tls.get_ref();
                let info = TlsInfo {
                    protocol: session
                        .protocol_version()
                        .and_then(|v| v.as_str())
                        .unwrap_or("unknown")
                        .replace('_', "."),
                    cipher_suite: session
                        .negotiated_cipher_suite()
                        .and_then(|s| s.suite().as_str())
                        .unwrap_or("unknown")
                        .to_string(),
                    verified: self.connector.check != Check::None,
                };
                *observe.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
            }
            Ok(TlsStream(tls))
        })
    }
}

fn failure(e: io::Error, host: &str, roots: &str) -> TlsFailure {
    let Some(rustls_error) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return TlsFailure::Handshake(e.to_string());
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => TlsFailure::NotTrusted {
                roots: roots.to_string(),
            },
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch {
                    host: host.to_string(),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsFailure::NotValidYet
            }
            other => TlsFailure::BadCertificate(format!("{other:?}")),
        },
        rustls::Error::AlertReceived(alert) => TlsFailure::Alert(format!("alert {alert:?}")),
        other => TlsFailure::Handshake(other.to_string()),
    }
}

/// A TLS connection to the server.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// SCRAM's `tls-server-end-point` binding: the hash of the server's certificate, by the hash
    /// its signature algorithm uses (RFC 5929). None when that hash cannot be told, in which case
    /// SCRAM authenticates without channel binding (as libpq's `channel_binding=prefer` does).
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|cert| super::binding::end_point_hash(cert.as_ref()))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(e: rustls::Error) -> String {
        failure(
            io::Error::new(io::ErrorKind::InvalidData, e),
            "db.example.com",
            "sslrootcert /etc/ca.pem",
        )
        .to_string()
    }

    #[test]
    fn each_refused_handshake_is_said_in_words() {
        let cert = |c| cause(rustls::Error::InvalidCertificate(c));
        assert_eq!(
            cert(CertificateError::UnknownIssuer),
            "the server's certificate is not trusted: no certificate authority in sslrootcert /etc/ca.pem signed it"
        );
        assert_eq!(
            cert(CertificateError::NotValidForName),
            "the server's certificate does not match the host name db.example.com"
        );
        assert_eq!(
            cert(CertificateError::Expired),
            "the server's certificate has expired"
        );
        assert_eq!(
            cert(CertificateError::NotValidYet),
            "the server's certificate is not valid yet"
        );
        assert!(cert(CertificateError::BadSignature)
            .starts_with("the server's certificate was refused"));
        assert!(cause(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
        ))
        .contains("it may require a client certificate"));
        assert!(cause(rustls::Error::HandshakeNotComplete).starts_with("the TLS handshake failed"));
        let plain = failure(io::Error::other("reset"), "h", "r").to_string();
        assert_eq!(plain, "the TLS handshake failed: reset");
    }

    #[test]
    fn verification_without_roots_is_refused_and_a_bad_key_is_named() {
        let e = Connector::new(Check::Full, None, None).err().unwrap();
        assert_eq!(e, "certificate verification needs sslrootcert");
        let e = Connector::new(
            Check::None,
            None,
            Some((
                Path::new("/nonexistent/c.pem"),
                Path::new("/nonexistent/k.pem"),
            )),
        )
        .err()
        .unwrap();
        assert!(
            e.starts_with("sslcert /nonexistent/c.pem: cannot be read"),
            "{e}"
        );
    }
}
