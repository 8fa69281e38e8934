//! Backups, restore and retention end to end (issue #8): the real `conductor` binary, a
//! daemon on a virtual modem, external writers with their own connections, and the files the
//! commands leave behind. Every wait polls with a deadline.

use crate::support::{
    Control, DaemonProcess, VirtualModemProcess, conductor, open_db, poll, write_config,
};
use rusqlite::Connection;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(50);

/// A sim, a config and a database in one temp folder; the daemon when started.
struct Setup {
    // Declared first so it is killed first.
    daemon: Option<DaemonProcess>,
    sim: VirtualModemProcess,
    db: PathBuf,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(extra: Value) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("conductor.db");
        let config = dir.path().join("config.json");
        let sim = VirtualModemProcess::start_with_control(&[]);
        let mut file = json!({
            "database": {"path": db},
            "modems": [{"id": "m1", "device": sim.device()}],
            "inbound": {"sweep_interval": "1s"},
            "http": {"enabled": false},
        });
        if let (Some(file), Some(extra)) = (file.as_object_mut(), extra.as_object()) {
            file.extend(extra.clone());
        }
        write_config(&config, &file);
        Self {
            daemon: None,
            sim,
            log: dir.path().join("daemon.log"),
            db,
            config,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the daemon and waits until its modem is ready.
    fn start(&mut self) {
        self.daemon = Some(DaemonProcess::start(&self.config, &self.log));
        poll(Duration::from_secs(20), POLL, || {
            let state: Option<String> = Connection::open(&self.db)
                .and_then(|c| {
                    c.query_row(
                        "SELECT state FROM modem_status WHERE modem_id = 'm1'",
                        [],
                        |r| r.get(0),
                    )
                })
                .ok();
            match state.as_deref() {
                Some("ready") => Ok(()),
                other => Err(format!("modem state {other:?}")),
            }
        })
        .unwrap_or_else(|seen| panic!("the modem never became ready ({seen}):\n{}", self.log()));
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let mut daemon = self.daemon.take().expect("a daemon runs");
        let status = daemon
            .terminate(Duration::from_secs(20))
            .expect("the daemon exits within 20 s of SIGTERM");
        assert!(status.success(), "the daemon exited with {status}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `conductor --config CONFIG ARGS...`.
    fn conductor(&self, args: &[&str]) -> Output {
        let config = self.config.to_string_lossy().into_owned();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        conductor(&all, "")
    }
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

/// Runs `conductor ARGS`, expects success, and parses its stdout as one JSON value.
fn json_ok(setup: &Setup, args: &[&str]) -> Value {
    let output = setup.conductor(args);
    assert!(
        output.status.success(),
        "conductor {args:?} failed: {}\n{}",
        text(&output.stderr),
        text(&output.stdout)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", text(&output.stdout)))
}

/// Every `(id, direction, phone_number, content)` in `db`.
fn rows(c: &Connection) -> BTreeSet<(i64, String, String, String)> {
    c.prepare("SELECT id, direction, phone_number, content FROM messages")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect::<Result<BTreeSet<_>, _>>())
        })
        .expect("read the messages")
}

fn integrity(db: &Path) -> String {
    Connection::open(db)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)))
        .expect("integrity_check runs")
}

