//! The dashboard in a real headless Chromium, driven over the Chrome DevTools Protocol,
//! against the real gateway and a virtual modem: load the page, send a message from the form,
//! see it reach the virtual modem and turn `sent` on the page, inject an inbound message and
//! see it appear without a reload, open it and mark it read from the detail view.
//!
//! Chromium comes from Debian (`apt-get install -y chromium`, `/usr/bin/chromium`, or the
//! path in `CHROMIUM`). The test runs whenever Chromium is there. When it is not, it fails if
//! `CONDUCTOR_BROWSER_TESTS` is set (CI sets it after installing Chromium), and otherwise
//! prints why it did nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_gateway::{
    Connectors, Gateway, GatewayConfig, InboundConfig, ModemSettings, TokioClock,
};
use conductor_http::webhooks::WebhookConfig;
use conductor_http::{AppState, HttpConfig, Server};
use conductor_modem::transport::BoxedIo;
use conductor_modem::{OpenError, OpenErrorKind};
use conductor_sim::{SendLatency, SimulatorConfig};
use conductor_store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// A headless Chromium, killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(binary: &PathBuf, url: &str) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=390,844",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                    let port = rest.split('/').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("chromium announces its DevTools port within 30 s");
        Self {
            child,
            _profile: profile,
            port,
        }
    }

    /// The page's DevTools websocket.
    fn page(&self, url_prefix: &str) -> Cdp {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let targets = http_get(self.port, "/json/list");
            let found = targets.as_array().and_then(|all| {
                all.iter().find(|t| {
                    t["type"] == "page"
                        && t["url"].as_str().is_some_and(|u| u.starts_with(url_prefix))
                })
            });
            if let Some(ws) = found.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                let (socket, _) = tungstenite::connect(ws).expect("DevTools websocket");
                if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
                    // A hung page fails the test instead of hanging it.
                    tcp.set_read_timeout(Some(Duration::from_secs(30)))
                        .expect("read timeout");
                }
                return Cdp { socket, next: 0 };
            }
            assert!(Instant::now() < deadline, "no page target: {targets}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn http_get(port: u16, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools HTTP");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    // Chromium may keep the connection open: read until the body is as long as it said.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|n| body.len() >= n) {
                return serde_json::from_str(body).unwrap_or(Value::Null);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// A Chrome DevTools Protocol session on one page.
