//! Tokens, scopes, the refusal to listen openly beyond loopback, and the body limit.

use axum::http::{Method, StatusCode};
use conductor_http::{HttpConfig, Scope, Token};

use crate::util::{TestApp, config};

#[test]
fn listening_beyond_loopback_without_tokens_is_refused_with_the_reason() {
    let open = HttpConfig {
        listen: "0.0.0.0:8080".parse().expect("address"),
        ..HttpConfig::default()
    };
    let error = open
        .check()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("not a loopback address") && error.contains("http.tokens"),
        "{error}"
    );
    let guarded = HttpConfig {
        tokens: vec![Token::from_secret("ops", "t0k3n", Scope::Full)],
        ..open
    };
    assert!(guarded.check().is_ok());
    assert!(
        HttpConfig::default().check().is_ok(),
        "loopback may stay open"
    );
}

#[tokio::test]
async fn tokens_are_required_except_for_probes_and_read_tokens_cannot_write() {
    let app = TestApp::with(HttpConfig {
        tokens: vec![
            Token::from_secret("grafana", "read-secret", Scope::Read),
            Token::from_secret("n8n", "full-secret", Scope::Full),
        ],
        ..config()
    })
    .await;
    let send = Some(r#"{"to":"+1555","text":"hi"}"#);
    let (status, headers, body) = app.call(Method::GET, "/api/v1/messages", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, _) = app
        .call(
            Method::GET,
            "/api/v1/messages",
            None,
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = app.call(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let read = [("authorization", "Bearer read-secret")];
    let full = [("authorization", "Bearer full-secret")];
    let (status, _, _) = app.call(Method::GET, "/api/v1/messages", None, &read).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = app
        .call(Method::POST, "/api/v1/messages", send, &read)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .call(Method::POST, "/api/v1/messages", send, &full)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The event stream takes the token in the query (EventSource sends no headers).
    let (status, _, _) = app
        .call(
            Method::GET,
            "/api/v1/openapi.json?access_token=read-secret",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Probes and the dashboard's static files need none.
    let (status, _, _) = app.call(Method::GET, "/healthz", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app.call(Method::GET, "/readyz", None, &[]).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not 401: no modem is ready"
    );
    let (status, _, _) = app.call(Method::GET, "/", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let app = TestApp::with(HttpConfig {
        body_limit: 1024,
        ..config()
    })
    .await;
    let text = "x".repeat(2000);
    let (status, _) = app
        .post(
            "/api/v1/messages",
            &format!(r#"{{"to":"+1555","text":"{text}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large_code(&app).await, "payload_too_large");
}

async fn too_large_code(app: &TestApp) -> String {
    let text = "x".repeat(2000);
    let (_, body) = app
        .post(
            "/api/v1/messages/batch",
            &format!(r#"{{"messages":[{{"to":"+1555","text":"{text}"}}]}}"#),
        )
        .await;
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
