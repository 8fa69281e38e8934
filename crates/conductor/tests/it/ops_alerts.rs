//! Statistics, alerts and `doctor` end to end: the real daemon against `conductor sim`, a real
//! SQLite file, and the CLI as separate processes (what another terminal or cron would run).

use crate::support::{
    DaemonProcess, Scratch, VirtualModemProcess, conductor, conductor_env, http_get, open_db, poll,
    scratch, write_config, write_one_modem_config,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A sim, a config (alerts every second, a modem down after 2 s, an unreachable webhook
/// receiver for alert events) and the daemon, in one temp folder.
struct Rig {
    daemon: Option<DaemonProcess>,
    sim: Option<VirtualModemProcess>,
    db: PathBuf,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let Scratch { dir, db, config } = scratch("conductor.db");
        let sim = VirtualModemProcess::start(&[]);
        write_one_modem_config(
            &config,
            &db,
            &sim.device(),
            json!({
                "inbound": {"sweep_interval": "1s"},
                "http": {"listen": "127.0.0.1:0"},
                "backup": {"enabled": false},
                // The test machine's own free disk space must not add an episode.
                "alerts": {"interval": "1s", "modem_down_after": "2s", "disk_min_free_percent": 0},
                // Nothing listens on port 9: deliveries stay pending, which is all we need.
                "webhooks": {"endpoints": [{"name": "ops", "url": "http://127.0.0.1:9/hook",
                              "secret": "s", "events": ["alert.raised", "alert.cleared"]}]},
            }),
        );
        let log = dir.path().join("daemon.log");
        let daemon = DaemonProcess::start(&config, &log);
        let rig = Self {
            daemon: Some(daemon),
            sim: Some(sim),
            db,
            config,
            dir,
        };
        poll(Duration::from_secs(30), POLL, || {
            let out = rig.cli(&["health"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(text(&out))
            }
        })
        .unwrap_or_else(|seen| panic!("never healthy: {seen}\n{}", rig.log()));
        rig
    }

    fn cli(&self, args: &[&str]) -> Output {
        let config = self.config.to_string_lossy().into_owned();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        conductor(&all, "")
    }

    fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(DaemonProcess::log)
            .unwrap_or_default()
    }

    fn api(&self) -> String {
        let log = self.dir.path().join("daemon.log");
        poll(Duration::from_secs(10), POLL, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .find(|l| l.contains("HTTP API and dashboard listening"))
                .and_then(|l| l.split("address=").nth(1))
                .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
                .ok_or(text)
        })
        .unwrap_or_else(|log| panic!("no API address in the log:\n{log}"))
    }

    fn event(&self, kind: &str, detail: Value) {
        open_db(&self.db)
            .execute(
                "INSERT INTO events (at, kind, detail) VALUES (datetime('now'), ?1, ?2)",
                (kind, detail.to_string()),
            )
            .expect("insert the event");
    }

    fn deliveries(&self, event: &str) -> Vec<String> {
        let c = open_db(&self.db);
        let mut s = c
            .prepare("SELECT payload FROM webhook_deliveries WHERE event = ?1 ORDER BY id")
            .expect("prepare");
        s.query_map([event], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    fn health_alerts(&self) -> (bool, Vec<Value>) {
        let out = self.cli(&["health", "--json"]);
        let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            value["alerts"].as_array().cloned().unwrap_or_default(),
        )
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.daemon.take();
        self.sim.take();
    }
}

#[test]
fn a_failed_backup_is_one_alert_episode_in_health_the_api_and_the_webhook_outbox() {
    let rig = Rig::start();
    rig.event(
        "backup_failed",
        json!({"reason": "No space left on device"}),
    );
    let alerts = poll(Duration::from_secs(15), POLL, || {
        let (healthy, alerts) = rig.health_alerts();
        // Alerts are shown, but health's exit code stays "database and modems".
        if healthy && alerts.iter().any(|a| a["key"] == "backup_failed") {
            Ok(alerts)
        } else {
            Err(format!("healthy={healthy} alerts={alerts:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("no backup alert in health: {seen}\n{}", rig.log()));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No space left on device")),
        "{alerts:?}"
    );
    let health = rig.cli(&["health"]);
    assert!(
        text(&health).contains("WARN alert backup_failed"),
        "{}",
        text(&health)
    );

    let (status, body) = http_get(&rig.api(), "/api/v1/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"backup_failed\""), "{body}");

    let raised = poll(Duration::from_secs(15), POLL, || {
        let rows = rig.deliveries("alert.raised");
        if rows.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(rows)
        }
    })
    .unwrap_or_else(|_| panic!("no alert.raised delivery\n{}", rig.log()));
    assert_eq!(raised.len(), 1);
    let payload: Value = serde_json::from_str(&raised[0]).expect("payload JSON");
    assert_eq!(payload["event"], "alert.raised");
    assert_eq!(payload["detail"]["key"], "backup_failed");

    // A completed backup ends the episode: cleared once, announced once.
    rig.event("backup_completed", json!({"file": "x.db.gz"}));
    poll(Duration::from_secs(15), POLL, || {
        let (_, alerts) = rig.health_alerts();
        if alerts.is_empty() {
            Ok(())
        } else {
            Err(format!("{alerts:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("the alert never cleared: {seen}\n{}", rig.log()));
    poll(Duration::from_secs(15), POLL, || {
        let rows = rig.deliveries("alert.cleared");
        if rows.len() == 1 {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("no alert.cleared delivery: {seen}"));
    assert_eq!(rig.deliveries("alert.raised").len(), 1, "raised once");
    let log = rig.log();
    assert_eq!(log.matches("alert raised").count(), 1, "{log}");
    assert_eq!(log.matches("alert cleared").count(), 1, "{log}");
}

#[test]
fn doctor_passes_on_a_healthy_daemon_and_fails_naming_the_modem_once_it_is_gone() {
    let mut rig = Rig::start();
    let out = poll(Duration::from_secs(20), POLL, || {
        let out = rig.cli(&["doctor"]);
        if out.status.success() {
            Ok(out)
        } else {
            Err(text(&out))
        }
    })
    .unwrap_or_else(|seen| panic!("doctor never passed: {seen}\n{}", rig.log()));
    let report = text(&out);
    assert!(report.contains("ok    database"), "{report}");
    assert!(report.contains("ok    modem m1"), "{report}");
    assert!(report.contains("WAL mode"), "{report}");
    let json_out = rig.cli(&["doctor", "--json"]);
    let value: Value = serde_json::from_slice(&json_out.stdout).expect("doctor --json");
    assert_eq!(value["ok"], true, "{value}");

    // The virtual modem dies: doctor fails naming it, and the daemon raises modem_down.
    rig.sim.take();
    let report = poll(Duration::from_secs(20), POLL, || {
        let out = rig.cli(&["doctor"]);
        let report = text(&out);
        if !out.status.success() && report.contains("FAIL  modem m1") {
            Ok(report)
        } else {
            Err(report)
        }
    })
    .unwrap_or_else(|seen| panic!("doctor never failed on the modem: {seen}\n{}", rig.log()));
    assert!(
        report.contains("doctor: 1 check(s) failed: modem m1"),
        "{report}"
    );
    assert!(report.contains("fix:"), "{report}");
    poll(Duration::from_secs(20), POLL, || {
        let (_, alerts) = rig.health_alerts();
        if alerts.iter().any(|a| a["key"] == "modem_down:m1") {
            Ok(())
        } else {
            Err(format!("{alerts:?}"))
        }
    })
    .unwrap_or_else(|seen| panic!("no modem_down alert: {seen}\n{}", rig.log()));
}

#[test]
fn doctor_fails_naming_the_database_when_it_takes_no_writes() {
    let rig = Rig::start();
    // Another process holds the write lock (as a forgotten sqlite3 session would).
    let holder = open_db(&rig.db);
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let out = rig.cli(&["doctor"]);
    holder.execute_batch("ROLLBACK").expect("release");
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("FAIL  database"), "{report}");
    assert!(report.contains("does not take writes"), "{report}");
}

#[test]
fn doctor_reports_a_broken_config_by_its_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.json");
    write_config(&config, &json!({"alerts": {"failure_rate_percent": 150}}));
    let out = conductor(&["--config", &config.to_string_lossy(), "doctor"], "");
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("FAIL  config"), "{report}");
    assert!(report.contains("alerts.failure_rate_percent"), "{report}");
}

/// March 2024 (UTC): every day 1 inbound at 09:20 (SMSC time 7 s earlier) and 3 outbound at
/// 14:05, 14:35 and 18:10: delivered after 2 s, sent after 4 s, and the last failed with
/// CMS 38 on days divisible by 5 (never sent), else delivered after 6 s.
fn month(db: &Path) {
    let c = open_db(db);
    for day in 1..=31 {
        let d = format!("2024-03-{day:02}");
        c.execute(
            "INSERT INTO messages (phone_number, status, direction, modem_id, created_at,
                 updated_at, smsc_timestamp)
             VALUES ('+1', 'unread', 'inbound', 'm1', ?1 || ' 09:20:00', ?1 || ' 09:20:00',
                     ?1 || 'T09:19:53Z')",
            [&d],
        )
        .expect("inbound");
        let failed = day % 5 == 0;
        let rows = [
            ("14:05:00", "delivered", Some("14:05:02"), None),
            ("14:35:00", "sent", Some("14:35:04"), None),
            if failed {
                (
                    "18:10:00",
                    "failed",
                    None,
                    Some("modem m1 refused the send: +CMS ERROR 38 (network out of order)"),
                )
            } else {
                ("18:10:00", "delivered", Some("18:10:06"), None)
            },
        ];
        for (created, status, sent, reason) in rows {
            c.execute(
                "INSERT INTO messages (phone_number, status, direction, sending_modem,
                     created_at, updated_at, sent_at, reason)
                 VALUES ('+2', ?2, 'outbound', 'm1', ?1 || ' ' || ?3, ?1 || ' ' || ?3,
                         CASE WHEN ?4 IS NULL THEN NULL ELSE ?1 || ' ' || ?4 END, ?5)",
                (&d, status, created, sent, reason),
            )
            .expect("outbound");
        }
    }
}

/// A rate read back from JSON equals `expected` (serde_json's float parsing may differ in the
/// last bit).
fn close(value: &Value, expected: f64) {
    let got = value.as_f64().unwrap_or(f64::NAN);
    assert!((got - expected).abs() < 1e-12, "{got} != {expected}");
}

#[test]
fn stats_on_a_generated_month_gives_the_expected_numbers_by_day_week_and_month() {
    let Scratch {
        dir: _dir,
        db,
        config,
    } = scratch("stats.db");
    write_config(&config, &json!({"database": {"path": db}}));
    let config = config.to_string_lossy().into_owned();
    // Any command creates the schema.
    assert!(
        conductor(&["--config", &config, "status"], "")
            .status
            .success()
    );
    month(&db);
    let stats = |by: &str, json: bool| {
        let mut args = vec![
            "--config",
            &config,
            "stats",
            "--by",
            by,
            "--since",
            "2024-03-01",
            "--until",
            "2024-04-01",
        ];
        if json {
            args.push("--json");
        }
        let out = conductor_env(&args, &[("TZ", "UTC")]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let month_report: Value = serde_json::from_str(&stats("month", true)).expect("JSON");
    let periods = month_report["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 1);
    let march = &periods[0];
    assert_eq!(march["period"], "2024-03");
    assert_eq!(march["inbound"], 31);
    assert_eq!(march["outbound"], 93);
    // 6 failed days (5, 10, ... 30); success = (31 sent + 56 delivered) / 93.
    assert_eq!(march["failed"], 6);
    assert_eq!(march["sent"], 31);
    assert_eq!(march["delivered"], 56);
    close(&march["success_rate"], 87.0 / 93.0);
    assert_eq!(
        march["failures"],
        json!([{"reason": "+CMS ERROR 38 (network out of order)", "count": 6}])
    );
    // Send latencies: 31 × 2 s, 31 × 4 s, 25 × 6 s → the median (44th of 87) is 4 s.
    assert_eq!(
        march["send_latency"],
        json!({"samples": 87, "median_secs": 4.0})
    );
    assert_eq!(
        march["inbound_latency"],
        json!({"samples": 31, "median_secs": 7.0})
    );
    // 14:00 has 62 messages, 18:00 31, 09:00 31.
    assert_eq!(march["busiest_hour"], 14);
    assert_eq!(march["hours"][14], 62);
    assert_eq!(month_report["total"]["outbound"], 93);
    assert_eq!(month_report["time_zone"], "UTC");

    let weeks: Value = serde_json::from_str(&stats("week", true)).expect("JSON");
    let labels: Vec<&str> = weeks["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .filter_map(|p| p["period"].as_str())
        .collect();
    assert_eq!(
        labels,
        ["2024-W09", "2024-W10", "2024-W11", "2024-W12", "2024-W13"]
    );
    // W09 is Friday 1st to Sunday 3rd: 3 days; W13 is Monday 25th to Sunday 31st: 7 days
    // with the 25th and 30th failing.
    assert_eq!(weeks["periods"][0]["outbound"], 9);
    assert_eq!(weeks["periods"][4]["outbound"], 21);
    assert_eq!(weeks["periods"][4]["failed"], 2);

    let days: Value = serde_json::from_str(&stats("day", true)).expect("JSON");
    let days = days["periods"].as_array().expect("periods");
    assert_eq!(days.len(), 31);
    // Day 5: 2, 4 s (the third never left): median 3 s; day 1: 2, 4, 6 s: median 4 s.
    assert_eq!(days[4]["send_latency"]["median_secs"], json!(3.0));
    assert_eq!(days[0]["send_latency"]["median_secs"], json!(4.0));
    close(&days[4]["success_rate"], 2.0 / 3.0);

    let table = stats("month", false);
    assert!(
        table.contains("Statistics by month, 2024-03-01 00:00 to 2024-04-01 00:00 (UTC)"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("2024-03 "))
        .unwrap_or_else(|| panic!("no March row:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "2024-03", "31", "93", "31", "56", "6", "0", "93.5", "%", "4", "s", "7", "s", "14:00"
        ],
        "{table}"
    );
    assert!(
        table.contains("       6  +CMS ERROR 38 (network out of order)"),
        "{table}"
    );
    assert!(
        table.contains("Busiest hours: 14:00-15:00 (62), 09:00-10:00 (31), 18:00-19:00 (31)"),
        "{table}"
    );

    // In another zone the hours move with it (UTC+2 all month, no tzdata needed).
    let out = conductor_env(
        &[
            "--config",
            &config,
            "stats",
            "--by",
            "month",
            "--since",
            "2024-03-01",
            "--until",
            "2024-04-01",
            "--json",
        ],
        &[("TZ", "XST-2")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let shifted: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shifted["total"]["busiest_hour"], 16, "{shifted}");
}
