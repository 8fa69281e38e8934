//! `Idempotency-Key`s expire after `http.idempotency_ttl`, on the replaceable clock: a reuse
//! after expiry queues a new message, and the server's pruner deletes expired keys. Seconds,
//! not a day, thanks to `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use conductor_gateway::{Clock, ManualClock};
use conductor_http::webhooks::WebhookConfig;
use conductor_http::{AppState, HttpConfig, Server, api};
use conductor_store::{Store, StoreOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::util::{config, id_of};

async fn post(state: &AppState, key: &str, text: &str) -> (StatusCode, Value) {
    let request = Request::post("/api/v1/messages")
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(format!(
            r#"{{"to":"+15550100","text":"{text}"}}"#
        )))
        .expect("request");
    let response = api::router(state.clone())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Keys in the table, read as an outside process would.
fn keys(db: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).expect("open the database");
    let mut statement = c
        .prepare("SELECT key FROM api_idempotency ORDER BY key")
        .expect("prepare");
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn a_key_reused_after_its_ttl_queues_anew_and_expired_keys_are_pruned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("keys.db");
    let store = Store::open_sqlite(&db, StoreOptions::default())
        .await
        .expect("open store");
    let clock = ManualClock::new();
    let now = clock.clone();
    let shutdown = CancellationToken::new();
    let http = HttpConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        // Pruned every tenth of it, at least every second.
        idempotency_ttl: Duration::from_secs(5),
        ..config()
    };
    let state = AppState::build(
        store,
        http,
        Arc::new(move || now.now()),
        None,
        shutdown.clone(),
    );
    // The server runs the pruner; requests go straight to the router over the same state.
    let server = Server::start(state.clone(), WebhookConfig::default())
        .await
        .expect("server starts");

    let (status, first) = post(&state, "order-1", "first").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    clock.advance(Duration::from_secs(4));
    let (status, again) = post(&state, "order-1", "first").await;
    assert_eq!(status, StatusCode::OK, "inside the TTL: replayed");
    assert_eq!(id_of(&again), id_of(&first));

    clock.advance(Duration::from_secs(2));
    let (status, later) = post(&state, "order-1", "first").await;
    assert_eq!(status, StatusCode::CREATED, "after the TTL: queued anew");
    assert_ne!(id_of(&later), id_of(&first));
    let (status, replay) = post(&state, "order-1", "first").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the key now stands for the new message"
    );
    assert_eq!(id_of(&replay), id_of(&later));
    // After expiry the same key may even carry another body.
    let (status, _) = post(&state, "order-2", "one body").await;
    assert_eq!(status, StatusCode::CREATED);
    clock.advance(Duration::from_secs(6));
    let (status, other) = post(&state, "order-2", "another body").await;
    assert_eq!(status, StatusCode::CREATED, "{other}");

    // The pruner deletes what expired (order-1, recorded 6 s ago) and keeps the fresh key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = keys(&db);
        if left == ["order-2"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired keys were not pruned: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.join())
        .await
        .expect("stops")
        .expect("cleanly");
}
