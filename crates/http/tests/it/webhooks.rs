//! Webhooks against a real local receiver: fails N times then accepts → delivered once,
//! signature valid; a dead receiver blocks nothing; pending deliveries survive a restart; an
//! https receiver trusted through `ca` gets its delivery, an untrusted one fails clearly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use conductor_http::AppState;
use conductor_http::webhooks::{self, WebhookConfig, WebhookEndpoint};
use jiff::Timestamp;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::util::{TestApp, config};

#[derive(Clone, Default)]
struct Receiver {
    /// Requests answered 500 before the receiver starts accepting.
    fail: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = if r
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    if let Ok(mut seen) = r.seen.lock() {
        seen.push((headers, body, status.as_u16()));
    }
    status
}

async fn receiver(fail: usize) -> (Receiver, String) {
    let r = Receiver::default();
    r.fail.store(fail, Ordering::SeqCst);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

/// A port nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

fn endpoint(name: &str, url: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        name: name.into(),
        url: url.into(),
        events: vec!["message.received".into()],
        modem: None,
        number: None,
        secret: format!("{name}-secret"),
        ca: None,
    }
}

fn fast(endpoints: Vec<WebhookEndpoint>) -> WebhookConfig {
    WebhookConfig {
        endpoints,
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_secs(2),
        poll: Duration::from_millis(50),
    }
}

fn state_for(app: &TestApp, shutdown: CancellationToken) -> AppState {
    AppState::build(
        app.store.clone(),
        config(),
        Arc::new(Timestamp::now),
        None,
        shutdown,
    )
}

