//! TLS to the PostgreSQL server: rustls (with ring) under tokio-postgres, with libpq's
//! `sslmode` meanings, so a `database.url` that works with `psql` works here.
//!
//! | `sslmode`            | encrypted          | certificate checked                  |
//! |----------------------|--------------------|--------------------------------------|
//! | `disable`            | no                 | -                                    |
//! | `prefer` (default)   | if the server can  | no                                   |
//! | `require`            | yes                | no (yes, as `verify-ca`, with `sslrootcert`) |
//! | `verify-ca`          | yes                | signed by a trusted CA               |
//! | `verify-full`        | yes                | trusted CA and the host name matches |
//!
//! Trusted CAs are the PEM file `sslrootcert=/path/ca.pem` names, else the system's store
//! (rustls-native-certs). `require` without a root file checks nothing, exactly like libpq
//! (Debian's server ships a self-signed "snakeoil" certificate that `require` must accept);
//! use `verify-full` where someone could sit between the node and the server.
//!
//! Why our own glue rather than the `tokio-postgres-rustls` crate: that crate only wraps a
//! rustls `ClientConfig` into tokio-postgres' `MakeTlsConnect` (the part below is the same
//! forty lines) and pulls in X.509 parsing and digest crates for SCRAM channel binding, which
//! we do not use; the part that matters, the verifier per `sslmode`, would be ours anyway.
//! tokio-postgres itself only parses `disable`, `prefer` and `require`, so [`prepare`] takes
//! `verify-ca`, `verify-full` and `sslrootcert` out of the URL before it is parsed.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::error::StoreError;

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Not at all (`prefer`, `require`): encryption only.
    Nothing,
    /// Signed by a trusted CA (`verify-ca`, or `require` with `sslrootcert`).
    Ca,
    /// Trusted CA and host name (`verify-full`).
    Full,
}

/// What [`prepare`] took out of the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) verify: Verify,
    pub(crate) root_cert: Option<PathBuf>,
}

/// Splits libpq's TLS options that tokio-postgres does not parse off `url`: returns the URL
/// to parse (with `verify-ca`/`verify-full` turned into `require`, which makes tokio-postgres
/// insist on TLS) and the checks to make.
pub(crate) fn prepare(url: &str) -> (String, Settings) {
    let mut settings = Settings {
        verify: Verify::Nothing,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), settings);
    };
    let mut kept = Vec::new();
    let mut mode = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => {
                mode = Some(value.to_owned());
                match value {
                    "verify-ca" | "verify-full" => kept.push("sslmode=require".to_owned()),
                    _ => kept.push(pair.to_owned()),
                }
            }
            Some(("sslrootcert", value)) => {
                settings.root_cert = Some(PathBuf::from(percent_decode(value)));
            }
            _ => kept.push(pair.to_owned()),
        }
    }
    settings.verify = match mode.as_deref() {
        Some("verify-full") => Verify::Full,
        Some("verify-ca") => Verify::Ca,
        _ if settings.root_cert.is_some() => Verify::Ca,
        _ => Verify::Nothing,
    };
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, settings)
}

/// `%2F` and friends in a URL parameter (a path in `sslrootcert`).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector handed to tokio-postgres and deadpool: cheap to clone.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl MakeRustls {
    /// Builds the rustls configuration for `settings`; `target` names the server in errors.
    pub(crate) fn new(settings: &Settings, target: &str) -> Result<Self, StoreError> {
        let fail = |detail: String| StoreError::PostgresTls {
            target: target.to_owned(),
            detail,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match settings.verify {
            Verify::Nothing => Arc::new(EncryptOnly(Arc::clone(&provider))),
            Verify::Ca | Verify::Full => {
                let roots = roots(settings.root_cert.as_ref()).map_err(fail)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| fail(format!("the trusted certificates are unusable: {e}")))?;
                if settings.verify == Verify::Full {
                    webpki
                } else {
                    Arc::new(AnyName(webpki))
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// The CAs `sslrootcert` names, or the system's.
fn roots(file: Option<&PathBuf>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!(
                        "cannot read sslrootcert {}: {e}; give a PEM file with the CA \
                         certificate that signed the server's",
                        path.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {} holds no usable certificate; give a PEM file with the CA \
                     certificate that signed the server's",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "the system trust store holds no certificates (install ca-certificates), \
                     or name the server's CA with sslrootcert=/path/ca.pem in database.url"
                        .to_owned(),
                );
            }
        }
    }
    Ok(roots)
}

/// `sslmode=require`/`prefer`: any certificate, but the handshake is still verified against
/// the key in it, so the session is encrypted to whoever holds that key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted CA; the name in it is not compared.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
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

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // Called for every host, also when TLS will not be used: a name rustls cannot take
        // fails only if a handshake is actually attempted.
        Ok(RustlsConnect {
            config: Arc::clone(&self.config),
            name: ServerName::try_from(domain.to_owned()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{domain:?} cannot be a TLS server name: {e}"),
                )
            }),
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, io::Error>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name?;
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// An encrypted connection to the server.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
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
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (the server's default, `channel_binding=prefer`).
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_tokio_postgres_cannot_parse_are_taken_out_of_the_url() {
        let (url, s) = prepare(
            "postgres://gw:pw@db:5432/sms?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(
            url,
            "postgres://gw:pw@db:5432/sms?sslmode=require&application_name=x"
        );
        assert_eq!(s.verify, Verify::Full);
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/ca.pem")));

        let (url, s) = prepare("postgres://db/sms?sslmode=require");
        assert_eq!(url, "postgres://db/sms?sslmode=require");
        assert_eq!(s.verify, Verify::Nothing);

        let (_, s) = prepare("postgres://db/sms?sslmode=require&sslrootcert=ca.pem");
        assert_eq!(s.verify, Verify::Ca);
        let (url, s) = prepare("postgres://db/sms");
        assert_eq!(
            (url.as_str(), s.verify),
            ("postgres://db/sms", Verify::Nothing)
        );
    }
}
