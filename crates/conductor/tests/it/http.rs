//! The HTTP API and webhooks of `conductor run`, over real HTTP: a real daemon, a real
//! `conductor sim` behind it, and a webhook receiver of our own (a plain `TcpListener` thread
//! answering HTTP/1.1 by hand). Signatures are checked with python3's `hmac`, independently
//! of the daemon's code.

use crate::support::{DaemonProcess, VirtualModemProcess, poll, write_config};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "test-secret";

/// One HTTP/1.1 request (`Connection: close`): (status, lowercased headers, body).
fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(address).expect("the API accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, headers, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?} is not JSON: {e}"))
}

/// A daemon with one sim and an optional webhook endpoint, in a temp folder.
struct Setup {
    daemon: Option<DaemonProcess>,
    sim: VirtualModemProcess,
    config: PathBuf,
    dir: tempfile::TempDir,
    starts: usize,
}

impl Setup {
    fn new(webhook_url: Option<&str>) -> Self {
        Self::with_http(webhook_url, json!({}))
    }

    /// Like [`Setup::new`], with more fields in the config's `http` section.
    fn with_http(webhook_url: Option<&str>, http: Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = VirtualModemProcess::start_with_control(&[]);
        let config = dir.path().join("config.json");
        let endpoints: Vec<Value> = webhook_url
            .map(|url| {
                vec![json!({"name": "receiver", "url": url, "secret": SECRET,
                            "events": ["message.received"]})]
            })
            .unwrap_or_default();
        let mut http_section = json!({"listen": "127.0.0.1:0"});
        if let (Some(section), Some(extra)) = (http_section.as_object_mut(), http.as_object()) {
            section.extend(extra.clone());
        }
        write_config(
            &config,
            &json!({
                "database": {"path": dir.path().join("conductor.db")},
                "modems": [{"id": "m1", "device": sim.device()}],
                "inbound": {"sweep_interval": "1s"},
                "http": http_section,
                "webhooks": {"endpoints": endpoints, "initial_backoff": "200ms",
                             "max_backoff": "1s", "timeout": "2s", "max_attempts": 40},
            }),
        );
        Self {
            daemon: None,
            sim,
            config,
            dir,
            starts: 0,
        }
    }

    /// Starts the daemon (a log file per start) and returns its API address once it listens
    /// and `/readyz` says ready.
    fn start(&mut self) -> String {
        let address = self.start_listening();
        poll(Duration::from_secs(20), Duration::from_millis(50), || {
            let (status, _, body) = request(&address, "GET", "/readyz", &[], None);
            if status == 200 {
                Ok(())
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .unwrap_or_else(|seen| panic!("/readyz never said 200: {seen}\n{}", self.log()));
        address
    }

    /// Starts the daemon and returns the address its log says it listens on.
    fn start_listening(&mut self) -> String {
        self.starts += 1;
        let log = self.dir.path().join(format!("daemon-{}.log", self.starts));
        self.daemon = Some(DaemonProcess::start(&self.config, &log));
        poll(Duration::from_secs(20), Duration::from_millis(20), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .find(|l| l.contains("HTTP API and dashboard listening"))
                .and_then(|l| l.split("address=").nth(1))
                .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
                .ok_or_else(|| text.clone())
        })
        .unwrap_or_else(|log| panic!("the daemon never said where it listens:\n{log}"))
    }

    fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(DaemonProcess::log)
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn post_is_idempotent_and_reaches_the_modem_quickly() {
    let mut setup = Setup::new(None);
    let api = setup.start();
    let mut control = setup.sim.control();
    let body = json!({"to": "+4917612345678", "text": "api idempotent"});
    let key = [("Idempotency-Key", "order-42")];
    let (status, _, first) = request(&api, "POST", "/api/v1/messages", &key, Some(&body));
    let answered = Instant::now();
    assert_eq!(status, 201, "{first}");
    let first = json_of(&first);
    // The modem sees it: poll its submissions every 10 ms on our own clock.
    let latency = poll(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || match control.submissions_of("api idempotent") {
            0 => Err("not submitted yet".to_owned()),
            _ => Ok(answered.elapsed()),
        },
    )
    .unwrap_or_else(|seen| panic!("{seen}\n{}", setup.log()));
    println!("POST /api/v1/messages response -> AT+CMGS seen by the modem: {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");

    let (status, headers, again) = request(&api, "POST", "/api/v1/messages", &key, Some(&body));
    assert_eq!(status, 200, "{again}");
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "idempotent-replayed" && v == "true"),
        "{headers:?}"
    );
    assert_eq!(json_of(&again)["id"], first["id"]);

    let (status, _, list) = request(
        &api,
        "GET",
        "/api/v1/messages?direction=outbound",
        &[],
        None,
    );
    assert_eq!(status, 200, "{list}");
    let list = json_of(&list);
    let rows = list["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{list}");
    // Give a second send (there must be none) time to happen.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(control.submissions_of("api idempotent"), 1);
}

#[test]
fn inbound_messages_are_listed_and_readyz_follows_the_modem() {
    let mut setup = Setup::new(None);
    let api = setup.start();
    let (status, _, _) = request(&api, "GET", "/readyz", &[], None);
    assert_eq!(status, 200);
    setup.sim.control().inject("+4915112345678", "hello api");
    let found = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let (status, _, body) =
            request(&api, "GET", "/api/v1/messages?direction=inbound", &[], None);
        let list = json_of(&body);
        let rows = list["messages"].as_array().cloned().unwrap_or_default();
        rows.into_iter()
            .find(|m| m["content"] == "hello api")
            .filter(|_| status == 200)
            .ok_or_else(|| format!("{status} {list}"))
    })
    .unwrap_or_else(|seen| panic!("{seen}\n{}", setup.log()));
    assert_eq!(found["phone_number"], "+4915112345678", "{found}");
    assert_eq!(found["direction"], "inbound", "{found}");
}

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
    answered: u16,
}

