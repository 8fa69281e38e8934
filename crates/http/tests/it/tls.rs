//! HTTPS for the API (`http.tls`): the PEM forms accepted, the mistakes named, and a real
//! request over loopback from a client that trusts only the fixture certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use conductor_http::tls::{TlsFiles, server_config};
use conductor_http::webhooks::WebhookConfig;
use conductor_http::{AppState, HttpConfig, Server, StartError};
use conductor_store::{Store, StoreOptions};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::util::{config, tls_client, tls_fixture};

fn files(cert: &str, key: &str) -> TlsFiles {
    TlsFiles {
        cert: tls_fixture(cert),
        key: tls_fixture(key),
    }
}

fn error_of(files: &TlsFiles) -> String {
    server_config(files)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "accepted".to_owned())
}

#[test]
fn pkcs8_sec1_and_rsa_keys_load_and_every_mistake_names_the_field_the_file_and_the_fix() {
    for (cert, key) in [
        ("localhost.pem", "localhost.key"),
        ("localhost.pem", "localhost.ec.key"),
        ("rsa.pem", "rsa.key"),
    ] {
        assert!(
            server_config(&files(cert, key)).is_ok(),
            "{cert} with {key}: {}",
            error_of(&files(cert, key))
        );
    }

    let mismatch = error_of(&files("localhost.pem", "rsa.key"));
    assert!(
        mismatch.contains("http.tls.key")
            && mismatch.contains("rsa.key")
            && mismatch.contains("does not match the certificate"),
        "{mismatch}"
    );
    let missing = error_of(&files("nowhere.pem", "localhost.key"));
    assert!(
        missing.starts_with("http.tls.cert = ")
            && missing.contains("nowhere.pem")
            && missing.contains("cannot read"),
        "{missing}"
    );
    let swapped = error_of(&files("localhost.key", "localhost.pem"));
    assert!(
        swapped.contains("http.tls.cert")
            && swapped.contains("no certificate")
            && swapped.contains("swapped"),
        "{swapped}"
    );
    let no_key = error_of(&files("localhost.pem", "rsa.pem"));
    assert!(
        no_key.starts_with("http.tls.key = ")
            && no_key.contains("no private key")
            && no_key.contains("BEGIN PRIVATE KEY"),
        "{no_key}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not PEM at all\n").expect("write");
    let garbage = error_of(&TlsFiles {
        cert: empty,
        key: tls_fixture("localhost.key"),
    });
    assert!(garbage.contains("no certificate"), "{garbage}");
}

/// A served API on 127.0.0.1:0 with the fixture certificate.
async fn https_server(dir: &tempfile::TempDir, shutdown: CancellationToken) -> Server {
    let store = Store::open_sqlite(dir.path().join("tls.db"), StoreOptions::default())
        .await
        .expect("open store");
    let http = HttpConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        tls: Some(files("localhost.pem", "localhost.key")),
        ..config()
    };
    let state = AppState::build(store, http, Arc::new(Timestamp::now), None, shutdown);
    Server::start(state, WebhookConfig::default())
        .await
        .expect("the HTTPS server starts")
}

/// GET `path` over TLS to `localhost` at `address`: (status, body).
async fn get(
    connector: &tokio_rustls::TlsConnector,
    address: std::net::SocketAddr,
    name: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let server_name =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "HTTP/1 only");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, name)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn the_api_answers_over_https_to_a_client_trusting_the_certificate_and_not_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shutdown = CancellationToken::new();
    let server = https_server(&dir, shutdown.clone()).await;
    let address = server.local_addr();
    let trusting = tls_client("localhost.pem");

    let (status, body) = get(&trusting, address, "localhost", "/healthz")
        .await
        .expect("an HTTPS answer");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&trusting, address, "localhost", "/api/v1/messages")
        .await
        .expect("an HTTPS answer");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(list["messages"].is_array(), "{list}");
    // The certificate names the IP address too.
    let (status, _) = get(&trusting, address, "127.0.0.1", "/healthz")
        .await
        .expect("an HTTPS answer by IP");
    assert_eq!(status, 200);

    // A client that trusts another certificate refuses this one.
    let other = tls_client("rsa.pem");
    let refused = get(&other, address, "localhost", "/healthz")
        .await
        .err()
        .unwrap_or_default();
    assert!(refused.contains("invalid peer certificate"), "{refused}");

    // Plain HTTP to the TLS port gets no HTTP answer: nothing is served in clear.
    let mut plain = TcpStream::connect(address).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "{answer:?}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.join())
        .await
        .expect("the server stops at shutdown")
        .expect("cleanly");
}

#[tokio::test]
async fn a_broken_tls_setup_stops_the_start_before_the_port_is_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(dir.path().join("tls.db"), StoreOptions::default())
        .await
        .expect("open store");
    let http = HttpConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        tls: Some(TlsFiles {
            cert: PathBuf::from("/nonexistent/cert.pem"),
            key: tls_fixture("localhost.key"),
        }),
        ..config()
    };
    let state = AppState::new(store, http);
    let error = Server::start(state, WebhookConfig::default()).await.err();
    assert!(matches!(error, Some(StartError::Tls(_))), "{error:?}");
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("http.tls.cert") && text.contains("/nonexistent/cert.pem"),
        "{text}"
    );

    // Tokens are still required off loopback, TLS or not.
    let open = HttpConfig {
        listen: "0.0.0.0:0".parse().expect("address"),
        tls: Some(files("localhost.pem", "localhost.key")),
        ..config()
    };
    assert!(matches!(open.check(), Err(StartError::NoTokens { .. })));
}
