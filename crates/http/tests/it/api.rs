//! `/api/v1` over `oneshot`: sending, idempotency, validation, listing, lifecycle, modems,
//! health and the OpenAPI document.

use axum::http::{Method, StatusCode};
use conductor_store::ModemState;
use serde_json::Value;

use crate::util::{TestApp, id_of};

#[tokio::test]
async fn a_posted_message_is_queued_as_an_api_row_and_wakes_the_gateway() {
    let app = TestApp::new().await;
    let (status, body) = app
        .post(
            "/api/v1/messages",
            r#"{"to":"+49 171 234-5678","text":"hello","modem":"modem1","status_report":false}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["phone_number"], "+491712345678");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["direction"], "outbound");
    assert_eq!(body["source"], "api");
    assert_eq!(body["modem_id"], "modem1");
    assert_eq!(body["status_report"], false);
    assert_eq!(app.wakes.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (status, detail) = app.get(&format!("/api/v1/messages/{}", id_of(&body))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["message"]["content"], "hello");
    assert_eq!(detail["history"][0]["kind"], "queued");
    assert!(detail["parts"].is_array() && detail["reports"].is_array());
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_message_and_queues_nothing() {
    let app = TestApp::new().await;
    let body = r#"{"to":"+15550001","text":"once"}"#;
    let key = [("idempotency-key", "order-42")];
    let (first, _, one) = app
        .call(Method::POST, "/api/v1/messages", Some(body), &key)
        .await;
    let (again, headers, two) = app
        .call(Method::POST, "/api/v1/messages", Some(body), &key)
        .await;
    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(again, StatusCode::OK);
    assert_eq!(
        headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(id_of(&one), id_of(&two));
    let (_, list) = app.get("/api/v1/messages?direction=outbound").await;
    assert_eq!(list["messages"].as_array().map(Vec::len), Some(1));
    // The same key with another body is refused, naming the header.
    let (status, _, error) = app
        .call(
            Method::POST,
            "/api/v1/messages",
            Some(r#"{"to":"+15550001","text":"twice"}"#),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "Idempotency-Key");
}

#[tokio::test]
async fn bad_input_gets_400_or_422_naming_the_field() {
    let app = TestApp::new().await;
    let long = "x".repeat(153 * 256);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            r#"{"to":"+1555","text":"hi","colour":"red"}"#.into(),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (r#"{"text":"hi"}"#.into(), StatusCode::BAD_REQUEST, "to"),
        (
            r#"{"to":15550001,"text":"hi"}"#.into(),
            StatusCode::BAD_REQUEST,
            "to",
        ),
        (
            r#"{"to":"call me","text":"hi"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "to",
        ),
        (
            r#"{"to":"+1555","text":""}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text",
        ),
        (
            format!(r#"{{"to":"+1555","text":"{long}"}}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text",
        ),
        (
            r#"{"to":"+1555","text":"hi","modem":"nope"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "modem",
        ),
        (
            r#"{"to":"+1555","text":"hi","send_at":"tomorrow"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "send_at",
        ),
        (
            r#"{"to":"+1555","text":"hi","flash":true}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "flash",
        ),
    ];
    for (body, expected, field) in cases {
        let (status, error) = app.post("/api/v1/messages", &body).await;
        assert_eq!(status, expected, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, error) = app.post("/api/v1/messages", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (_, list) = app.get("/api/v1/messages").await;
    assert_eq!(list["messages"], Value::Array(vec![]), "nothing was queued");
}

#[tokio::test]
async fn a_batch_is_queued_whole_or_not_at_all() {
    let app = TestApp::new().await;
    let (status, error) = app
        .post(
            "/api/v1/messages/batch",
            r#"{"messages":[{"to":"+1555","text":"a"},{"to":"+1556","text":""}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "messages[1].text");
    let (status, body) = app
        .post(
            "/api/v1/messages/batch",
            r#"{"messages":[{"to":"+1555","text":"a"},{"to":"+1556","text":"b","send_at":"2030-01-01T00:00:00Z"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["send_at"], "2030-01-01T00:00:00Z");
}

#[tokio::test]
async fn listing_filters_and_pages_with_a_cursor() {
    let app = TestApp::new().await;
    for i in 0..5 {
        app.post(
            "/api/v1/messages",
            &format!(r#"{{"to":"+1555000{i}","text":"out {i}"}}"#),
        )
        .await;
    }
    app.inbound(1, "+15550003", "Hello back").await;
    let (_, page1) = app.get("/api/v1/messages?limit=4").await;
    let ids: Vec<i64> = page1["messages"]
        .as_array()
        .map(|m| m.iter().map(crate::util::id_of).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![6, 5, 4, 3]);
    assert_eq!(page1["next_cursor"], 3);
    let (_, page2) = app.get("/api/v1/messages?limit=4&before=3").await;
    assert_eq!(page2["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(page2["next_cursor"], Value::Null);
    let (_, inbound) = app
        .get("/api/v1/messages?direction=inbound&status=unread")
        .await;
    assert_eq!(inbound["messages"][0]["content"], "Hello back");
    let (_, search) = app.get("/api/v1/messages?q=OUT%202").await;
    assert_eq!(search["messages"].as_array().map(Vec::len), Some(1));
    let (_, conversation) = app.get("/api/v1/conversations/+15550003").await;
    assert_eq!(conversation["messages"].as_array().map(Vec::len), Some(2));
    let (status, error) = app.get("/api/v1/messages?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "colour");
    let (status, error) = app.get("/api/v1/messages?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "status");
    let (status, _) = app
        .get("/api/v1/messages?since=2024-01-01T00:00:00Z&until=2099-01-01T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn read_requeue_and_cancel_follow_the_lifecycle_with_404_and_409() {
    let app = TestApp::new().await;
    let inbound = app.inbound(3, "+15550009", "ping").await;
    let (status, body) = app
        .post(&format!("/api/v1/messages/{inbound}/read"), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "read");
    let (_, queued) = app
        .post("/api/v1/messages", r#"{"to":"+1555","text":"x"}"#)
        .await;
    let id = id_of(&queued);
    let (status, body) = app
        .post(&format!("/api/v1/messages/{id}/requeue"), "")
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "wrong_status");
    let (status, body) = app.post(&format!("/api/v1/messages/{id}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "cancelled");
    let (status, body) = app
        .post(&format!("/api/v1/messages/{id}/requeue"), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "queued");
    let (status, _) = app.post(&format!("/api/v1/messages/{id}/read"), "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app.post("/api/v1/messages/999/cancel", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/messages/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/messages/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "id");
    let (status, body) = app.get("/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn modems_come_from_status_rows_and_readiness_needs_a_fresh_ready_one() {
    let app = TestApp::new().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    // A ready row that is ten minutes old does not count.
    app.modem("modem0", ModemState::Ready, 600).await;
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    app.modem("modem0", ModemState::Ready, 0).await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["modems_ready"][0], "modem0");
    let (_, modems) = app.get("/api/v1/modems").await;
    let list = modems["modems"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{modems}");
    assert_eq!(list[0]["id"], "modem0");
    assert_eq!(list[0]["state"], "ready");
    assert_eq!(list[0]["operator"], "Conductor Mobile");
    assert_eq!(list[0]["sim_storage"][0]["display"], "24/30 (80.0 % full)");
    assert_eq!(list[1]["state"], "unknown");
    let (status, one) = app.get("/api/v1/modems/modem0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["signal_dbm"], -71);
    let (status, _) = app.get("/api/v1/modems/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // One modem of two has never reported: the full health check says so, by name.
    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let checks = health["checks"].to_string();
    assert!(checks.contains("modem modem1"), "{checks}");
    app.modem("modem1", ModemState::Ready, 0).await;
    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
}

#[tokio::test]
async fn metrics_show_messages_queue_modems_and_the_database() {
    let app = TestApp::new().await;
    app.post("/api/v1/messages", r#"{"to":"+1555","text":"x"}"#)
        .await;
    app.inbound(1, "+1556", "y").await;
    app.modem("modem0", ModemState::Ready, 0).await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap_or_default().to_owned();
    for line in [
        "conductor_messages{direction=\"outbound\",status=\"queued\"} 1",
        "conductor_messages{direction=\"inbound\",status=\"unread\"} 1",
        "conductor_queue_depth 1",
        "conductor_modem_up{modem=\"modem0\"} 1",
        "conductor_modem_up{modem=\"modem1\"} 0",
        "conductor_modem_signal_dbm{modem=\"modem0\"} -71",
        "conductor_sim_used{modem=\"modem0\",memory=\"SM\"} 24",
        "conductor_sim_total{modem=\"modem0\",memory=\"SM\"} 30",
        "# TYPE conductor_database_bytes gauge",
        "# TYPE conductor_send_latency_seconds histogram",
        "conductor_send_latency_seconds_count 0",
        "conductor_inbound_latency_seconds_bucket{le=\"+Inf\"} 1",
        "conductor_inbound_latency_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let app = TestApp::new().await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let expected = [
        ("/api/v1/messages", "post"),
        ("/api/v1/messages", "get"),
        ("/api/v1/messages/batch", "post"),
        ("/api/v1/messages/{id}", "get"),
        ("/api/v1/messages/{id}/read", "post"),
        ("/api/v1/messages/{id}/requeue", "post"),
        ("/api/v1/messages/{id}/cancel", "post"),
        ("/api/v1/conversations/{number}", "get"),
        ("/api/v1/modems", "get"),
        ("/api/v1/modems/{id}", "get"),
        ("/api/v1/modems/{id}/ussd", "post"),
        ("/api/v1/health", "get"),
        ("/api/v1/stats", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/webhooks/deliveries", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/messages/estimate", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert_eq!(
        paths.len(),
        19,
        "documented paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    // And every documented GET without parameters answers something other than 404/405.
    for (path, item) in &paths {
        if item.get("get").is_some() && !path.contains('{') && path != "/api/v1/events" {
            let (status, _) = app.get(path).await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{path}: {status}"
            );
        }
    }
}

#[tokio::test]
async fn the_dashboard_is_served_self_contained() {
    let app = TestApp::new().await;
    let (status, page) = app.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(page.contains("dashboard.js") && page.contains("dashboard.css"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
    let (status, script) = app.get("/dashboard.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(script.as_str().is_some_and(|s| s.contains("EventSource")));
}

#[tokio::test]
async fn stats_count_volume_per_hour_and_the_delivery_success() {
    let app = TestApp::new().await;
    app.post("/api/v1/messages", r#"{"to":"+1555","text":"x"}"#)
        .await;
    app.inbound(1, "+1556", "y").await;
    app.inbound(2, "+1556", "z").await;
    let (status, stats) = app.get("/api/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let series = stats["series"].as_array().cloned().unwrap_or_default();
    assert_eq!(series.len(), 1, "{stats}");
    assert_eq!(series[0]["inbound"], 2);
    assert_eq!(series[0]["outbound"], 1);
    assert_eq!(stats["delivery"]["success_rate"], Value::Null);
    let (status, days) = app.get("/api/v1/stats?bucket=day").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(days["bucket"], "day");
    let (status, error) = app.get("/api/v1/stats?bucket=week").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "bucket");
}

/// `/metrics` of `app` with the gateway's counters as `counters` gives them.
async fn metrics_with(app: &TestApp, counters: conductor_http::ModemCounters) -> String {
    use tower::ServiceExt;
    let state = app
        .state
        .clone()
        .with_counters(std::sync::Arc::new(move || counters.clone()));
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = conductor_http::api::router(state)
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn metrics_show_the_gateways_error_and_reconnect_counters_only_when_a_gateway_runs() {
    let app = TestApp::new().await;
    let (_, without) = app.get("/metrics").await;
    let without = without.as_str().unwrap_or_default().to_owned();
    assert!(
        !without.contains("conductor_modem_errors_total"),
        "{without}"
    );
    assert!(
        !without.contains("conductor_modem_reconnects_total"),
        "{without}"
    );

    let text = metrics_with(
        &app,
        conductor_http::ModemCounters {
            errors: vec![
                conductor_http::ModemErrorCount {
                    modem: "modem0".into(),
                    kind: "cms",
                    code: "42".into(),
                    count: 3,
                },
                conductor_http::ModemErrorCount {
                    modem: "modem\"1".into(),
                    kind: "cme",
                    code: "10".into(),
                    count: 1,
                },
            ],
            reconnects: vec![("modem0".into(), 2), ("modem1".into(), 0)],
        },
    )
    .await;
    for line in [
        "# TYPE conductor_modem_errors_total counter",
        "conductor_modem_errors_total{modem=\"modem0\",kind=\"cms\",code=\"42\"} 3",
        "conductor_modem_errors_total{modem=\"modem\\\"1\",kind=\"cme\",code=\"10\"} 1",
        "# TYPE conductor_modem_reconnects_total counter",
        "conductor_modem_reconnects_total{modem=\"modem0\"} 2",
        "conductor_modem_reconnects_total{modem=\"modem1\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn the_shipped_alert_rules_and_grafana_dashboard_name_only_metrics_that_exist() {
    let app = TestApp::new().await;
    // As `conductor run` serves it: with the gateway's counters.
    let text = metrics_with(&app, conductor_http::ModemCounters::default()).await;
    for (file, content) in [
        (
            "examples/prometheus-alerts.yml",
            include_str!("../../../../examples/prometheus-alerts.yml"),
        ),
        (
            "examples/grafana-dashboard.json",
            include_str!("../../../../examples/grafana-dashboard.json"),
        ),
    ] {
        let mut names: Vec<String> = content
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("conductor_"))
            .map(|w| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| w.strip_suffix(suffix))
                    .unwrap_or(w)
                    .to_owned()
            })
            .collect();
        names.sort();
        names.dedup();
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{file} uses {name}, which /metrics does not have"
            );
        }
    }
}
