//! API throughput on a database of 100 000 messages: `POST /messages` and `GET /messages`
//! (first page, a deep page, a filtered page, a text search), through the real router and
//! store on a real SQLite file (in process, with `oneshot`: no socket, so this measures the
//! API and the database, not the loopback). Prints figures; not a test.
//!
//! `cargo bench -p conductor-http` (ROWS=... and REQUESTS=... to change the sizes).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use conductor_http::{AppState, HttpConfig, api};
use conductor_store::{ModemId, NewOutbound, Store, StoreOptions};
use jiff::Timestamp;
use tower::ServiceExt;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn timed(
    router: &axum::Router,
    label: &str,
    requests: usize,
    concurrency: usize,
    make: impl Fn(usize) -> Request<Body> + Send + Sync + 'static + Clone,
) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let router = router.clone();
        let make = make.clone();
        let label = label.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut i = worker;
            while i < requests {
                let t = Instant::now();
                let response = router.clone().oneshot(make(i)).await.expect("response");
                assert!(
                    response.status() == StatusCode::OK || response.status() == StatusCode::CREATED,
                    "{label}: {}",
                    response.status()
                );
                let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
                slowest = slowest.max(t.elapsed());
                i += concurrency;
            }
            slowest
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.expect("worker"));
    }
    let elapsed = start.elapsed();
    println!(
        "{label:<44} {requests:>6} requests, {concurrency} at a time: {:>8.0} req/s, mean {:>7.2} ms, slowest {:>7.2} ms",
        requests as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 * concurrency as f64 / requests as f64,
        slowest.as_secs_f64() * 1000.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = env_or("ROWS", 100_000);
    let requests = env_or("REQUESTS", 2_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(dir.path().join("bench.db"), StoreOptions::default())
        .await
        .expect("store");
    let seeding = Instant::now();
    let mut queued = 0;
    while queued < rows {
        let batch: Vec<NewOutbound> = (queued..(queued + 1000).min(rows))
            .map(|i| NewOutbound {
                to: format!("+4917{:08}", i % 5000),
                text: format!("message number {i} about invoice {}", i % 977),
                modem_id: Some(ModemId(format!("modem{}", i % 2))),
                source: "bench".into(),
                allow_duplicate: true,
                status_report: None,
                send_at: None,
                priority: 0,
                expires_at: None,
                transactional: false,
            })
            .collect();
        queued += batch.len();
        store
            .queue_outbound_batch(batch, None, Timestamp::now())
            .await
            .expect("seed");
    }
    println!(
        "seeded {rows} messages in {:.1} s ({})",
        seeding.elapsed().as_secs_f64(),
        dir.path().join("bench.db").display()
    );
    let state = AppState::new(
        store,
        HttpConfig {
            modems: vec!["modem0".into(), "modem1".into()],
            ..HttpConfig::default()
        },
    );
    let router = api::router(state);
    let get = |uri: String| {
        move |_: usize| {
            Request::get(uri.clone())
                .body(Body::empty())
                .expect("request")
        }
    };
    for concurrency in [1, 8] {
        timed(
            &router,
            "GET /messages?limit=50 (first page)",
            requests,
            concurrency,
            get("/api/v1/messages?limit=50".into()),
        )
        .await;
        timed(
            &router,
            "GET /messages?limit=50&before=1000 (deep)",
            requests,
            concurrency,
            get("/api/v1/messages?limit=50&before=1000".into()),
        )
        .await;
        timed(
            &router,
            "GET /messages?number=...&limit=50",
            requests,
            concurrency,
            get("/api/v1/messages?number=%2B491700000042&limit=50".into()),
        )
        .await;
        timed(
            &router,
            "GET /messages?q=invoice%20976 (text search)",
            (requests / 20).max(10),
            concurrency,
            get("/api/v1/messages?q=invoice%20976&limit=50".into()),
        )
        .await;
        timed(&router, "POST /messages", requests, concurrency, |i| {
            Request::post("/api/v1/messages")
                .header("content-type", "application/json")
                .body(Body::from(format!(
                    r#"{{"to":"+4917600000000","text":"bench {i}","allow_duplicate":true}}"#
                )))
                .expect("request")
        })
        .await;
    }
}
