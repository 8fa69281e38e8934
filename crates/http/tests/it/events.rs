//! `GET /api/v1/events`: live events, `Last-Event-ID` resume, and the end at shutdown.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use futures_util::StreamExt;
use tower::ServiceExt;

use crate::util::TestApp;

/// Opens the stream with `headers` and returns its body as a stream of text chunks.
async fn open(
    app: &TestApp,
    uri: &str,
    headers: &[(&str, &str)],
) -> impl futures_util::Stream<Item = String> + Unpin {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/event-stream"[..])
    );
    response
        .into_body()
        .into_data_stream()
        .map(|chunk| String::from_utf8_lossy(&chunk.expect("chunk")).into_owned())
}

/// Reads until `text` has been seen, or fails after 5 s.
async fn read_until(
    stream: &mut (impl futures_util::Stream<Item = String> + Unpin),
    text: &str,
) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(text) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => seen.push_str(&chunk),
            Ok(None) => panic!("the stream ended before {text:?}; got {seen:?}"),
            Err(_) => panic!("no {text:?} within 5 s; got {seen:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn the_stream_carries_new_events_and_resumes_after_last_event_id() {
    let app = TestApp::new().await;
    app.post("/api/v1/messages", r#"{"to":"+1555","text":"before"}"#)
        .await; // event 1
    // Without Last-Event-ID the stream starts with what happens next.
    let mut live = open(&app, "/api/v1/events", &[]).await;
    app.inbound(1, "+1556", "during").await; // event 2
    let seen = read_until(&mut live, "id: 2").await;
    assert!(seen.contains("event: received"), "{seen}");
    assert!(seen.contains("\"message_id\":2"), "{seen}");
    assert!(
        !seen.contains("id: 1\n"),
        "event 1 came before the stream: {seen}"
    );
    // A client that saw event 1 gets 2 at once on reconnecting, then 3 when it happens.
    let mut resumed = open(&app, "/api/v1/events", &[("last-event-id", "1")]).await;
    let seen = read_until(&mut resumed, "id: 2").await;
    assert!(!seen.contains("id: 1\n"), "{seen}");
    app.post("/api/v1/messages", r#"{"to":"+1557","text":"after"}"#)
        .await; // event 3
    let seen = read_until(&mut resumed, "id: 3").await;
    assert!(seen.contains("event: queued"), "{seen}");
    // Shutdown ends open streams, so graceful shutdown is not held up.
    app.state.shutdown().cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while resumed.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stream did not end at shutdown");
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_400_naming_it() {
    let app = TestApp::new().await;
    let (status, _, body) = app
        .call(
            axum::http::Method::GET,
            "/api/v1/events",
            None,
            &[("last-event-id", "x")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "Last-Event-ID");
}