/// The details of every `kind` event in `db`, oldest first.
fn event_details(db: &Path, kind: &str) -> Vec<Value> {
    let c = open_db(db);
    c.prepare("SELECT detail FROM events WHERE kind = ?1 ORDER BY id")
        .and_then(|mut s| {
            s.query_map([kind], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        })
        .expect("read events")
        .iter()
        .map(|d| serde_json::from_str(d).expect("event detail is JSON"))
        .collect()
}

/// An external writer thread: inserts queued rows, marks received ones read and injects
/// inbound SMS through the sim, until stopped; counts its commits in `commits`.
fn busy_writer(
    db: PathBuf,
    mut control: Control,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c = open_db(&db);
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            c.execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction)
                 VALUES (?1, ?2, datetime('now'), 'queued', 'outbound')",
                [
                    format!("+1555000{:04}", i % 10_000),
                    format!("external {i}"),
                ],
            )
            .expect("the external insert never sees 'database is locked'");
            c.execute(
                "UPDATE messages SET status = 'read' WHERE direction = 'inbound' AND status = 'unread'",
                [],
            )
            .expect("the external update never sees 'database is locked'");
            commits.fetch_add(2, Ordering::SeqCst);
            if i.is_multiple_of(40) {
                control.inject("+4915550001", &format!("inbound {i}"));
            }
            // Paced like a busy integration (about 200 rows a second), not a flood that keeps
            // the one modem reading inbound messages and never sending.
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn a_backup_taken_while_the_daemon_and_an_external_writer_work_restores_every_earlier_row() {
    let mut setup = Setup::new(json!({}));
    setup.start();
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = busy_writer(
        setup.db.clone(),
        setup.sim.control(),
        Arc::clone(&stop),
        Arc::clone(&commits),
    );
    // Let traffic build up: the daemon sends the queued rows and stores the injected ones.
    poll(Duration::from_secs(20), POLL, || {
        let c = open_db(&setup.db);
        let sent: i64 = c
            .query_row(
                "SELECT count(*) FROM messages WHERE status IN ('sent', 'delivered')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        let inbound: i64 = c
            .query_row(
                "SELECT count(*) FROM messages WHERE direction = 'inbound'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if sent >= 20 && inbound >= 5 {
            Ok(())
        } else {
            Err(format!("{sent} sent, {inbound} inbound"))
        }
    })
    .unwrap_or_else(|seen| panic!("no traffic ({seen}):\n{}", setup.log()));

    // Everything committed before the backup begins.
    let before = rows(&open_db(&setup.db));
    let commits_before = commits.load(Ordering::SeqCst);
    let backups = setup.path("backups");
    let backups_arg = backups.to_string_lossy().into_owned();
    let outcome = json_ok(&setup, &["backup", "--to", &backups_arg, "--json"]);
    let during = commits.load(Ordering::SeqCst) - commits_before;
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the external writer never failed");
    assert!(
        during > 0,
        "the external writer kept committing during the backup"
    );

    let file = PathBuf::from(outcome["file"].as_str().expect("file in the JSON"));
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        name.starts_with("conductor-") && name.ends_with("Z.db.gz"),
        "named by UTC date and time: {name}"
    );
    assert_eq!(file.parent(), Some(backups.as_path()));
    let completed = event_details(&setup.db, "backup_completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["file"], outcome["file"]);
    assert_eq!(completed[0]["trigger"], "cli");

    // Restored elsewhere (the daemon still runs on the original): sound and complete.
    let restored = setup.path("restored.db");
    let restored_arg = restored.to_string_lossy().into_owned();
    let file_arg = file.to_string_lossy().into_owned();
    let output = setup.conductor(&["--db", &restored_arg, "restore", &file_arg]);
    assert!(
        output.status.success(),
        "restore failed: {}",
        text(&output.stderr)
    );
    assert_eq!(integrity(&restored), "ok");
    let after = rows(&open_db(&restored));
    let missing: Vec<_> = before.difference(&after).collect();
    assert!(
        missing.is_empty(),
        "{} rows committed before the backup are missing from it, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // The restored file is a database conductor opens and reads.
    let status = setup.conductor(&["--db", &restored_arg, "status", "--json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
}

#[test]
fn restore_refuses_while_the_daemon_runs_and_succeeds_after_it_stops() {
    let mut setup = Setup::new(json!({}));
    setup.start();
    let backups = setup.path("backups").to_string_lossy().into_owned();
    let outcome = json_ok(&setup, &["backup", "--to", &backups, "--json"]);
    let file = outcome["file"].as_str().expect("file").to_owned();
    // A row committed after the backup: a restore takes the database back to before it.
    let c = open_db(&setup.db);
    c.execute(
        "INSERT INTO messages (phone_number, content, status, direction)
         VALUES ('+15550100', 'after the backup', 'read', 'inbound')",
        [],
    )
    .expect("insert");
    drop(c);

    let refused = setup.conductor(&["restore", &file]);
    let stderr = text(&refused.stderr);
    assert!(
        !refused.status.success(),
        "restore went ahead under a running daemon"
    );
    assert!(
        stderr.contains("in use by a running conductor daemon") && stderr.contains("stop it first"),
        "{stderr}"
    );
    let marker = |db: &Path| -> i64 {
        open_db(db)
            .query_row(
                "SELECT count(*) FROM messages WHERE content = 'after the backup'",
                [],
                |r| r.get(0),
            )
            .expect("count")
    };
    assert_eq!(marker(&setup.db), 1, "the refused restore changed nothing");
    assert!(setup.daemon.as_mut().is_some_and(DaemonProcess::running));

    setup.stop();
    let output = setup.conductor(&["restore", &file]);
    assert!(
        output.status.success(),
        "restore failed: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("integrity check ok"), "{stdout}");
    assert_eq!(integrity(&setup.db), "ok");
    assert_eq!(marker(&setup.db), 0, "the database is the backup's again");
    let kept: Vec<PathBuf> = std::fs::read_dir(setup.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("conductor.db.pre-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced database is kept aside");
    assert_eq!(marker(&kept[0]), 1);

    // The daemon runs on the restored database.
    setup.start();
}

/// Inserts a message with one part and one event, created and changed at `when`.
fn insert(c: &Connection, direction: &str, status: &str, when: &str, on_sim: bool) -> i64 {
    c.execute(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, created_at,
             updated_at)
         VALUES ('+15550123', ?1, ?2, ?3, ?4, ?2, ?2)",
        rusqlite::params![
            format!("{direction} {status} {when}"),
            when,
            status,
            direction
        ],
    )
    .expect("insert message");
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO message_parts (message_id, direction, seq, total, text, modem_id, sim_slot)
         VALUES (?1, ?2, 1, 1, 'x', 'm1', ?3)",
        rusqlite::params![id, direction, on_sim.then_some(4)],
    )
    .expect("insert part");
    c.execute(
        "INSERT INTO events (at, kind, message_id) VALUES (?1, 'test', ?2)",
        rusqlite::params![when, id],
    )
    .expect("insert event");
    id
}

/// A dump of the three tables retention touches, to compare before and after.
fn dump(db: &Path) -> Vec<String> {
    let c = open_db(db);
    let mut out = Vec::new();
    for sql in [
        "SELECT id || status || updated_at FROM messages ORDER BY id",
        "SELECT id || ifnull(message_id, '') FROM message_parts ORDER BY id",
        "SELECT id || kind FROM events ORDER BY id",
    ] {
        let mut s = c.prepare(sql).expect("prepare");
        let lines = s
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .expect("dump");
        out.extend(lines);
    }
    out
}

#[test]
fn prune_removes_exactly_what_the_rules_name_exports_it_first_and_a_dry_run_changes_nothing() {
    let setup = Setup::new(json!({
        "retention": {
            "export_dir": "archive",
            "rules": [
                {"direction": "inbound", "statuses": ["read"], "older_than": "30d"},
                {"direction": "outbound", "statuses": ["delivered", "failed"], "older_than": "30d"},
            ],
        },
    }));
    // Creates the schema (no daemon needed: prune works on the database alone).
    let created = setup.conductor(&["status"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let c = open_db(&setup.db);
    let old = "2020-01-01 00:00:00";
    let now: String = c
        .query_row("SELECT datetime('now')", [], |r| r.get(0))
        .expect("now");
    let removed = BTreeSet::from([
        insert(&c, "inbound", "read", old, false),
        insert(&c, "inbound", "read", old, false),
        insert(&c, "outbound", "delivered", old, false),
        insert(&c, "outbound", "failed", old, false),
    ]);
    let kept = BTreeSet::from([
        insert(&c, "inbound", "unread", old, false),
        insert(&c, "outbound", "queued", old, false),
        insert(&c, "outbound", "sent", old, false),
        insert(&c, "inbound", "read", &now, false),
        insert(&c, "inbound", "read", old, true),
    ]);
    drop(c);

    let before = dump(&setup.db);
    let plan = json_ok(&setup, &["prune", "--dry-run", "--json"]);
    assert_eq!(plan["would_delete"], 4, "{plan}");
    assert_eq!(
        plan["counts"],
        json!([
            {"direction": "inbound", "status": "read", "count": 2},
            {"direction": "outbound", "status": "delivered", "count": 1},
            {"direction": "outbound", "status": "failed", "count": 1},
        ])
    );
    assert_eq!(dump(&setup.db), before, "a dry run changes nothing");
    assert!(
        !setup.path("archive").exists(),
        "a dry run writes no export"
    );
    let text_plan = setup.conductor(&["prune", "--dry-run"]);
    assert!(text(&text_plan.stdout).contains("4 messages would be exported"));

    let outcome = json_ok(&setup, &["prune", "--json"]);
    assert_eq!(outcome["deleted"], 4, "{outcome}");
    assert_eq!(outcome["exported"], 4);
    assert_eq!(outcome["changed"], 0);
    let export = PathBuf::from(outcome["export"].as_str().expect("export file"));
    assert_eq!(export.parent(), Some(setup.path("archive").as_path()));
    let lines: Vec<Value> = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&export).expect("open"),
    ))
    .lines()
    .map(|l| serde_json::from_str(&l.expect("line")).expect("a JSON line"))
    .collect();
    let exported: BTreeSet<i64> = lines
        .iter()
        .map(|l| l["message"]["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        exported, removed,
        "the export holds exactly the removed rows"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["parts"].as_array().is_some_and(|p| p.len() == 1)
                && l["history"].as_array().is_some_and(|h| h.len() == 1))
    );

    let c = open_db(&setup.db);
    let left: BTreeSet<i64> = rows(&c).into_iter().map(|r| r.0).collect();
    assert_eq!(left, kept, "exactly the named rows are gone");
    let orphans: i64 = c
        .query_row(
            "SELECT (SELECT count(*) FROM message_parts WHERE message_id NOT IN (SELECT id FROM messages))
                  + (SELECT count(*) FROM events WHERE kind = 'test'
                     AND message_id NOT IN (SELECT id FROM messages))",
            [],
            |r| r.get(0),
        )
        .expect("orphans");
    assert_eq!(orphans, 0, "parts and history went with their messages");
    let recorded = event_details(&setup.db, "retention_completed");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["deleted"], 4);

    // Nothing is left to remove: a second run exports nothing and deletes nothing.
    let again = json_ok(&setup, &["prune", "--json"]);
    assert_eq!(again["deleted"], 0);
    assert_eq!(again["export"], Value::Null);
}

#[test]
fn a_rule_naming_unread_or_queued_is_refused_before_anything_runs() {
    let setup = Setup::new(json!({
        "retention": {"rules": [{"direction": "outbound", "statuses": ["failed", "queued"], "older_than": "1d"}]},
    }));
    let output = setup.conductor(&["prune", "--dry-run"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("retention.rules[0].statuses") && stderr.contains("queued"),
        "{stderr}"
    );
    assert!(!setup.db.exists(), "nothing was opened");
}
