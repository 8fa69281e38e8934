//! TLS on both sides: the API's listener (`http.tls`: a certificate chain and its key, PEM) and
//! the webhook client (https receivers, trusted through the system's CA store plus an optional
//! per-endpoint `ca` file).
//!
//! Why in the daemon and not only behind a reverse proxy: issue 7 asks for "optional TLS from
//! PEM files", and a gateway on a small box often has nothing else in front of it. rustls with
//! the `ring` provider: no OpenSSL, no cmake. HTTP/1 only, so ALPN offers `http/1.1` alone.
//!
//! Files are read when the server starts, not when the config is parsed, so `conductor list`
//! run by a user who cannot read the key still works; every failure names the config field,
//! the file and what to do.
//!
//! A handshake runs in a task of its own, never in the accept loop: a client that connects and
//! stays silent holds up nobody, and is dropped after [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The API's certificate chain and key (`http.tls`), as paths; read by [`crate::Server::start`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates: the server's own first, then the intermediates.
    pub cert: PathBuf,
    /// PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 RSA or SEC1 EC, unencrypted.
    pub key: PathBuf,
}

/// A certificate or key file that cannot be used. `field` is the config field that named it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("{field} = {}: cannot read it: {source} (check the path and that the daemon's user may read it)", path.display())]
    Read {
        /// The config field.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{field} = {}: not a valid PEM file ({detail}); expected blocks such as -----BEGIN CERTIFICATE-----", path.display())]
    BadPem {
        /// The config field.
        field: String,
        /// The file.
        path: PathBuf,
        /// The parser's words.
        detail: String,
    },
    /// No `CERTIFICATE` block in the file.
    #[error("{field} = {}: no certificate in it: expected -----BEGIN CERTIFICATE----- blocks{hint}", path.display())]
    NoCertificate {
        /// The config field.
        field: String,
        /// The file.
        path: PathBuf,
        /// A guess at the mix-up, if the file holds a key instead.
        hint: &'static str,
    },
    /// No private key the server can use in the file.
    #[error(
        "{field} = {}: no private key in it: expected -----BEGIN PRIVATE KEY----- (PKCS#8), \
         -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----, unencrypted (an \
         encrypted key is decrypted with `openssl pkey -in KEY -out PLAIN.pem`)",
        path.display()
    )]
    NoKey {
        /// The config field.
        field: String,
        /// The file.
        path: PathBuf,
    },
    /// The key is not the one the certificate was issued for.
    #[error(
        "http.tls.key = {} does not match the certificate in http.tls.cert = {}: give the key \
         the certificate was issued for (the server's own certificate must come first in the \
         chain file)",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the pair for another reason (an unsupported key type, say).
    #[error("http.tls: {} with {} cannot be used: {detail}", cert.display(), key.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's words.
        detail: String,
    },
}

/// The crypto provider every TLS config here uses (`ring`; see the workspace manifest).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        field: field.to_owned(),
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file (other blocks are skipped), at least one.
pub fn read_certificates(
    field: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| TlsError::BadPem {
            field: field.to_owned(),
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        let holds_key = bytes.windows(11).any(|w| w == b"PRIVATE KEY");
        return Err(TlsError::NoCertificate {
            field: field.to_owned(),
            path: path.to_owned(),
            hint: if holds_key {
                " (this file holds a private key: are cert and key swapped?)"
            } else {
                ""
            },
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(field: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(field, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            field: field.to_owned(),
            path: path.to_owned(),
        },
        other => TlsError::BadPem {
            field: field.to_owned(),
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// The listener's TLS settings from `files`: TLS 1.2 and 1.3, no client certificates, ALPN
/// `http/1.1`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certificates("http.tls.cert", &files.cert)?;
    let key = read_private_key("http.tls.key", &files.key)?;
    let refused = |e: rustls::Error| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            }
        }
        other => TlsError::Refused {
            cert: files.cert.clone(),
            key: files.key.clone(),
            detail: other.to_string(),
        },
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's trusted CAs, loaded once per process (reading `/etc/ssl/certs` for every
/// endpoint would be wasted work). An unreadable store is logged, not fatal: an endpoint with
/// its own `ca` still works.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "cannot read part of the system's CA store; https webhooks may not be trusted");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "the system's CA store is empty (install the ca-certificates package): https \
                 webhook receivers are trusted only through their own `ca` file"
            );
        }
        tracing::debug!(added, ignored, "system CA store loaded for https webhooks");
        roots
    })
}

/// The webhook client's TLS settings: the system's CAs, plus the certificates in `ca` (a
/// private CA, or a receiver's self-signed certificate) when given. `field` names `ca` in
/// errors.
pub fn client_config(field: &str, ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = system_roots().clone();
    if let Some(path) = ca {
        for cert in read_certificates(field, path)? {
            roots.add(cert).map_err(|e| TlsError::BadPem {
                field: field.to_owned(),
                path: path.to_owned(),
                detail: format!("a certificate in it cannot be a trust anchor: {e}"),
            })?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadPem {
            field: field.to_owned(),
            path: ca.map(Path::to_owned).unwrap_or_default(),
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A failed client handshake in words an operator can act on.
pub(crate) fn describe_handshake_error(host: &str, port: u16, error: &io::Error) -> String {
    use rustls::CertificateError as C;
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let what = match tls {
        // No trusted CA signed it. A signature error means the same: webpki tried a trust
        // anchor with the issuer's name but another key (Debian's `ssl-cert-snakeoil.pem` in
        // /etc/ssl/certs is named after the host, `localhost` included).
        Some(rustls::Error::InvalidCertificate(
            C::UnknownIssuer
            | C::BadSignature
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        )) => "the receiver's certificate is not trusted (no CA this daemon trusts signed it): \
               if it is self-signed or from a private CA, set this endpoint's `ca` to that \
               certificate's PEM file"
            .to_owned(),
        Some(rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        )) => format!(
            "the receiver's certificate is not valid for {host}: use a host name the \
             certificate names in the URL"
        ),
        Some(rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "the receiver's certificate has expired: the receiver must renew it".to_owned()
        }
        Some(rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. })) => {
            "the receiver's certificate is not valid yet: check this machine's clock".to_owned()
        }
        Some(rustls::Error::InvalidCertificate(other)) => {
            format!("the receiver's certificate was refused: {other}")
        }
        Some(rustls::Error::InvalidMessage(_)) => format!(
            "{error} (does the receiver speak https on port {port}? use http:// if it does not)"
        ),
        Some(other) => other.to_string(),
        None => error.to_string(),
    };
    format!("TLS handshake with {host}:{port} failed: {what}")
}

/// A TLS listener for `axum::serve`: plain TCP accepted in a loop, each handshake in a task of
/// its own, finished connections handed over on a channel.
pub(crate) struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; stops with `shutdown` or when the listener is dropped.
    pub(crate) fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        shutdown: CancellationToken,
    ) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tx.closed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of descriptors, say: back off a little, as axum's own loop does.
                            tracing::debug!(%error, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        // The client's fault (plain HTTP to the TLS port, a scanner): debug only,
                        // so nobody can fill the log.
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            accepted,
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept loop stopped (shutdown): no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
