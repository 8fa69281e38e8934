//! A router over a fresh SQLite file, and helpers to call it.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use conductor_http::{AppState, HttpConfig, api};
use conductor_store::{
    Fingerprint, InboundSms, ModemId, ModemState, ModemStatus, SqlTime, StorageUse, Store,
    StoreOptions,
};
use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tempfile::TempDir;
use tower::ServiceExt;

pub struct TestApp {
    pub dir: TempDir,
    pub store: Store,
    pub state: AppState,
    pub router: Router,
    /// How often the API woke the (absent) gateway.
    pub wakes: Arc<AtomicUsize>,
}

pub fn config() -> HttpConfig {
    HttpConfig {
        modems: vec!["modem0".into(), "modem1".into()],
        events_poll: std::time::Duration::from_millis(50),
        ..HttpConfig::default()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(config()).await
    }

    pub async fn with(config: HttpConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_sqlite(dir.path().join("api.db"), StoreOptions::default())
            .await
            .expect("open store");
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let state = AppState::build(
            store.clone(),
            config,
            Arc::new(Timestamp::now),
            Some(Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
            tokio_util::sync::CancellationToken::new(),
        );
        let router = api::router(state.clone());
        Self {
            dir,
            store,
            state,
            router,
            wakes,
        }
    }

    /// Sends a request; returns the status, headers and body (JSON, or a JSON string).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::GET, uri, None, &[]).await;
        (status, body)
    }

    pub async fn post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::POST, uri, Some(body), &[]).await;
        (status, body)
    }

    /// Records a fresh status row for `id`.
    pub async fn modem(&self, id: &str, state: ModemState, age_secs: i64) {
        let at = Timestamp::now() - jiff::SignedDuration::from_secs(age_secs);
        self.store
            .upsert_modem_status(ModemStatus {
                modem_id: ModemId(id.into()),
                state,
                last_error: None,
                manufacturer: Some("Virtual".into()),
                model: Some("VM1".into()),
                firmware: None,
                imei: None,
                imsi: None,
                iccid: None,
                operator: Some("Conductor Mobile".into()),
                signal_dbm: Some(-71),
                registration: Some("home".into()),
                storage: vec![StorageUse {
                    memory: "SM".into(),
                    used: 24,
                    total: 30,
                }],
                last_cycle_at: None,
                updated_at: SqlTime::from_timestamp(at),
            })
            .await
            .expect("status row");
    }

    /// Stores an inbound message as the gateway would; returns its id.
    pub async fn inbound(&self, slot: u32, from: &str, text: &str) -> i64 {
        self.store
            .store_inbound_single(InboundSms {
                modem_id: ModemId("modem0".into()),
                fingerprint: Fingerprint(format!("fp-{slot}-{from}-{text}")),
                sim_storage: "SM".into(),
                sim_slot: slot,
                sender: from.into(),
                text: text.into(),
                encoding: Some("gsm7".into()),
                smsc_timestamp: None,
                message_class: None,
                raw_pdu: None,
                received_at: Timestamp::now(),
            })
            .await
            .expect("inbound")
            .id
            .0
    }
}

/// The id of a message body.
pub fn id_of(body: &Value) -> i64 {
    body["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {body}"))
}

/// A file of `tests/fixtures/tls` (self-signed `localhost` certificates; see its README).
pub fn tls_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A TLS client that trusts only the certificates in `ca` (no system roots, so the test means
/// the same on every machine).
pub fn tls_client(ca: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let certs = conductor_http::tls::read_certificates("test", &tls_fixture(ca)).expect("fixture");
    for cert in certs {
        roots.add(cert).expect("a trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
