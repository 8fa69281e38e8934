//! The sending policy (issue 11) through the binary: `send` refusing before it queues, the
//! block list verbs, `pdu encode` counting parts, and a daemon applying the policy to rows
//! written with SQL and through the API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    DaemonProcess, VirtualModemProcess, conductor, json_lines, open_db, poll, write_config,
};

/// One HTTP/1.1 request with `Connection: close`: (status, body as JSON).
fn call(address: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).expect("the API accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let body = body.to_string();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .expect("send the request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the response");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let json = rest
        .find('{')
        .and_then(|start| {
            let end = rest.rfind('}')?;
            serde_json::from_str(&rest[start..=end]).ok()
        })
        .unwrap_or(Value::Null);
    (status, json)
}

fn config_with(dir: &Path, device: &str, extra_outbound: Value) -> std::path::PathBuf {
    let config = dir.join("config.json");
    let mut outbound = json!({"max_parts": 1});
    if let (Some(o), Some(extra)) = (outbound.as_object_mut(), extra_outbound.as_object()) {
        o.extend(extra.clone());
    }
    write_config(
        &config,
        &json!({
            "database": {"path": dir.join("conductor.db")},
            "modems": [{"id": "m1", "device": device, "limits": {"per_hour": 100}}],
            "inbound": {"sweep_interval": "1s"},
            "numbers": {"default_country_code": "+49"},
            "outbound": outbound,
            "http": {"listen": "127.0.0.1:0"},
        }),
    );
    config
}

#[test]
fn send_refuses_a_bad_number_or_too_many_parts_before_queuing_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_with(dir.path(), "/dev/null", json!({}));
    let config = config.display().to_string();
    // Digits the codec could address, but a short code the config does not allow.
    let bad = conductor(&["--config", &config, "send", "12345", "hi"], "");
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("short code"), "{stderr}");

    let long = "a".repeat(200);
    let too_long = conductor(&["--config", &config, "send", "+4915123456789", &long], "");
    assert_eq!(too_long.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&too_long.stderr);
    assert!(stderr.contains("needs 2 SMS parts"), "{stderr}");

    let ok = conductor(
        &[
            "--config",
            &config,
            "send",
            "0151 2345-6789",
            "hello",
            "--json",
        ],
        "",
    );
    assert!(ok.status.success(), "{ok:?}");
    let rows = json_lines(&conductor(&["--config", &config, "list", "--json"], ""));
    assert_eq!(rows.len(), 1, "only the good row was queued: {rows:?}");
    assert_eq!(rows[0]["phone_number"], "+4915123456789");
}

#[test]
fn the_block_list_is_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_with(dir.path(), "/dev/null", json!({}));
    let config = config.display().to_string();
    let add = conductor(&["--config", &config, "block", "add", "0151 111 2222"], "");
    assert!(add.status.success(), "{add:?}");
    let list = json_lines(&conductor(
        &["--config", &config, "block", "list", "--json"],
        "",
    ));
    assert_eq!(list[0]["blocked"][0]["number"], "+491511112222");
    let remove = conductor(
        &["--config", &config, "block", "remove", "+49 151 1112222"],
        "",
    );
    assert!(remove.status.success(), "{remove:?}");
    let again = conductor(
        &["--config", &config, "block", "remove", "+491511112222"],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not on the block list"));
}

#[test]
fn pdu_encode_reports_parts_and_encoding_and_transliteration_halves_them() {
    let text = "We’re open today – see you soon! ".repeat(4);
    let plain = json_lines(&conductor(
        &["pdu", "encode", "--to", "+4915123456789", "--text", &text],
        "",
    ));
    let fitted = json_lines(&conductor(
        &[
            "pdu",
            "encode",
            "--to",
            "+4915123456789",
            "--text",
            &text,
            "--transliterate",
        ],
        "",
    ));
    assert_eq!(
        (
            plain[0]["part_count"].as_u64(),
            plain[0]["encoding"].as_str()
        ),
        (Some(2), Some("ucs2"))
    );
    assert_eq!(
        (
            fitted[0]["part_count"].as_u64(),
            fitted[0]["encoding"].as_str()
        ),
        (Some(1), Some("gsm7"))
    );
}

