//! Event scripts end to end: the real daemon against `conductor sim`, scripts that record what
//! they were given, one that hangs and one that fails, and a restart.

use crate::support::{
    DaemonProcess, Scratch, VirtualModemProcess, conductor, open_db, poll, scratch, write_config,
    write_one_modem_config,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

fn script_runs(db: &Path) -> Vec<Value> {
    // Before the daemon has created the schema there is nothing to read yet.
    let c = open_db(db);
    let Ok(mut s) = c.prepare("SELECT detail FROM events WHERE kind = 'script_ran' ORDER BY id")
    else {
        return Vec::new();
    };
    s.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| {
            rows.filter_map(Result::ok)
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn runs_of(db: &Path, script: &str, event: &str) -> Vec<Value> {
    script_runs(db)
        .into_iter()
        .filter(|r| r["script"] == script && r["event"] == event)
        .collect()
}

#[test]
fn scripts_run_on_each_event_without_a_shell_survive_hangs_and_failures_and_do_not_rerun() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let db = dir.path().join("c.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&[]);
    let mut control = sim.control();
    control.call(json!({"op": "status_report", "delay_ms": 300, "status": 0, "enabled": true}));
    // The recorder: stdin to a file and the CONDUCTOR_* environment to another, both named
    // by the event id. Its argv is fixed; message content reaches it only as data.
    let recorder = format!(
        "cat > {o}/stdin-$CONDUCTOR_EVENT_ID.json; env | grep '^CONDUCTOR_' | sort > {o}/env-$CONDUCTOR_EVENT_ID",
        o = out.display()
    );
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "inbound": {"sweep_interval": "1s"},
            "outbound": {"status_reports": true},
            "http": {"enabled": false},
            "backup": {"enabled": false},
            "scripts": [
                {"name": "recorder", "on": ["received", "sent", "delivered", "failed"],
                 "command": ["/bin/sh", "-c", recorder], "timeout": "10s"},
                {"name": "hang", "on": ["received"], "command": ["/bin/sleep", "60"],
                 "timeout": "1s"},
                {"name": "fails", "on": ["received"],
                 "command": ["/bin/sh", "-c", "echo broken >&2; exit 7"]},
            ],
            "scripts_concurrency": 2,
        }),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = DaemonProcess::start(&config, &log);

    let pwned = dir.path().join("pwned");
    let evil = format!(
        "hi $(touch {p}); rm -rf {o} `touch {p}` && echo \"x\"",
        p = pwned.display(),
        o = out.display()
    );
    control.inject("+15557654321", &evil);
    let received = poll(Duration::from_secs(30), POLL, || {
        let runs = runs_of(&db, "recorder", "received");
        runs.first()
            .cloned()
            .ok_or(format!("{:?}", script_runs(&db)))
    })
    .unwrap_or_else(|seen| panic!("no received run: {seen}\n{}", daemon.log()));
    assert_eq!(received["exit_code"], 0, "{received}");
    let event_id = received["event_id"].as_i64().expect("event id");
    let stdin: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("stdin-{event_id}.json"))).expect("stdin file"),
    )
    .expect("stdin is JSON");
    assert_eq!(stdin["event"], "received");
    assert_eq!(stdin["message"]["text"], evil);
    assert_eq!(stdin["message"]["number"], "+15557654321");
    let env = std::fs::read_to_string(out.join(format!("env-{event_id}"))).expect("env file");
    assert!(env.contains("CONDUCTOR_EVENT=received"), "{env}");
    assert!(env.contains("CONDUCTOR_NUMBER=+15557654321"), "{env}");
    assert!(env.contains("CONDUCTOR_MODEM=m1"), "{env}");
    assert!(env.contains(&format!("CONDUCTOR_TEXT={evil}")), "{env}");
    assert!(!pwned.exists(), "the message text was run by a shell");

    // While the hanging script holds a slot, messages keep flowing: a send goes out and is
    // delivered, and its events reach the recorder.
    let cfg = config.to_string_lossy().into_owned();
    let sent = conductor(&["--config", &cfg, "send", "+15550009999", "first"], "");
    assert!(sent.status.success(), "{sent:?}");
    for event in ["sent", "delivered"] {
        poll(Duration::from_secs(30), POLL, || {
            if runs_of(&db, "recorder", event).is_empty() {
                Err(format!("{:?}", script_runs(&db)))
            } else {
                Ok(())
            }
        })
        .unwrap_or_else(|seen| panic!("no {event} run: {seen}\n{}", daemon.log()));
    }
    let hang = poll(Duration::from_secs(20), POLL, || {
        runs_of(&db, "hang", "received")
            .first()
            .cloned()
            .ok_or_else(String::new)
    })
    .expect("the hanging script is recorded");
    assert_eq!(hang["timed_out"], true, "{hang}");
    assert!(
        hang["duration_ms"].as_u64().expect("duration") < 10_000,
        "{hang}"
    );
    let fails = poll(Duration::from_secs(20), POLL, || {
        runs_of(&db, "fails", "received")
            .first()
            .cloned()
            .ok_or_else(String::new)
    })
    .expect("the failing script is recorded");
    assert_eq!(fails["exit_code"], 7, "{fails}");
    assert_eq!(fails["stderr"], "broken\n", "{fails}");

    // A permanent failure in the status report makes the next send `failed`.
    control.call(json!({"op": "status_report", "delay_ms": 300, "status": 70, "enabled": true}));
    let sent = conductor(&["--config", &cfg, "send", "+15550009999", "second"], "");
    assert!(sent.status.success(), "{sent:?}");
    poll(Duration::from_secs(30), POLL, || {
        if runs_of(&db, "recorder", "failed").is_empty() {
            Err(format!("{:?}", script_runs(&db)))
        } else {
            Ok(())
        }
    })
    .unwrap_or_else(|seen| panic!("no failed run: {seen}\n{}", daemon.log()));

    // A restart runs nothing again.
    let before = script_runs(&db).len();
    daemon
        .terminate(Duration::from_secs(20))
        .expect("the daemon stops");
    let mut daemon = DaemonProcess::start(&config, &log);
    control.inject("+15557654321", "after the restart");
    poll(Duration::from_secs(30), POLL, || {
        let runs = runs_of(&db, "recorder", "received");
        if runs.len() == 2 {
            Ok(())
        } else {
            Err(format!("{runs:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("no run for the new message: {seen}\n{}", daemon.log()));
    let mut seen = std::collections::HashSet::new();
    for run in script_runs(&db) {
        let key = (run["script"].to_string(), run["event_id"].to_string());
        assert!(seen.insert(key), "ran twice: {run}");
    }
    assert!(script_runs(&db).len() > before);
    daemon.kill();
}

fn alert_rows(db: &Path) -> Vec<(String, Option<String>, String)> {
    let c = open_db(db);
    let mut s = c
        .prepare("SELECT content, sending_modem, status FROM messages WHERE source = 'alert' ORDER BY id")
        .expect("prepare");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn an_alert_sms_goes_out_through_the_other_modem_and_a_second_alert_inside_the_interval_sends_nothing()
 {
    let Scratch { dir, db, config } = scratch("c.db");
    let sim1 = VirtualModemProcess::start_with_control(&[]);
    let sim2 = VirtualModemProcess::start_with_control(&["--number", "+15550000002"]);
    write_config(
        &config,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim1.device()},
                       {"id": "m2", "device": sim2.device()}],
            "inbound": {"sweep_interval": "1s"},
            "http": {"enabled": false},
            "backup": {"enabled": false},
            // The disk check is off: the test machine's own free space must not add an SMS.
            "alerts": {"interval": "1s", "modem_down_after": "2s", "disk_min_free_percent": 0,
                       "sms": {"to": ["+15550007777"], "min_interval": "1h"}},
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let cfg = config.to_string_lossy().into_owned();
    poll(Duration::from_secs(30), POLL, || {
        let out = conductor(&["--config", &cfg, "health"], "");
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    })
    .unwrap_or_else(|seen| panic!("never healthy: {seen}\n{}", daemon.log()));
    sim1.control().fault(json!({"fault": "unplug"}));
    let mut control2 = sim2.control();
    let sent = poll(Duration::from_secs(60), POLL, || {
        let texts: Vec<String> = control2
            .submitted()
            .iter()
            .filter_map(|s| s["text"].as_str().map(str::to_owned))
            .filter(|t| t.contains("ALERT modem_down:m1"))
            .collect();
        texts
            .first()
            .cloned()
            .ok_or(format!("{:?}", alert_rows(&db)))
    })
    .unwrap_or_else(|seen| panic!("no alert SMS through m2: {seen}\n{}", daemon.log()));
    assert!(sent.starts_with("Conductor: "), "{sent}");
    let rows = alert_rows(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1.as_deref(), Some("m2"), "{rows:?}");

    // The modem comes back: the episode clears inside the interval, and no SMS follows.
    sim1.control().clear_fault("unplug");
    let cleared: i64 = poll(Duration::from_secs(60), POLL, || {
        open_db(&db)
            .query_row(
                "SELECT max(id) FROM events WHERE kind = 'alert_cleared'",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .ok()
            .flatten()
            .ok_or_else(String::new)
    })
    .unwrap_or_else(|_| panic!("the alert never cleared\n{}", daemon.log()));
    poll(Duration::from_secs(30), POLL, || {
        let cursor: i64 = open_db(&db)
            .query_row(
                "SELECT last_event_id FROM event_cursors WHERE name = 'alert_sms'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if cursor >= cleared {
            Ok(())
        } else {
            Err(cursor.to_string())
        }
    })
    .expect("the alert SMS task read the cleared event");
    assert_eq!(
        alert_rows(&db).len(),
        1,
        "rate limit: {:?}",
        alert_rows(&db)
    );
}

/// A script command that writes its stdin to `OUT/stdin-ID.json` and its `CONDUCTOR_*`
/// environment to `OUT/env-ID`, ID being the event id: what a script was given, kept.
fn recorder_command(out: &Path) -> Vec<String> {
    let body = format!(
        "cat > {o}/stdin-$CONDUCTOR_EVENT_ID.json; env | grep '^CONDUCTOR_' | sort > {o}/env-$CONDUCTOR_EVENT_ID",
        o = out.display()
    );
    vec!["/bin/sh".into(), "-c".into(), body]
}

/// What the recorder kept for `run` (a `script_ran` detail): (stdin as JSON, environment).
fn recorded(out: &Path, run: &Value) -> (Value, String) {
    let id = run["event_id"].as_i64().expect("the run names its event");
    let stdin = std::fs::read_to_string(out.join(format!("stdin-{id}.json")))
        .unwrap_or_else(|e| panic!("no stdin recorded for {run}: {e}"));
    let env = std::fs::read_to_string(out.join(format!("env-{id}")))
        .unwrap_or_else(|e| panic!("no environment recorded for {run}: {e}"));
    (
        serde_json::from_str(&stdin).expect("stdin is one JSON line"),
        env,
    )
}

/// Waits for the first run of `script` on an `event` newer than event id `after`, and
/// returns its `script_ran` detail.
fn run_after(db: &Path, script: &str, event: &str, after: i64, daemon: &DaemonProcess) -> Value {
    poll(Duration::from_secs(30), POLL, || {
        runs_of(db, script, event)
            .into_iter()
            .find(|r| r["event_id"].as_i64().is_some_and(|id| id > after))
            .ok_or_else(|| format!("{:?}", script_runs(db)))
    })
    .unwrap_or_else(|seen| {
        panic!(
            "no {event} run of {script}: {seen}\n{}",
            daemon.log_tail(40)
        )
    })
}

/// Waits until the script runner has saved its cursor: events from then on reach scripts (its
/// first start begins at the newest event, so anything earlier would be skipped on purpose).
fn wait_runner(db: &Path, daemon: &DaemonProcess) {
    poll(Duration::from_secs(30), POLL, || {
        open_db(db)
            .query_row(
                "SELECT last_event_id FROM event_cursors WHERE name = 'scripts'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|seen| {
        panic!(
            "the script runner never started: {seen}\n{}",
            daemon.log_tail(40)
        )
    });
}

#[test]
fn scripts_run_on_a_call_with_the_callers_number_and_on_modem_down_and_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let db = dir.path().join("c.db");
    let config = dir.path().join("config.json");
    let sim = VirtualModemProcess::start_with_control(&[]);
    write_config(
        &config,
        &json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device(), "calls": {"reject": true}}],
            "http": {"enabled": false},
            "backup": {"enabled": false},
            "scripts": [{"name": "rec", "on": ["call", "modem_down", "modem_up"],
                         "command": recorder_command(&out), "timeout": "10s"}],
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    // Ready first: init has turned caller id on (`AT+CLIP=1`), so the call carries a number.
    let caller = "+33612345678";
    poll(Duration::from_secs(30), POLL, || {
        let state: Option<String> = open_db(&db)
            .query_row(
                "SELECT state FROM modem_status WHERE modem_id = 'm1'",
                [],
                |r| r.get(0),
            )
            .ok();
        (state.as_deref() == Some("ready"))
            .then_some(())
            .ok_or(format!("{state:?}"))
    })
    .unwrap_or_else(|seen| panic!("m1 never ready: {seen}\n{}", daemon.log_tail(40)));
    wait_runner(&db, &daemon);
    let mut control = sim.control();
    control.call(json!({"op": "call", "from": caller, "rings": 3, "interval_ms": 300}));
    let call = run_after(&db, "rec", "call", 0, &daemon);
    assert_eq!(call["exit_code"], 0, "{call}");
    let (stdin, env) = recorded(&out, &call);
    assert_eq!(stdin["event"], "call", "{stdin}");
    assert_eq!(stdin["modem_id"], "m1", "{stdin}");
    assert_eq!(stdin["detail"]["number"], caller, "{stdin}");
    assert_eq!(stdin["detail"]["rejected"], true, "{stdin}");
    assert!(env.contains("CONDUCTOR_EVENT=call\n"), "{env}");
    assert!(
        env.contains(&format!("CONDUCTOR_NUMBER={caller}\n")),
        "{env}"
    );
    assert!(env.contains("CONDUCTOR_MODEM=m1\n"), "{env}");

    // Unplugged for two seconds: the daemon sees the modem go and come back.
    control.fault(json!({"fault": "unplug", "seconds": 2}));
    let call_id = call["event_id"].as_i64().unwrap_or_default();
    let down = run_after(&db, "rec", "modem_down", call_id, &daemon);
    let (stdin, env) = recorded(&out, &down);
    assert_eq!(stdin["event"], "modem_down", "{stdin}");
    assert!(env.contains("CONDUCTOR_MODEM=m1\n"), "{env}");
    let down_id = down["event_id"].as_i64().unwrap_or_default();
    let up = run_after(&db, "rec", "modem_up", down_id, &daemon);
    let (stdin, env) = recorded(&out, &up);
    assert_eq!(stdin["event"], "modem_up", "{stdin}");
    assert!(env.contains("CONDUCTOR_MODEM=m1\n"), "{env}");
}

#[test]
fn runs_beyond_the_concurrency_and_queue_limits_are_dropped_and_recorded_while_messages_flow() {
    let Scratch { dir, db, config } = scratch("c.db");
    let sim = VirtualModemProcess::start_with_control(&[]);
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "inbound": {"sweep_interval": "1s"},
            "http": {"enabled": false},
            "backup": {"enabled": false},
            "scripts": [{"name": "slow", "on": ["received"],
                         "command": ["/bin/sleep", "3"], "timeout": "10s"}],
            "scripts_concurrency": 1,
            "scripts_queue_limit": 1,
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    wait_runner(&db, &daemon);
    let mut control = sim.control();
    // One run holds the only slot, one waits in the queue: of four messages received while
    // the first run sleeps, at least one run has no room.
    for n in 0..4 {
        control.inject("+15557654321", &format!("burst {n}"));
    }
    let dropped = poll(Duration::from_secs(30), POLL, || {
        let c = open_db(&db);
        let detail: Option<String> = c
            .query_row(
                "SELECT detail FROM events WHERE kind = 'script_dropped' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .ok();
        detail
            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .ok_or_else(|| format!("{:?}", script_runs(&db)))
    })
    .unwrap_or_else(|seen| panic!("nothing dropped: {seen}\n{}", daemon.log_tail(40)));
    assert_eq!(dropped["script"], "slow", "{dropped}");
    assert_eq!(dropped["event"], "received", "{dropped}");
    assert_eq!(dropped["why"], "queue full", "{dropped}");
    assert!(
        daemon.log().contains("event script queue is full"),
        "the drop is logged\n{}",
        daemon.log_tail(40)
    );

    // The slow script still holds its slot; a send goes out regardless.
    let cfg = config.to_string_lossy().into_owned();
    let sent = conductor(
        &["--config", &cfg, "send", "+15550009999", "still flowing"],
        "",
    );
    assert!(sent.status.success(), "{sent:?}");
    poll(Duration::from_secs(30), POLL, || {
        let status: String = open_db(&db)
            .query_row(
                "SELECT status FROM messages WHERE content = 'still flowing'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        matches!(status.as_str(), "sent" | "delivered")
            .then_some(())
            .ok_or(status)
    })
    .unwrap_or_else(|seen| panic!("the send waited: {seen}\n{}", daemon.log_tail(40)));
    let inbound: i64 = open_db(&db)
        .query_row(
            "SELECT count(*) FROM messages WHERE direction = 'inbound'",
            [],
            |r| r.get(0),
        )
        .expect("count inbound");
    assert_eq!(inbound, 4, "every message is stored, dropped run or not");
    // Every received event ends with a run or a drop on record: nothing is lost silently.
    poll(Duration::from_secs(30), POLL, || {
        let drops: i64 = open_db(&db)
            .query_row(
                "SELECT count(*) FROM events WHERE kind = 'script_dropped'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        let runs = script_runs(&db).len();
        (usize::try_from(drops).ok() == Some(4 - runs.min(4)))
            .then_some(())
            .ok_or(format!("{runs} runs, {drops} drops"))
    })
    .unwrap_or_else(|seen| panic!("runs + drops != 4: {seen}\n{}", daemon.log_tail(40)));
}
