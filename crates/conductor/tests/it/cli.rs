//! The database verbs (`send`, `list`, `show`, `cancel`, `requeue`, `mark-read`, `status`,
//! `health`, `watch`) and `config`, run as processes against a real SQLite file with no
//! daemon: what an operator or a script sees.

use crate::support::{conductor, json_lines};

fn db_args(dir: &tempfile::TempDir) -> String {
    dir.path().join("gw.db").display().to_string()
}

#[test]
fn send_queues_rows_that_list_show_and_cancel_work_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = db_args(&dir);
    let output = conductor(
        &["--db", &db, "send", "+4917612345678", "hello", "--json"],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let id = json_lines(&output)[0]["queued"][0].as_i64().expect("an id");

    // The global option also works after the verb.
    let output = conductor(&["list", "--db", &db, "--status", "queued", "--json"], "");
    let rows = json_lines(&output);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["phone_number"], "+4917612345678");
    assert_eq!(rows[0]["source"], "cli");

    let output = conductor(&["--db", &db, "show", &id.to_string()], "");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("outbound queued") && text.contains("hello"),
        "{text}"
    );

    assert!(
        conductor(&["--db", &db, "cancel", &id.to_string()], "")
            .status
            .success()
    );
    // Cancelling twice is refused, saying why.
    let again = conductor(&["--db", &db, "cancel", &id.to_string()], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("cancelled"));
    // A cancelled message can be queued again on purpose.
    assert!(
        conductor(&["--db", &db, "requeue", &id.to_string()], "")
            .status
            .success()
    );
    let rows = json_lines(&conductor(&["--db", &db, "list", "--json"], ""));
    assert_eq!(rows[0]["status"], "queued");
}

#[test]
fn send_file_checks_every_row_before_queuing_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = db_args(&dir);
    let csv = dir.path().join("batch.csv");
    std::fs::write(
        &csv,
        "to,text\n+4917600000001,\"one, with a comma\"\n+49abc,bad\n",
    )
    .expect("write csv");
    let output = conductor(
        &["--db", &db, "send", "--file", &csv.display().to_string()],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("row 2"));
    let rows = json_lines(&conductor(&["--db", &db, "list", "--json"], ""));
    assert!(rows.is_empty(), "nothing queued from a file with a bad row");

    let lines = "{\"to\": \"+4917600000001\", \"text\": \"a\"}\n{\"to\": \"+4917600000002\", \"text\": \"b\"}\n";
    let output = conductor(&["--db", &db, "send", "--file", "-", "--json"], lines);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        json_lines(&output)[0]["queued"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn mark_read_refuses_what_is_not_an_unread_inbound_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = db_args(&dir);
    conductor(&["--db", &db, "send", "+4917612345678", "out"], "");
    let output = conductor(&["--db", &db, "mark-read", "1"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an unread inbound"));
}

#[test]
fn status_health_and_watch_work_without_a_daemon_and_health_says_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = db_args(&dir);
    conductor(&["--db", &db, "send", "+4917612345678", "x"], "");
    let status = conductor(&["--db", &db, "status"], "");
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("outbound: 1 (1 queued)"));

    let health = conductor(&["--db", &db, "health", "--json"], "");
    assert_eq!(health.status.code(), Some(1), "no modem is ready");
    let report = &json_lines(&health)[0];
    assert_eq!(report["healthy"], false);
    assert_eq!(report["checks"][0]["name"], "database");
    assert_eq!(report["checks"][0]["ok"], true);

    let watch = conductor(&["--db", &db, "watch", "--once"], "");
    assert!(watch.status.success());
    let frame = String::from_utf8_lossy(&watch.stdout);
    assert!(
        frame.contains("MODEMS") && frame.contains("1 queued"),
        "{frame}"
    );
}

#[test]
fn a_broken_config_file_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"database": {"path": "gw.db"}, "modems": [{"id": "a", "device": "/dev/ttyUSB0"}], "outbound": {"duplicate_window": "soon"}}"#,
    )
    .expect("write config");
    let output = conductor(
        &["--config", &config.display().to_string(), "config", "check"],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outbound.duplicate_window"), "{stderr}");

    let init = dir.path().join("new.json");
    let output = conductor(
        &["config", "init", "--path", &init.display().to_string()],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let output = conductor(
        &["--config", &init.display().to_string(), "config", "check"],
        "",
    );
    assert!(output.status.success(), "{output:?}");
}

/// `--modem` names a configured modem's id for every verb but `run`, where it is a device that
/// replaces the config's modems; once it was one global option and `selftest --modem m1`
/// replaced the config's modems with a device called "m1".
#[test]
fn modem_names_a_configured_id_outside_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "database": {"path": dir.path().join("gw.db")},
            "modems": [{"id": "m1", "device": "tcp://127.0.0.1:9"}],
        })
        .to_string(),
    )
    .expect("config");
    let config = config.display().to_string();
    let selftest = conductor(
        &[
            "--config",
            &config,
            "selftest",
            "--modem",
            "m1",
            "--to",
            "+4915112345678",
            "--timeout",
            "1s",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&selftest.stderr);
    let stdout = String::from_utf8_lossy(&selftest.stdout);
    assert!(!stderr.contains("is not configured"), "{stderr}");
    assert!(
        stdout.contains("queued") || stderr.contains("queued"),
        "the self-test queued its message on m1 and waited: {stdout}{stderr}"
    );
    let send = conductor(
        &[
            "--config",
            &config,
            "send",
            "--modem",
            "m1",
            "+4915112345678",
            "hi",
        ],
        "",
    );
    assert!(send.status.success(), "{send:?}");
    let list = conductor(
        &["--config", &config, "list", "--modem", "m1", "--json"],
        "",
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("\"hi\""),
        "{list:?}"
    );
}
