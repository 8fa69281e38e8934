//! Calls and USSD end to end: the real daemon against `conductor sim`. An injected call is
//! logged, rejected and answered by SMS once per caller, and announced to a webhook as
//! `call.received`; `conductor ussd` prints the decoded answer through a running daemon and,
//! with none, straight from the modem's port, in GSM 7-bit (Huawei) and in UCS-2 (Quectel).

use crate::support::{DaemonProcess, VirtualModemProcess, conductor, open_db, poll, write_config};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(30);

/// The token the USSD tests give the API, and its SHA-256 (`printf %s TOKEN | sha256sum`).
const TOKEN: &str = "ussd-test-token";
const TOKEN_SHA256: &str = "a45bb9d9ee5b28f632794d7f761c5fa8fd2378ec93d09a3dfe55f93e2e67e607";

/// The `detail` of every event of `kind`, oldest first.
fn events(db: &Path, kind: &str) -> Vec<Value> {
    let c = open_db(db);
    let Ok(mut s) = c.prepare("SELECT detail FROM events WHERE kind = ?1 ORDER BY id") else {
        // The daemon has not created the schema yet.
        return Vec::new();
    };
    s.query_map([kind], |r| r.get::<_, Option<String>>(0))
        .expect("query the events")
        .filter_map(Result::ok)
        .map(|t| {
            t.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null)
        })
        .collect()
}