async fn wait_for<F: FnMut() -> bool>(what: &str, mut done: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_event_once_signed_while_a_dead_one_blocks_nothing() {
    let app = TestApp::new().await;
    let (receiver, url) = receiver(2).await;
    let shutdown = CancellationToken::new();
    let config = fast(vec![
        endpoint("flaky", &url),
        endpoint("dead", &dead_url().await),
    ]);
    config.check().expect("valid config");
    let tasks = webhooks::spawn(state_for(&app, shutdown.clone()), config).expect("spawn");
    // Let the tasks record where they start, then something happens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.post(
        "/api/v1/messages",
        r#"{"to":"+1555","text":"not a received event"}"#,
    )
    .await;
    let id = app.inbound(1, "+15550123", "Hello hooks").await;

    let seen = Arc::clone(&receiver.seen);
    wait_for("an accepted delivery", || {
        seen.lock()
            .map(|s| s.iter().any(|(_, _, status)| *status == 204))
            .unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        requests.len(),
        3,
        "two failures, one success, nothing after"
    );
    let event_ids: Vec<_> = requests
        .iter()
        .map(|(h, _, _)| h.get("x-conductor-event-id").cloned())
        .collect();
    assert!(
        event_ids.iter().all(|e| e == &event_ids[0]),
        "one event, retried"
    );
    for (headers, body, _) in &requests {
        let timestamp: i64 = headers
            .get("x-conductor-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("timestamp header");
        let signature = headers
            .get("x-conductor-signature")
            .and_then(|v| v.to_str().ok());
        assert_eq!(
            signature,
            Some(webhooks::signature("flaky-secret", timestamp, body).as_str())
        );
        assert_eq!(
            headers.get("x-conductor-event").map(|v| v.as_bytes()),
            Some(&b"message.received"[..])
        );
        let payload: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(payload["event"], "message.received");
        assert_eq!(payload["message"]["id"], id);
        assert_eq!(payload["message"]["content"], "Hello hooks");
    }

    // Attempts are visible through the API.
    let (_, flaky) = app.get("/api/v1/webhooks/deliveries?endpoint=flaky").await;
    assert_eq!(flaky["deliveries"][0]["state"], "delivered", "{flaky}");
    assert_eq!(flaky["deliveries"][0]["attempts"], 3);
    assert_eq!(flaky["deliveries"].as_array().map(Vec::len), Some(1));
    let (_, dead) = app.get("/api/v1/webhooks/deliveries?endpoint=dead").await;
    assert_eq!(dead["deliveries"][0]["state"], "pending", "{dead}");
    assert!(
        dead["deliveries"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect"))
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("conductor_webhook_deliveries{endpoint=\"flaky\",state=\"delivered\"} 1"),
        "{metrics}"
    );
    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops at shutdown")
            .ok();
    }
}

#[tokio::test]
async fn a_delivery_pending_at_shutdown_is_delivered_after_a_restart_exactly_once() {
    let app = TestApp::new().await;
    // The receiver refuses everything during the first run.
    let (receiver, url) = receiver(usize::MAX).await;
    let first = CancellationToken::new();
    let tasks = webhooks::spawn(
        state_for(&app, first.clone()),
        fast(vec![endpoint("later", &url)]),
    )
    .expect("spawn");
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.inbound(1, "+15550124", "survive me").await;
    let seen = Arc::clone(&receiver.seen);
    wait_for("a failed attempt", || {
        seen.lock().map(|s| !s.is_empty()).unwrap_or(false)
    })
    .await;
    first.cancel();
    for task in tasks {
        let _ = task.await;
    }
    // Restart: a new state and tasks over the same database; the receiver now accepts.
    receiver.fail.store(0, Ordering::SeqCst);
    let second = CancellationToken::new();
    let tasks = webhooks::spawn(
        state_for(&app, second.clone()),
        fast(vec![endpoint("later", &url)]),
    )
    .expect("spawn");
    wait_for("the delivery after restart", || {
        seen.lock()
            .map(|s| s.iter().any(|(_, _, status)| *status == 204))
            .unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = receiver
        .seen
        .lock()
        .map(|s| s.iter().filter(|(_, _, status)| *status == 204).count())
        .unwrap_or(0);
    assert_eq!(accepted, 1);
    let (_, rows) = app.get("/api/v1/webhooks/deliveries").await;
    assert_eq!(
        rows["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{rows}"
    );
    second.cancel();
    for task in tasks {
        let _ = task.await;
    }
}

#[tokio::test]
async fn filters_by_number_and_event_keep_other_events_away_from_an_endpoint() {
    let app = TestApp::new().await;
    let (receiver, url) = receiver(0).await;
    let shutdown = CancellationToken::new();
    let mut only_bob = endpoint("bob", &url);
    only_bob.events = vec![];
    only_bob.number = Some("00 1555 0999".into());
    let tasks =
        webhooks::spawn(state_for(&app, shutdown.clone()), fast(vec![only_bob])).expect("spawn");
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.inbound(1, "+15550111", "not for bob's hook").await;
    // A modem event has no number: filtered out too.
    app.store
        .append_event(conductor_store::NewEvent {
            at: Timestamp::now(),
            kind: "modem_down".into(),
            message_id: None,
            modem_id: Some(conductor_store::ModemId("modem0".into())),
            detail: None,
        })
        .await
        .expect("event");
    let bob = app.inbound(2, "+15550999", "for bob's hook").await;
    let seen = Arc::clone(&receiver.seen);
    wait_for("bob's delivery", || {
        seen.lock().map(|s| !s.is_empty()).unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(requests.len(), 1);
    let payload: Value = serde_json::from_slice(&requests[0].1).expect("JSON");
    assert_eq!(payload["message"]["id"], bob);
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
}

/// An https receiver with the fixture certificate (`localhost`, 127.0.0.1): tokio-rustls over
/// a `TcpListener`, HTTP/1.1 read by hand (one request per connection, as the client sends),
/// answering 204. Only requests that completed a handshake are recorded.
async fn https_receiver() -> (Arc<Mutex<Vec<(HeaderMap, Bytes)>>>, u16) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let config = conductor_http::tls::server_config(&conductor_http::TlsFiles {
        cert: crate::util::tls_fixture("localhost.pem"),
        key: crate::util::tls_fixture("localhost.key"),
    })
    .expect("fixture certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut reader = BufReader::new(tls);
                let mut line = String::new();
                let mut headers = HeaderMap::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let Some((name, value)) = line.trim_end().split_once(':') else {
                        break;
                    };
                    if let (Ok(name), Ok(value)) = (
                        axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
                        axum::http::HeaderValue::from_str(value.trim()),
                    ) {
                        headers.insert(name, value);
                    }
                }
                let length = headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                if let Ok(mut seen) = record.lock() {
                    seen.push((headers, Bytes::from(body)));
                }
                let mut tls = reader.into_inner();
                let _ = tls
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (seen, port)
}

#[tokio::test]
async fn an_https_receiver_trusted_through_ca_gets_a_signed_delivery_and_an_untrusted_one_fails_clearly()
 {
    let app = TestApp::new().await;
    let (seen, port) = https_receiver().await;
    let mut trusted = endpoint("trusted", &format!("https://localhost:{port}/hook"));
    trusted.ca = Some(crate::util::tls_fixture("localhost.pem"));
    let untrusted = endpoint("untrusted", &format!("https://127.0.0.1:{port}/hook"));
    let shutdown = CancellationToken::new();
    let config = fast(vec![trusted, untrusted]);
    config.check().expect("valid config");
    let tasks = webhooks::spawn(state_for(&app, shutdown.clone()), config).expect("spawn");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = app.inbound(1, "+15550125", "over TLS").await;

    let received = Arc::clone(&seen);
    wait_for("the delivery over https", || {
        received.lock().map(|s| !s.is_empty()).unwrap_or(false)
    })
    .await;
    let (headers, body) = seen.lock().map(|s| s[0].clone()).expect("a request");
    let timestamp: i64 = headers
        .get("x-conductor-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("timestamp header");
    assert_eq!(
        headers
            .get("x-conductor-signature")
            .and_then(|v| v.to_str().ok()),
        Some(webhooks::signature("trusted-secret", timestamp, &body).as_str())
    );
    let payload: Value = serde_json::from_slice(&body).expect("JSON body");
    assert_eq!(payload["message"]["id"], id);

    // The untrusted endpoint's attempt failed with the reason and the fix, and is retried.
    let mut last_error = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !last_error.contains("not trusted") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no TLS attempt error: {last_error:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, rows) = app
            .get("/api/v1/webhooks/deliveries?endpoint=untrusted")
            .await;
        last_error = rows["deliveries"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    assert!(
        last_error.starts_with(&format!("TLS handshake with 127.0.0.1:{port} failed"))
            && last_error.contains("`ca`"),
        "{last_error}"
    );
    let (_, rows) = app
        .get("/api/v1/webhooks/deliveries?endpoint=trusted")
        .await;
    assert_eq!(rows["deliveries"][0]["state"], "delivered", "{rows}");
    assert_eq!(
        seen.lock().map(|s| s.len()).unwrap_or(0),
        1,
        "only the trusted one"
    );

    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
}

#[tokio::test]
async fn a_missing_ca_file_stops_the_start_naming_the_endpoint_field_and_the_file() {
    let app = TestApp::new().await;
    let mut ep = endpoint("private", "https://localhost:9/hook");
    ep.ca = Some("/nonexistent/ca.pem".into());
    let error = webhooks::spawn(state_for(&app, CancellationToken::new()), fast(vec![ep]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.starts_with("webhooks.endpoints[0].ca: ")
            && error.contains("/nonexistent/ca.pem")
            && error.contains("cannot read"),
        "{error}"
    );
}
