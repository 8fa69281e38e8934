//! Bad input everywhere (promise 5): odd and undecodable PDUs from the modem, noise on the
//! line, invalid numbers and empty or oversized texts through the CLI and through SQL, broken
//! config files. Each gets a clear error (on the row, in the log, on stderr) and the daemon
//! keeps running: every test ends by checking that it still receives and sends.

use crate::support::{
    DaemonProcess, VirtualModemProcess, all_rows, conductor, open_db, poll, submissions_by_text,
    write_config,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// SCTS 2026-11-26 15:00:00 +00, semi-octets swapped.
const SCTS: &str = "62116251000000";
/// TP-OA +33612345678.
const OA: &str = "0B913316325476F8";

/// One sim, a config, a database and the daemon, in a temp folder.
struct BadRig {
    daemon: DaemonProcess,
    sim: VirtualModemProcess,
    db: PathBuf,
    config: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BadRig {
    fn start(inbound: Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("bad.db");
        let config = dir.path().join("config.json");
        let log = dir.path().join("daemon.log");
        let sim = VirtualModemProcess::start_with_control(&[]);
        let mut inbound_section = json!({"sweep_interval": "1s"});
        if let (Some(base), Value::Object(extra)) = (inbound_section.as_object_mut(), inbound) {
            base.extend(extra);
        }
        write_config(
            &config,
            &json!({
                "database": {"path": db},
                "modems": [{"id": "m1", "device": sim.device()}],
                "http": {"listen": "127.0.0.1:0"},
                "inbound": inbound_section,
            }),
        );
        let daemon = DaemonProcess::start(&config, &log);
        let rig = Self {
            daemon,
            sim,
            db,
            config,
            log,
            _dir: dir,
        };
        rig.wait("the modem ready", Duration::from_secs(20), || {
            open_db(&rig.db)
                .query_row(
                    "SELECT count(*) FROM modem_status WHERE state = 'ready'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    if n > 0 {
                        Ok(())
                    } else {
                        Err("not ready".into())
                    }
                })
        });
        rig
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        poll(timeout, Duration::from_millis(50), probe).unwrap_or_else(|seen| {
            panic!(
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}\n--- daemon log ---\n{}",
                self.log_tail(60)
            )
        })
    }

    fn cli(&self, args: &[&str]) -> Output {
        let config = self.config.to_string_lossy().into_owned();
        let mut all = args.to_vec();
        all.extend(["--config", config.as_str()]);
        conductor(&all, "")
    }

    /// The daemon still runs, stores a fresh inbound message once and sends a fresh one once.
    fn still_works(&mut self, tag: &str) {
        assert!(
            self.daemon.running(),
            "the daemon kept running\n{}",
            self.log_tail(40)
        );
        let mut control = self.sim.control();
        let inbound = format!("still receiving after {tag}");
        control.inject("+33600000009", &inbound);
        let outbound = format!("still sending after {tag}");
        let output = self.cli(&["send", "+33600000008", &outbound]);
        assert!(output.status.success(), "{output:?}");
        self.wait(
            "a fresh message stored and one sent",
            Duration::from_secs(20),
            || {
                let rows = all_rows(&open_db(&self.db));
                let stored = rows.iter().filter(|r| r.3 == inbound).count();
                let sent = rows
                    .iter()
                    .any(|r| r.3 == outbound && matches!(r.2.as_str(), "sent" | "delivered"));
                if stored == 1 && sent {
                    Ok(())
                } else {
                    Err(format!("stored {stored}, sent {sent}"))
                }
            },
        );
        assert_eq!(control.submissions_of(&outbound), 1);
        assert!(self.daemon.running());
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn odd_pdus_are_stored_undecodable_slots_are_kept_raw_with_a_reason_and_noise_loses_nothing() {
    let mut rig = BadRig::start(json!({"delete_policy": "on_store", "multipart_timeout": "2s"}));
    let mut control = rig.sim.control();

    // Odd but decodable, through the network: 8-bit data, a reserved coding group, UCS-2 with
    // an odd octet, an alphanumeric sender, and part 1 of 3 whose other parts never come.
    let odd = [
        format!("0004{OA}0004{SCTS}04DEADBEEF"),
        format!("0004{OA}0080{SCTS}03414243"),
        format!("0004{OA}0008{SCTS}03004100"),
        format!("00040ED0C8329BFD0E01000000{SCTS}0441E19008"),
        format!("0044{OA}0000{SCTS}0A0500030A0301C2A0F908"),
    ];
    for pdu in &odd {
        control.call(json!({"op": "inject", "pdu": pdu}));
    }
    // Not decodable at all, placed straight into SIM slots (what a corrupted SIM holds): a
    // header longer than the data, a length past the end, a cut SMSC address, random bytes.
    let broken = [
        format!("0044{OA}0004{SCTS}0305000300"),
        format!("0004{OA}0000{SCTS}FF41"),
        "0791FFFF".to_owned(),
        "5A17C3E9010203F0AA55".to_owned(),
    ];
    for pdu in &broken {
        control.call(json!({"op": "store_raw", "pdu": pdu}));
    }

    let rows = rig.wait("the 9 rows", Duration::from_secs(20), || {
        let c = open_db(&rig.db);
        let mut statement = c
            .prepare(
                "SELECT phone_number, content, reason, raw_pdu FROM messages \
                 WHERE direction = 'inbound' ORDER BY id",
            )
            .map_err(|e| e.to_string())?;
        let rows: Vec<(String, String, Option<String>, Option<String>)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| e.to_string())?;
        if rows.len() >= 9 {
            Ok(rows)
        } else {
            Err(format!("{} rows: {rows:?}", rows.len()))
        }
    });
    for row in &rows {
        println!("{row:?}");
    }
    assert_eq!(rows.len(), 9, "one row per PDU, none twice");
    for pdu in &broken {
        let row = rows
            .iter()
            .find(|r| {
                r.3.as_deref()
                    .is_some_and(|raw| raw.eq_ignore_ascii_case(pdu))
            })
            .unwrap_or_else(|| panic!("no raw row for {pdu}: {rows:?}"));
        let reason = row.2.as_deref().unwrap_or_default();
        assert!(reason.starts_with("undecodable PDU: "), "{reason}");
    }
    assert!(
        rows.iter().any(|r| r.1 == "ABCD"),
        "the alphanumeric sender's text"
    );
    assert!(
        rows.iter().any(|r| r.1.contains("a s")),
        "the lone part, stored incomplete"
    );
    assert!(
        rig.daemon.log().contains("stored an undecodable PDU raw"),
        "the log says so\n{}",
        rig.log_tail(40)
    );
    rig.wait(
        "the SIM emptied (delete on store)",
        Duration::from_secs(10),
        || match control.used("SM") {
            0 => Ok(()),
            n => Err(format!("{n} slots used")),
        },
    );

    // Noise on the line: bursts of garbage, then garbage at 30 % of line boundaries while 20
    // messages arrive and 20 go out.
    for _ in 0..5 {
        control.fault(json!({"fault": "garbage", "bytes": 64}));
        std::thread::sleep(Duration::from_millis(100));
    }
    control.fault(json!({"fault": "garbage_rate", "rate": 0.3}));
    let texts_in: Vec<String> = (0..20)
        .map(|i| format!("through noise in {i:02}"))
        .collect();
    let texts_out: Vec<String> = (0..20)
        .map(|i| format!("through noise out {i:02}"))
        .collect();
    for (text_in, text_out) in texts_in.iter().zip(&texts_out) {
        control.inject("+33600000007", text_in);
        let output = rig.cli(&["send", "+33600000006", text_out]);
        assert!(output.status.success(), "{output:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    control.clear_fault("garbage_rate");
    rig.wait("the noisy traffic settled", Duration::from_secs(40), || {
        let rows = all_rows(&open_db(&rig.db));
        let stored = texts_in
            .iter()
            .filter(|t| rows.iter().any(|r| &r.3 == *t))
            .count();
        let open = rows
            .iter()
            .filter(|r| texts_out.contains(&r.3) && matches!(r.2.as_str(), "queued" | "sending"))
            .count();
        if stored == texts_in.len() && open == 0 {
            Ok(())
        } else {
            Err(format!("{stored} stored, {open} outbound open"))
        }
    });
    let rows = all_rows(&open_db(&rig.db));
    let counts = submissions_by_text(&mut control);
    let mut ends: HashMap<String, usize> = HashMap::new();
    for text in &texts_in {
        assert_eq!(
            rows.iter().filter(|r| &r.3 == text).count(),
            1,
            "{text:?} stored once"
        );
    }
    for text in &texts_out {
        let row = rows.iter().find(|r| &r.3 == text).expect("the row");
        *ends.entry(row.2.clone()).or_insert(0) += 1;
        let n = counts.get(text).copied().unwrap_or(0);
        assert!(n <= 1, "{text:?} submitted {n} times");
        match row.2.as_str() {
            "sent" | "delivered" => assert_eq!(n, 1, "{text:?}"),
            // Noise that garbles the modem's answer after the PDU went out makes the send
            // ambiguous; it must say so.
            _ => assert!(
                row.4.as_deref().is_some_and(|r| !r.is_empty()),
                "{text:?} ended {} without a reason",
                row.2
            ),
        }
    }
    println!("20 sends through noise ended {ends:?}");
    rig.still_works("garbage");
}

#[test]
fn invalid_numbers_empty_and_oversized_texts_are_refused_by_the_cli_and_failed_with_a_reason_from_sql()
 {
    let mut rig = BadRig::start(json!({}));
    let huge = "a".repeat(40_000);

    // The CLI refuses before queuing anything, saying what is wrong.
    for (number, text, says) in [
        ("abc", "hello", "only digits and a leading '+'"),
        ("", "hello", "the phone number is empty"),
        ("+1234567890123456789012", "hello", "at most 20"),
        ("+33612345678", "", "the text is empty"),
        ("+33612345678", "   ", "the text is empty"),
        ("+33612345678", huge.as_str(), "262 parts"),
    ] {
        let output = rig.cli(&["send", number, text]);
        let err = stderr(&output);
        println!(
            "send {number:?} {:?}: {}",
            text.get(..10).unwrap_or(text),
            err.trim()
        );
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(err.contains(says), "{err}");
    }
    // A file with one bad row queues nothing.
    let file = rig.db.with_file_name("batch.csv");
    std::fs::write(&file, "to,text\n+33612345678,fine\nnot a number,oops\n").expect("write");
    let output = rig.cli(&["send", "--file", &file.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("row 2"), "{}", stderr(&output));
    let c = open_db(&rig.db);
    let outbound: i64 = c
        .query_row(
            "SELECT count(*) FROM messages WHERE direction='outbound'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(outbound, 0, "nothing queued by refused commands");

    // The same through the SQL contract's INSERT: each row ends `failed` with its reason.
    let cases = [
        ("abc", "bad number from SQL"),
        ("", "empty number from SQL"),
        ("+1234567890123456789012", "long number from SQL"),
        ("+33612345001", ""),
        ("+33612345002", "   "),
        ("+33612345003", huge.as_str()),
    ];
    let mut ids = Vec::new();
    for (number, text) in cases {
        c.execute(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
             VALUES (?1, ?2, datetime('now'), 'queued', 'outbound')",
            [number, text],
        )
        .expect("insert");
        ids.push(c.last_insert_rowid());
    }
    let ended = rig.wait("every bad row failed", Duration::from_secs(20), || {
        let rows = all_rows(&open_db(&rig.db));
        let ended: Vec<_> = rows
            .into_iter()
            .filter(|r| ids.contains(&r.0))
            .filter(|r| !matches!(r.2.as_str(), "queued" | "sending"))
            .collect();
        if ended.len() == ids.len() {
            Ok(ended)
        } else {
            Err(format!("{} of {} ended", ended.len(), ids.len()))
        }
    });
    for row in &ended {
        println!("#{} {} reason: {:?}", row.0, row.2, row.4);
        assert_eq!(row.2, "failed", "#{} {:?}", row.0, row);
        assert!(
            row.4.as_deref().is_some_and(|r| r.len() > 10),
            "#{} needs a reason",
            row.0
        );
    }
    let mut control = rig.sim.control();
    assert!(
        control.submitted().is_empty(),
        "nothing bad reached the modem: {:?}",
        control.submitted()
    );
    rig.still_works("bad rows");
}

/// `conductor run --config FILE` with `body`: exit status and stderr, within 10 s.
fn run_with_config(dir: &Path, name: &str, body: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("conductor runs");
    let exited = poll(Duration::from_secs(10), Duration::from_millis(20), || {
        child
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "still running".to_owned())
    });
    if exited.is_err() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("wait");
    (output.status.code(), stderr(&output))
}

#[test]
fn a_broken_config_file_makes_run_exit_non_zero_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let modems = r#""modems":[{"id":"a","device":"tcp://127.0.0.1:1"}]"#;
    let cases: Vec<(String, &str)> = vec![
        (r#"{"database": "#.into(), "EOF while parsing"),
        (
            r#"{"modem":[{"id":"a","device":"x"}]}"#.into(),
            "unknown field `modem`",
        ),
        (
            format!(r#"{{{modems},"inbound":{{"sweep_interval":"soon"}}}}"#),
            "inbound.sweep_interval",
        ),
        (
            format!(r#"{{{modems},"inbound":{{"sweep_interval":"100ms"}}}}"#),
            "inbound.sweep_interval: must be at least 1s",
        ),
        (
            format!(r#"{{{modems},"inbound":{{"capacity_threshold_percent":150}}}}"#),
            "inbound.capacity_threshold_percent",
        ),
        (
            format!(r#"{{{modems},"outbound":{{"delivery":"sometimes"}}}}"#),
            "outbound.delivery: unknown variant `sometimes`",
        ),
        (
            format!(r#"{{{modems},"logging":{{"level":"loud"}}}}"#),
            "logging.level",
        ),
        (
            r#"{"modems":[{"id":"a","device":"x","baud_rate":"fast"}]}"#.into(),
            "modems[0].baud_rate",
        ),
        (
            r#"{"modems":[{"id":"","device":"x"}]}"#.into(),
            "modems[0].id: must not be empty",
        ),
        (
            r#"{"modems":[{"id":"a"}]}"#.into(),
            "modems[0].device: expected a serial device",
        ),
        (
            r#"{"modems":[{"id":"a","device":"x","pin":"12"}]}"#.into(),
            "modems[0].pin",
        ),
    ];
    for (i, (body, says)) in cases.iter().enumerate() {
        let (code, err) = run_with_config(dir.path(), &format!("bad{i}.json"), body);
        println!("{body}\n  -> exit {code:?}: {}", err.trim());
        assert_eq!(code, Some(1), "{body}: exit {code:?}, {err}");
        assert!(err.contains("config file"), "{err}");
        assert!(err.contains(says), "{body}: expected {says:?} in {err}");
    }
}