/// Waits until `events(db, kind)` has `n` entries and returns them.
fn wait_events(db: &Path, kind: &str, n: usize, daemon: &DaemonProcess) -> Vec<Value> {
    poll(WAIT, POLL, || {
        let all = events(db, kind);
        if all.len() >= n {
            Ok(all)
        } else {
            Err(format!("{all:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("no {n} `{kind}` events: {seen}\n{}", daemon.log_tail(40)))
}

/// Waits until the daemon says modem `m1` is ready (its init, `AT+CLIP=1` included, is done).
fn wait_ready(db: &Path, daemon: &DaemonProcess) {
    poll(WAIT, POLL, || {
        let state: Option<String> = open_db(db)
            .query_row(
                "SELECT state FROM modem_status WHERE modem_id = 'm1'",
                [],
                |r| r.get(0),
            )
            .ok();
        match state.as_deref() {
            Some("ready") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap_or_else(|seen| panic!("m1 never ready: {seen}\n{}", daemon.log_tail(40)));
}

/// The sim's record of every call (from, rings, outcome, rejected_with).
fn sim_calls(sim: &VirtualModemProcess) -> Vec<Value> {
    sim.control().call(json!({"op": "calls"}))["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A webhook receiver answering 200 to every request, keeping the `X-Conductor-Event`
/// header of each.
struct Receiver {
    address: String,
    events: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let address = listener.local_addr().expect("its address").to_string();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                if let Some(event) = answer_ok(stream)
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.push(event);
                }
            }
        });
        Self { address, events }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Reads one request (head and `Content-Length` body), answers 200, returns its event header.
fn answer_ok(stream: TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut length, mut event) = (0usize, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "x-conductor-event" => event = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    Some(event)
}

#[test]
fn a_call_is_logged_rejected_auto_replied_once_and_sent_to_webhooks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("c.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&[]);
    let receiver = Receiver::start();
    let reply = "This number takes SMS only.";
    write_config(
        &config,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device(),
                        "calls": {"reject": true, "auto_reply": reply,
                                  "auto_reply_interval": "1h"}}],
            "inbound": {"sweep_interval": "1s"},
            "http": {"listen": "127.0.0.1:0"},
            "backup": {"enabled": false},
            "webhooks": {"endpoints": [{"name": "calls", "url": receiver.url(),
                                        "secret": "s", "events": ["call.received"]}],
                         "initial_backoff": "200ms", "max_backoff": "1s", "timeout": "2s"},
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    wait_ready(&db, &daemon);

    let caller = "+33612345678";
    sim.control()
        .call(json!({"op": "call", "from": caller, "rings": 4, "interval_ms": 500}));
    let first = wait_events(&db, "call", 1, &daemon).remove(0);
    assert_eq!(first["number"], caller, "{first}");
    assert_eq!(first["rejected"], true, "{first}");
    assert!(
        matches!(first["hang_up"].as_str(), Some("AT+CHUP" | "ATH")),
        "{first}"
    );
    let reply_id = first["auto_reply"]["message_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the auto-reply was not queued: {first}"));
    // The modem hung up: the sim records the call as rejected, not missed.
    let call = poll(WAIT, POLL, || {
        let calls = sim_calls(&sim);
        match calls.first() {
            Some(c) if c["outcome"] != "ringing" => Ok(c.clone()),
            _ => Err(format!("{calls:?}")),
        }
    })
    .unwrap_or_else(|seen| panic!("the call never ended: {seen}"));
    assert_eq!(call["outcome"], "rejected", "{call}");

    // The auto-reply is an ordinary outbound row, submitted to the caller.
    let submitted = poll(WAIT, POLL, || {
        let all = sim.control().submitted();
        all.iter()
            .find(|s| s["text"] == reply)
            .cloned()
            .ok_or_else(|| format!("{all:?}"))
    })
    .unwrap_or_else(|seen| panic!("the auto-reply never left: {seen}\n{}", daemon.log_tail(40)));
    assert_eq!(submitted["to"], caller, "{submitted}");
    // The modem took it; the daemon records `sent` once `+CMGS` is back.
    let to = poll(WAIT, POLL, || {
        let (to, status): (String, String) = open_db(&db)
            .query_row(
                "SELECT phone_number, status FROM messages WHERE id = ?1",
                [reply_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| e.to_string())?;
        match status.as_str() {
            "sent" | "delivered" => Ok(to),
            _ => Err(status),
        }
    })
    .unwrap_or_else(|seen| panic!("the auto-reply row stayed {seen}\n{}", daemon.log_tail(40)));
    assert_eq!(to, caller);

    // The caller redials within the hour: logged and rejected again, no second reply.
    sim.control()
        .call(json!({"op": "call", "from": caller, "rings": 4, "interval_ms": 500}));
    let second = wait_events(&db, "call", 2, &daemon).remove(1);
    assert_eq!(second["number"], caller, "{second}");
    assert_eq!(second["rejected"], true, "{second}");
    assert_eq!(
        second["auto_reply"], "skipped: replied within the interval",
        "{second}"
    );
    let replies: i64 = open_db(&db)
        .query_row(
            "SELECT count(*) FROM messages WHERE direction = 'outbound' AND content = ?1",
            [reply],
            |r| r.get(0),
        )
        .expect("count the replies");
    assert_eq!(replies, 1, "one auto-reply per caller per interval");
    assert_eq!(sim.control().submissions_of(reply), 1);
    assert_eq!(
        events(&db, "call").len(),
        2,
        "one event per call, not per RING"
    );

    // Each call reaches the webhook as `call.received`, from the outbox.
    poll(WAIT, POLL, || {
        let rows: i64 = open_db(&db)
            .query_row(
                "SELECT count(*) FROM webhook_deliveries \
                 WHERE event = 'call.received' AND state = 'delivered'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if rows == 2 {
            Ok(())
        } else {
            Err(format!(
                "{rows} delivered, receiver saw {:?}",
                receiver.events()
            ))
        }
    })
    .unwrap_or_else(|seen| {
        panic!(
            "no call.received deliveries: {seen}\n{}",
            daemon.log_tail(40)
        )
    });
    assert_eq!(receiver.events(), ["call.received", "call.received"]);
}

/// A loopback port nothing listens on now (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `conductor --config CONFIG ussd m1 *100# EXTRA...`: (success, stdout, stderr).
fn ussd(config: &Path, extra: &[&str]) -> (bool, String, String) {
    let config = config.to_string_lossy();
    let mut args = vec!["--config", &config, "ussd", "m1", "*100#"];
    args.extend_from_slice(extra);
    let out = conductor(&args, "");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `conductor ussd` on a sim with `personality`, whose answers come with `dcs`: first with no
/// daemon (the CLI opens the port), then through a running daemon's API.
fn ussd_with_and_without_a_daemon(personality: &str, dcs: u64, text_via_daemon: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("c.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&["--personality", personality]);
    let listen = format!("127.0.0.1:{}", free_port());
    write_config(
        &config,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device()}],
            "http": {"listen": listen,
                     "tokens": [{"name": "ops", "sha256": TOKEN_SHA256, "scope": "full"}]},
            "backup": {"enabled": false},
        }),
    );

    // No daemon answers at http.listen: the CLI talks to the modem itself.
    let (ok, stdout, stderr) = ussd(&config, &[]);
    assert!(ok, "{personality}: {stderr}");
    assert_eq!(
        stdout, "Your balance is 12.34 EUR\n",
        "{personality}: {stderr}"
    );
    let (ok, stdout, stderr) = ussd(&config, &["--json"]);
    assert!(ok, "{personality}: {stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(answer["text"], "Your balance is 12.34 EUR", "{answer}");
    assert_eq!(answer["status"], 0, "{answer}");
    assert_eq!(answer["dcs"], dcs, "{personality}: {answer}");
    assert_ne!(
        answer["raw"], answer["text"],
        "sent encoded as hex: {answer}"
    );

    // With the daemon running, the request goes through its API (which holds the port).
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    wait_ready(&db, &daemon);
    poll(WAIT, POLL, || {
        TcpStream::connect(&listen)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|seen| panic!("the API never listened: {seen}\n{}", daemon.log_tail(40)));
    sim.control()
        .call(json!({"op": "ussd", "code": "*100#", "text": text_via_daemon}));
    // Without the token the API refuses, and the CLI says what to do: proof the request
    // went to the daemon and not to the port.
    let (ok, _, stderr) = ussd(&config, &[]);
    assert!(!ok, "{personality}: the API took a request without a token");
    assert!(stderr.contains("--token"), "{stderr}");
    let (ok, stdout, stderr) = ussd(&config, &["--token", TOKEN]);
    assert!(ok, "{personality}: {stderr}\n{}", daemon.log_tail(40));
    assert_eq!(stdout, format!("{text_via_daemon}\n"), "{personality}");
    let (ok, stdout, stderr) = ussd(&config, &["--token", TOKEN, "--json"]);
    assert!(ok, "{personality}: {stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(answer["text"], text_via_daemon, "{answer}");
    assert_eq!(answer["modem"], "m1", "{answer}");
    // A config without the API, on the same database: the daemon's fresh status row says it
    // holds the port, so the CLI refuses to open it rather than break the daemon's session.
    let no_api = dir.path().join("no-api.json");
    write_config(
        &no_api,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device()}],
            "http": {"enabled": false},
        }),
    );
    let (ok, _, stderr) = ussd(&no_api, &[]);
    assert!(!ok, "{personality}: the CLI opened the daemon's port");
    assert!(stderr.contains("a running daemon drives m1"), "{stderr}");
    // Every request reached the modem: two direct, two through the daemon.
    let requests = sim.control().call(json!({"op": "ussd"}))["requests"].clone();
    assert_eq!(requests, json!(["*100#", "*100#", "*100#", "*100#"]));
}

#[test]
fn ussd_in_gsm_7bit_from_a_huawei_with_and_without_a_daemon() {
    // Huawei prints the packed septets as hex (DCS 15); `€` takes the extension table.
    ussd_with_and_without_a_daemon("huawei_e3372", 15, "Solde: 3,20 € [bonus]");
}

#[test]
fn ussd_in_ucs2_from_a_quectel_with_and_without_a_daemon() {
    // Quectel answers in UCS-2 hex (DCS 72), here with text outside the GSM alphabet.
    ussd_with_and_without_a_daemon("quectel_ec25", 72, "Баланс: 7,50 ₽");
}

/// The active alerts `conductor health --json` shows.
fn health_alerts(config: &Path) -> Vec<Value> {
    let out = conductor(
        &["--config", &config.to_string_lossy(), "health", "--json"],
        "",
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    value["alerts"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_scheduled_balance_check_below_the_threshold_raises_credit_low_and_a_top_up_clears_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("c.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&[]);
    sim.control()
        .call(json!({"op": "ussd", "code": "*100#", "text": "Your balance is 3.10 EUR"}));
    write_config(
        &config,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device(),
                        "balance": {"code": "*100#", "every": "1s", "low_below": 5.0}}],
            "http": {"enabled": false},
            "backup": {"enabled": false},
            "alerts": {"interval": "1s"},
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let checked = wait_events(&db, "balance_checked", 1, &daemon).remove(0);
    assert_eq!(checked["code"], "*100#", "{checked}");
    assert_eq!(checked["amount"], 3.1, "{checked}");
    let alert = poll(WAIT, POLL, || {
        let alerts = health_alerts(&config);
        alerts
            .iter()
            .find(|a| a["key"] == "credit_low:m1")
            .cloned()
            .ok_or(format!("{alerts:?}"))
    })
    .unwrap_or_else(|seen| panic!("no credit_low in health: {seen}\n{}", daemon.log_tail(40)));
    let message = alert["message"].as_str().unwrap_or_default();
    assert!(message.contains("3.1"), "{alert}");
    assert!(
        message.contains("UTC: \"Your balance is 3.10 EUR\""),
        "the message quotes the answer: {alert}"
    );

    // Topped up: a later check reads the new answer and the episode clears.
    sim.control()
        .call(json!({"op": "ussd", "code": "*100#", "text": "Your balance is 25.00 EUR"}));
    poll(WAIT, POLL, || {
        let alerts = health_alerts(&config);
        if alerts.iter().any(|a| a["key"] == "credit_low:m1") {
            Err(format!("{alerts:?}"))
        } else {
            Ok(())
        }
    })
    .unwrap_or_else(|seen| panic!("credit_low never cleared: {seen}\n{}", daemon.log_tail(40)));
    let cleared = events(&db, "alert_cleared");
    assert!(
        cleared.iter().any(|e| e["key"] == "credit_low:m1"),
        "{cleared:?}"
    );
    assert_eq!(
        events(&db, "alert_raised")
            .iter()
            .filter(|e| e["key"] == "credit_low:m1")
            .count(),
        1,
        "one episode, however many low checks"
    );
    assert!(
        events(&db, "balance_checked")
            .iter()
            .any(|e| e["amount"] == 25.0),
        "the new answer was recorded"
    );
}