#[test]
fn the_daemon_applies_the_policy_to_sql_rows_the_api_and_stop_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = VirtualModemProcess::start_with_control(&[]);
    let config = config_with(dir.path(), &sim.device(), json!({}));
    let log = dir.path().join("daemon.log");
    let daemon = DaemonProcess::start(&config, &log);
    let address = poll(Duration::from_secs(20), Duration::from_millis(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .find(|l| l.contains("HTTP API and dashboard listening"))
            .and_then(|l| l.split("address=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
            .ok_or_else(|| text.clone())
    })
    .unwrap_or_else(|log| panic!("the daemon never listened:\n{log}"));

    // The API: 422 naming the field, before anything is queued.
    let (status, body) = call(
        &address,
        "POST",
        "/api/v1/messages",
        &json!({"to": "call me", "text": "hi"}),
    );
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("to")),
        "{body}"
    );
    let long = "b".repeat(200);
    let (status, body) = call(
        &address,
        "POST",
        "/api/v1/messages",
        &json!({"to": "+4915123456789", "text": long}),
    );
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("text")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("needs 2 SMS parts"),
        "{body}"
    );
    let (status, body) = call(
        &address,
        "POST",
        "/api/v1/messages/estimate",
        &json!({"to": "0151 2345 6789", "text": "It’s ready"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["to"], "+4915123456789");
    assert_eq!(
        (body["parts"].as_u64(), body["encoding"].as_str()),
        (Some(1), Some("gsm7"))
    );
    assert_eq!(body["transliterated"], true);

    // SQL rows: too long fails with the part count; STOP blocks the next row.
    let db = open_db(&dir.path().join("conductor.db"));
    db.execute(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
         VALUES ('+4915100000001', ?, datetime('now'), 'queued', 'outbound')",
        [&long],
    )
    .expect("the contract INSERT");
    let too_long = db.last_insert_rowid();
    let row_status = |id: i64| -> Result<(String, String), String> {
        db.query_row(
            "SELECT status, COALESCE(reason, '') FROM messages WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| e.to_string())
    };
    let (status, reason) = poll(Duration::from_secs(20), Duration::from_millis(50), || {
        row_status(too_long).and_then(|s| {
            if s.0 == "failed" {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        })
    })
    .unwrap_or_else(|seen| panic!("never failed: {seen}\n{}", daemon.log()));
    assert_eq!(status, "failed");
    assert!(reason.contains("needs 2 SMS parts"), "{reason}");

    let mut control = sim.control();
    control.inject("+4915177777777", "STOP");
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        db.query_row(
            "SELECT count(*) FROM blocked_numbers WHERE number = '+4915177777777'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())
        .and_then(|n| {
            if n == 1 {
                Ok(())
            } else {
                Err("not yet".into())
            }
        })
    })
    .unwrap_or_else(|seen| panic!("never blocked: {seen}\n{}", daemon.log()));
    db.execute(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
         VALUES ('0151 77777777', 'Big sale!', datetime('now'), 'queued', 'outbound')",
        [],
    )
    .expect("the contract INSERT");
    let promo = db.last_insert_rowid();
    poll(Duration::from_secs(20), Duration::from_millis(50), || {
        row_status(promo).and_then(|s| {
            if s.0 == "blocked" {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        })
    })
    .unwrap_or_else(|seen| panic!("never blocked: {seen}\n{}", daemon.log()));

    // `status` shows how much of each limit is used.
    let config = config.display().to_string();
    let out = conductor(&["--config", &config, "status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("per_hour") && text.contains("/100"), "{text}");
    drop(daemon);
}