/// A webhook receiver on a port of its own: it answers 500 to the first `fail_first`
/// requests and while `refuse` is set, 200 otherwise.
struct Receiver {
    address: String,
    got: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let address = listener.local_addr().expect("its address").to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (g, r) = (got.clone(), refuse.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = if n < fail_first || r.load(Ordering::SeqCst) {
                    500
                } else {
                    200
                };
                if let Some((headers, body)) = Self::serve(stream, status) {
                    g.lock().expect("lock").push(Received {
                        headers,
                        body,
                        answered: status,
                    });
                }
            }
        });
        Self {
            address,
            got,
            refuse,
        }
    }

    fn serve(stream: TcpStream, status: u16) -> Option<(Vec<(String, String)>, String)> {
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let mut stream = stream;
        stream
            .write_all(
                format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .ok()?;
        Some((headers, String::from_utf8_lossy(&body).into_owned()))
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// `sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))`, computed by python3.
fn python_signature(dir: &Path, timestamp: &str, body: &str) -> String {
    let file = dir.join("signed-body");
    std::fs::write(&file, body).expect("write the body");
    let script = "import hmac,hashlib,sys; b=open(sys.argv[3],'rb').read(); \
                  print('sha256='+hmac.new(sys.argv[1].encode(), sys.argv[2].encode()+b'.'+b, hashlib.sha256).hexdigest())";
    let out = std::process::Command::new("python3")
        .args(["-c", script, SECRET, timestamp])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Deliveries the receiver accepted (200), by event id.
fn accepted_by_event(receiver: &Receiver) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for r in receiver.got().iter().filter(|r| r.answered == 200) {
        *counts
            .entry(header(r, "x-conductor-event-id").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_failing_receiver_gets_message_received_once_signed() {
    let receiver = Receiver::start(2);
    let mut setup = Setup::new(Some(&receiver.url()));
    let _api = setup.start();
    setup
        .sim
        .control()
        .inject("+4915112345678", "hello webhook");
    let ok = poll(Duration::from_secs(15), Duration::from_millis(50), || {
        receiver
            .got()
            .into_iter()
            .find(|r| r.answered == 200)
            .ok_or_else(|| format!("{:?}", receiver.got()))
    })
    .unwrap_or_else(|seen| panic!("no delivery accepted: {seen}\n{}", setup.log()));
    let all = receiver.got();
    assert!(all.len() >= 3, "two failures then the success: {all:?}");
    assert!(all[..2].iter().all(|r| r.answered == 500), "{all:?}");
    assert_eq!(header(&ok, "x-conductor-event"), "message.received");
    let payload = json_of(&ok.body);
    assert_eq!(payload["event"], "message.received", "{payload}");
    assert_eq!(payload["message"]["content"], "hello webhook", "{payload}");
    assert_eq!(
        payload["id"].to_string(),
        header(&ok, "x-conductor-event-id"),
        "{payload}"
    );
    let expected = python_signature(
        setup.dir.path(),
        header(&ok, "x-conductor-timestamp"),
        &ok.body,
    );
    assert_eq!(header(&ok, "x-conductor-signature"), expected);
    // Delivered once: nothing more comes after the 200.
    std::thread::sleep(Duration::from_millis(2500));
    let accepted = accepted_by_event(&receiver);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
}

#[test]
fn a_pending_delivery_survives_sigkill_and_arrives_after_restart() {
    let receiver = Receiver::start(0);
    receiver.refuse.store(true, Ordering::SeqCst);
    let mut setup = Setup::new(Some(&receiver.url()));
    let _api = setup.start();
    setup.sim.control().inject("+4915112345678", "hello crash");
    // At least one refused attempt: the delivery is in the outbox, pending.
    poll(Duration::from_secs(15), Duration::from_millis(50), || {
        if receiver.got().iter().any(|r| r.answered == 500) {
            Ok(())
        } else {
            Err("no attempt yet".to_owned())
        }
    })
    .unwrap_or_else(|seen| panic!("{seen}\n{}", setup.log()));
    setup.kill();
    let refused = receiver.got().len();
    receiver.refuse.store(false, Ordering::SeqCst);
    let _api = setup.start();
    let ok = poll(Duration::from_secs(15), Duration::from_millis(50), || {
        receiver
            .got()
            .into_iter()
            .find(|r| r.answered == 200)
            .ok_or_else(|| format!("{:?}", receiver.got()))
    })
    .unwrap_or_else(|seen| panic!("not delivered after the restart: {seen}\n{}", setup.log()));
    assert!(receiver.got().len() > refused);
    assert_eq!(json_of(&ok.body)["message"]["content"], "hello crash");
    let expected = python_signature(
        setup.dir.path(),
        header(&ok, "x-conductor-timestamp"),
        &ok.body,
    );
    assert_eq!(header(&ok, "x-conductor-signature"), expected);
    std::thread::sleep(Duration::from_millis(2500));
    let accepted = accepted_by_event(&receiver);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
}

/// The value of the sample `name` (a full series name with labels) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn metrics_count_a_cms_error_by_code_and_a_reconnect_after_an_unplug() {
    let mut setup = Setup::new(None);
    let api = setup.start();
    let metrics = || request(&api, "GET", "/metrics", &[], None).2;
    let errors = "conductor_modem_errors_total{modem=\"m1\",kind=\"cms\",code=\"38\"}";
    let reconnects = "conductor_modem_reconnects_total{modem=\"m1\"}";
    let first = metrics();
    assert_eq!(sample(&first, reconnects), Some(0.0), "{first}");
    assert_eq!(sample(&first, errors), None, "{first}");

    // The network refuses the next send after the PDU: +CMS ERROR: 38.
    let mut control = setup.sim.control();
    control.fault(json!({"fault": "reject_sends", "count": 1, "code": 38, "stage": "after_pdu"}));
    let body = json!({"to": "+4917612345678", "text": "refused by the network"});
    let (status, _, queued) = request(&api, "POST", "/api/v1/messages", &[], Some(&body));
    assert_eq!(status, 201, "{queued}");
    poll(Duration::from_secs(15), Duration::from_millis(50), || {
        let text = metrics();
        if sample(&text, errors) == Some(1.0) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .unwrap_or_else(|seen| panic!("no CMS 38 counted: {seen}\n{}", setup.log()));

    // The modem vanishes for two seconds; the daemon reconnects by itself.
    control.fault(json!({"fault": "unplug", "seconds": 2}));
    poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let text = metrics();
        if sample(&text, reconnects) == Some(1.0) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .unwrap_or_else(|seen| panic!("no reconnect counted: {seen}\n{}", setup.log()));
    let last = metrics();
    assert_eq!(sample(&last, errors), Some(1.0), "counted once: {last}");
    assert_eq!(
        sample(&last, "conductor_modem_up{modem=\"m1\"}"),
        Some(1.0),
        "{last}"
    );
}

#[test]
fn run_serves_https_from_the_config_and_keeps_idempotency_keys_for_the_ttl() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/tests/fixtures/tls");
    let mut setup = Setup::with_http(
        None,
        json!({"tls": {"cert": fixtures.join("localhost.pem"), "key": fixtures.join("localhost.key")},
               "idempotency_ttl": "1h"}),
    );
    let address = setup.start_listening();
    let port = address.rsplit(':').next().unwrap_or_default().to_owned();
    let curl = |extra: &[&str], path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--resolve"])
            .arg(format!("localhost:{port}:127.0.0.1"))
            .args(extra)
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ca = fixtures.join("localhost.pem");
    let trusted = ["--cacert", ca.to_str().unwrap_or_default()];
    poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || match curl(&trusted, "/healthz") {
            (true, _, _) => Ok(()),
            (false, out, err) => Err(format!("{out}{err}")),
        },
    )
    .unwrap_or_else(|seen| panic!("no HTTPS answer: {seen}\n{}", setup.log()));
    // Without the certificate curl refuses the server: it is the fixture's, not a public one.
    let (ok, _, err) = curl(&[], "/healthz");
    assert!(!ok, "{err}");
    // And plain HTTP gets no answer on the TLS port.
    let plain = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://{address}/healthz"))
        .output()
        .expect("curl runs");
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("ok"),
        "{plain:?}"
    );
    let post = |key: &str| {
        curl(
            &[
                "--cacert",
                ca.to_str().unwrap_or_default(),
                "-H",
                "Content-Type: application/json",
                "-H",
                &format!("Idempotency-Key: {key}"),
                "-d",
                r#"{"to": "+4917612345678", "text": "over https"}"#,
            ],
            "/api/v1/messages",
        )
    };
    let (ok, first, err) = post("tls-1");
    assert!(ok, "{err}");
    let (ok, again, err) = post("tls-1");
    assert!(ok, "{err}");
    assert_eq!(
        json_of(&first)["id"],
        json_of(&again)["id"],
        "{first} {again}"
    );
}
