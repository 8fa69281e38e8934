//! `POST /api/v1/modems/{id}/ussd`: the code goes to the gateway's runner and its answer comes
//! back as JSON; a missing code, an unknown modem, a failing modem and a process without a
//! gateway each get their own status and a message saying what to do.

use axum::http::StatusCode;
use conductor_http::{UssdFailure, UssdRunner, api};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

use crate::util::TestApp;

/// A runner answering like a modem whose network knows only `*100#` on `modem0`, recording
/// every (modem, code) it was given.
fn runner(seen: Arc<Mutex<Vec<(String, String)>>>) -> UssdRunner {
    Arc::new(move |modem: String, code: String| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            if let Ok(mut seen) = seen.lock() {
                seen.push((modem.clone(), code.clone()));
            }
            match (modem.as_str(), code.as_str()) {
                ("modem0", "*100#") => Ok(json!({"status": 0, "text": "Your balance is 1.00 EUR",
                                                  "dcs": 15, "modem": modem, "code": code})),
                ("modem0", _) => Err(UssdFailure::Modem(
                    "the network did not answer within 30 s; try again later".into(),
                )),
                _ => Err(UssdFailure::UnknownModem(format!("no modem {modem:?}"))),
            }
        })
    })
}

async fn post(router: &axum::Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = axum::http::Request::post(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_code_is_run_by_the_gateway_and_each_failure_has_its_status() {
    let app = TestApp::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let router = api::router(app.state.clone().with_ussd(runner(Arc::clone(&seen))));
    let uri = "/api/v1/modems/modem0/ussd";

    let (status, body) = post(&router, uri, r#"{"code": " *100# "}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["text"], "Your balance is 1.00 EUR", "{body}");
    assert_eq!(
        seen.lock().map(|s| s.clone()).unwrap_or_default(),
        [("modem0".to_owned(), "*100#".to_owned())],
        "the code is trimmed"
    );

    let (status, body) = post(&router, uri, r#"{"code": ""}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "code", "{body}");

    let (status, body) = post(&router, "/api/v1/modems/nope/ussd", r#"{"code": "*100#"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = post(&router, uri, r#"{"code": "*999#"}"#).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "modem_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_gateway_in_the_process_the_answer_says_where_to_run_it() {
    let app = TestApp::new().await;
    let (status, body) = app
        .post("/api/v1/modems/modem0/ussd", r#"{"code": "*100#"}"#)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("conductor run")),
        "{body}"
    );
}