struct Cdp {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Cdp {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(tungstenite::Message::Text(request.into()))
            .expect("send CDP");
        loop {
            let message = self.socket.read().expect("read CDP");
            let tungstenite::Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page; its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy; its value.
    fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.eval(expression);
            let truthy = !matches!(value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body.innerText");
                panic!("the page never showed {what}; it shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The status shown in the messages table for the row whose text contains `text`.
fn row_status(text: &str) -> String {
    format!(
        "(() => {{ const tr = [...document.querySelectorAll('#messages tbody tr')]
            .find(tr => tr.textContent.includes({text:?}));
          return tr ? tr.querySelector('td.status').textContent : null }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_sends_from_its_form_and_shows_sent_and_inbound_messages_live() {
    let Some(binary) = chromium() else {
        if std::env::var_os("CONDUCTOR_BROWSER_TESTS").is_some() {
            panic!(
                "CONDUCTOR_BROWSER_TESTS is set but Chromium is missing: apt-get install -y \
                 chromium (or set CHROMIUM to its path)"
            );
        }
        eprintln!(
            "NOT RUN: the dashboard browser test needs Chromium (apt-get install -y chromium); \
             set CONDUCTOR_BROWSER_TESTS=1 to make its absence a failure"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(dir.path().join("browser.db"), StoreOptions::default())
        .await
        .expect("store");
    let running = conductor_sim::spawn(SimulatorConfig {
        send_latency: SendLatency {
            min: Duration::from_millis(100),
            max: Duration::from_millis(200),
        },
        ..SimulatorConfig::default()
    })
    .await
    .expect("virtual modem");
    let simulator = running.simulator.clone();
    let sim = simulator.clone();
    let connectors = Connectors::new().with("modem0", move || {
        let sim = sim.clone();
        async move {
            sim.connect("modem0")
                .await
                .map(|stream| Box::new(stream) as BoxedIo)
                .map_err(|e| OpenError {
                    device: "sim:modem0".into(),
                    kind: OpenErrorKind::Unplugged,
                    detail: e.to_string(),
                })
        }
    });
    let shutdown = CancellationToken::new();
    let clock = TokioClock::shared();
    let gateway = Gateway::start(
        GatewayConfig {
            modems: vec![ModemSettings::new("modem0", "sim:modem0")],
            inbound: InboundConfig {
                sweep_interval: Duration::from_secs(1),
                ..InboundConfig::default()
            },
            ..GatewayConfig::default()
        },
        store.clone(),
        Arc::clone(&clock),
        connectors,
        shutdown.clone(),
    )
    .await
    .expect("gateway");
    let handle = gateway.handle();
    let state = AppState::build(
        store,
        HttpConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            modems: vec!["modem0".into()],
            events_poll: Duration::from_millis(100),
            ..HttpConfig::default()
        },
        Arc::new(move || clock.now()),
        Some(Arc::new(move || handle.wake())),
        shutdown.clone(),
    );
    let server = Server::start(state, WebhookConfig::default())
        .await
        .expect("server");
    let url = format!("http://{}/", server.local_addr());

    let sent_text = "Hello from the browser";
    let inbound_text = "Hi from a phone";
    let (browser, mut page) = tokio::task::block_in_place(|| {
        let browser = Browser::launch(&binary, &url);
        let mut page = browser.page(&url);
        page.wait_for(
            "a ready modem card",
            "document.querySelector('.card.modem .state.ready') !== null",
        );
        page.wait_for(
            "the live stream",
            "document.querySelector('#live').textContent === 'live'",
        );
        // Survives only as long as the page is not reloaded.
        page.eval("window.__noReload = 42");
        page.eval(&format!(
            "(() => {{ document.querySelector('#send-to').value = '+15559876543';
                 document.querySelector('#send-text').value = {sent_text:?};
                 document.querySelector('#send-button').click(); return true }})()"
        ));
        page.wait_for(
            "the queued answer",
            "document.querySelector('#send-result').textContent.startsWith('queued as #')",
        );
        page.wait_for(
            "the message turning sent",
            &format!("['sent', 'delivered'].includes({})", row_status(sent_text)),
        );
        (browser, page)
    });
    let outside = simulator.outside().await;
    assert!(
        outside
            .iter()
            .any(|m| m.to == "+15559876543" && m.text.as_deref() == Some(sent_text)),
        "the virtual network never got it: {outside:?}"
    );

    simulator
        .inject_text("modem0", "+15551112222", inbound_text, false)
        .await
        .expect("inject");
    tokio::task::block_in_place(|| {
        let status = page.wait_for("the inbound message", &row_status(inbound_text));
        assert_eq!(status, "unread");
        assert_eq!(page.eval("window.__noReload"), 42, "the page was reloaded");
        // The detail view and its buttons: open the inbound message, mark it read.
        page.eval(&format!(
            "[...document.querySelectorAll('#messages tbody tr')]
                .find(tr => tr.textContent.includes({inbound_text:?})).click()"
        ));
        page.wait_for(
            "the detail view with its mark-read button",
            "document.querySelector('#detail').open && !document.querySelector('#act-read').hidden",
        );
        page.eval("document.querySelector('#act-read').click()");
        page.wait_for(
            "the message turning read",
            &format!("{} === 'read'", row_status(inbound_text)),
        );
    });
    drop(page);
    drop(browser);

    shutdown.cancel();
    gateway.join().await.expect("gateway stops");
    server.join().await.expect("server stops");
    running.shutdown().await;
}
