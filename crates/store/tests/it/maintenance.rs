//! Online backups and retention on real files, with external writers committing meanwhile.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conductor_store::{
    BackupOptions, Direction, MaintenanceError, MessageId, RetentionRule, Status,
    verify_database_file,
};
use rusqlite::Connection;

use crate::util::{TestDb, at};

fn external(path: &Path) -> Connection {
    let c = Connection::open(path).expect("external connection");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c
}

fn ids(c: &Connection, sql: &str) -> Vec<i64> {
    c.prepare(sql)
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
        })
        .expect("query ids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_others_commit_is_one_sound_snapshot_with_every_earlier_row() {
    let db = TestDb::new().await;
    let c = external(&db.path);
    // Enough rows for many one-page steps.
    c.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO messages (phone_number, content, status, direction)
         SELECT '+4917600000', printf('before %d %s', i, hex(randomblob(40))), 'read', 'inbound'
         FROM n;",
    )
    .expect("rows before the backup");
    let before = ids(&c, "SELECT id FROM messages ORDER BY id");

    // Writers keep inserting and updating while the backup runs, step by step.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (db.path.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let c = external(&path);
            let mut commits = 0u32;
            while !stop.load(Ordering::SeqCst) {
                c.execute(
                    "INSERT INTO messages (phone_number, content, status, direction)
                     VALUES ('+4917611111', 'during', 'queued', 'outbound')",
                    [],
                )
                .expect("insert during the backup");
                c.execute(
                    "UPDATE messages SET content = content || '.' WHERE id = (SELECT min(id) FROM messages)",
                    [],
                )
                .expect("update during the backup");
                commits += 2;
            }
            commits
        })
    };
    let dest = db._dir.path().join("copy.db");
    let options = BackupOptions {
        pages_per_step: 1,
        pause: Duration::from_millis(1),
        max_busy_retries: 100,
    };
    let stats = db
        .store
        .backup_to(dest.clone(), options)
        .await
        .expect("backup");
    stop.store(true, Ordering::SeqCst);
    let commits = writer.join().expect("writer thread");
    assert!(stats.steps > 10, "the copy went in steps: {stats:?}");
    assert!(commits > 0, "the writers were never blocked out");

    let verified = verify_database_file(&dest).expect("the copy passes the integrity check");
    let copy = Connection::open(&dest).expect("open the copy");
    let copied = ids(
        &copy,
        "SELECT id FROM messages WHERE content LIKE 'before%' ORDER BY id",
    );
    assert_eq!(
        copied, before,
        "every row committed before the backup is in it"
    );
    assert!(verified.messages >= before.len() as u64);
    let mode: String = copy
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete", "a backup is one self-contained file");
}

#[tokio::test]
async fn a_backup_never_overwrites_and_a_damaged_or_foreign_file_fails_verification() {
    let db = TestDb::new().await;
    let dest = db._dir.path().join("exists.db");
    std::fs::write(&dest, b"keep me").expect("write");
    let error = db
        .store
        .backup_to(dest.clone(), BackupOptions::default())
        .await
        .expect_err("exists");
    assert!(
        matches!(error, MaintenanceError::DestinationExists { .. }),
        "{error}"
    );
    assert_eq!(std::fs::read(&dest).expect("read"), b"keep me");

    let garbage = db._dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).expect("write");
    let error = verify_database_file(&garbage).expect_err("garbage");
    assert!(
        matches!(error, MaintenanceError::Integrity { .. }),
        "{error}"
    );

    let foreign = db._dir.path().join("foreign.db");
    Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE notes (x TEXT);"))
        .expect("foreign database");
    let error = verify_database_file(&foreign).expect_err("foreign");
    assert!(
        matches!(error, MaintenanceError::NotConductor { .. }),
        "{error}"
    );

    // A backup whose pages were damaged after it was written.
    let good = db._dir.path().join("good.db");
    db.store
        .backup_to(good.clone(), BackupOptions::default())
        .await
        .expect("backup");
    let mut bytes = std::fs::read(&good).expect("read");
    let page = 4096;
    for b in bytes.iter_mut().skip(page + 8).take(page - 16) {
        *b = 0xff;
    }
    std::fs::write(&good, bytes).expect("damage");
    assert!(verify_database_file(&good).is_err(), "damage is found");
}

/// Inserts a message with a part, a delivery report and an event; returns its id.
fn message(c: &Connection, direction: &str, status: &str, created: &str, updated: &str) -> i64 {
    c.execute(
        "INSERT INTO messages (phone_number, content, status, direction, created_at, updated_at)
         VALUES ('+4917622222', ?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            format!("{direction} {status} {created}"),
            status,
            direction,
            created,
            updated
        ],
    )
    .expect("insert message");
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO message_parts (message_id, direction, seq, total, text) VALUES (?1, ?2, 1, 1, 'x')",
        rusqlite::params![id, direction],
    )
    .expect("insert part");
    c.execute(
        "INSERT INTO delivery_reports (received_at, modem_id, message_ref, recipient, status_code,
             category, message_id)
         VALUES (?1, 'm1', 7, '+4917622222', 0, 'delivered', ?2)",
        rusqlite::params![created, id],
    )
    .expect("insert report");
    c.execute(
        "INSERT INTO events (at, kind, message_id) VALUES (?1, 'test', ?2)",
        rusqlite::params![created, id],
    )
    .expect("insert event");
    id
}

fn count(c: &Connection, sql: &str, id: i64) -> i64 {
    c.query_row(sql, [id], |r| r.get(0)).expect("count")
}

#[tokio::test]
async fn retention_removes_exactly_what_its_rules_name_with_parts_reports_and_history() {
    let db = TestDb::new().await;
    let c = external(&db.path);
    let (old, new) = ("2023-01-01 00:00:00", "2024-02-28 00:00:00");
    let read_old = message(&c, "inbound", "read", old, old);
    let unread_old = message(&c, "inbound", "unread", old, old);
    let read_new = message(&c, "inbound", "read", new, new);
    let read_touched = message(&c, "inbound", "read", old, new);
    let read_on_sim = message(&c, "inbound", "read", old, old);
    c.execute(
        "UPDATE message_parts SET sim_slot = 3, modem_id = 'm1' WHERE message_id = ?1",
        [read_on_sim],
    )
    .expect("on the SIM");
    let delivered_old = message(&c, "outbound", "delivered", old, old);
    let failed_old = message(&c, "outbound", "failed", old, old);
    let queued_old = message(&c, "outbound", "queued", old, old);
    let sent_old = message(&c, "outbound", "sent", old, old);
    let unrelated_event: i64 = {
        c.execute(
            "INSERT INTO events (at, kind) VALUES (?1, 'modem_down')",
            [old],
        )
        .expect("event");
        c.last_insert_rowid()
    };

    let cutoff = at(0) - jiff::SignedDuration::from_hours(24 * 30);
    let rules = vec![
        RetentionRule::new(Direction::Inbound, vec![Status::Read], cutoff).expect("rule"),
        RetentionRule::new(
            Direction::Outbound,
            vec![Status::Delivered, Status::Failed],
            cutoff,
        )
        .expect("rule"),
    ];
    let candidates = db
        .store
        .retention_candidates(rules)
        .await
        .expect("candidates");
    let named: Vec<i64> = candidates.iter().map(|c| c.id.0).collect();
    assert_eq!(named, vec![read_old, delivered_old, failed_old]);

    let details = db
        .store
        .message_details(candidates.iter().map(|c| c.id).collect())
        .await
        .expect("details");
    assert_eq!(details.len(), 3);
    assert!(
        details
            .iter()
            .all(|d| d.parts.len() == 1 && d.reports.len() == 1 && d.history.len() == 1)
    );

    let done = db.store.delete_retained(candidates).await.expect("delete");
    assert_eq!(
        done.deleted,
        vec![
            MessageId(read_old),
            MessageId(delivered_old),
            MessageId(failed_old)
        ]
    );
    assert_eq!(
        (done.parts, done.reports, done.events, done.changed),
        (3, 3, 3, 0)
    );
    for gone in [read_old, delivered_old, failed_old] {
        assert_eq!(
            count(&c, "SELECT count(*) FROM messages WHERE id = ?1", gone),
            0
        );
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM message_parts WHERE message_id = ?1",
                gone
            ),
            0
        );
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM delivery_reports WHERE message_id = ?1",
                gone
            ),
            0
        );
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM events WHERE message_id = ?1",
                gone
            ),
            0
        );
    }
    for kept in [
        unread_old,
        read_new,
        read_touched,
        read_on_sim,
        queued_old,
        sent_old,
    ] {
        assert_eq!(
            count(&c, "SELECT count(*) FROM messages WHERE id = ?1", kept),
            1
        );
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM message_parts WHERE message_id = ?1",
                kept
            ),
            1
        );
        assert_eq!(
            count(
                &c,
                "SELECT count(*) FROM events WHERE message_id = ?1",
                kept
            ),
            1
        );
    }
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM events WHERE id = ?1",
            unrelated_event
        ),
        1
    );
}

#[tokio::test]
async fn a_row_changed_after_it_was_listed_is_kept() {
    let db = TestDb::new().await;
    let c = external(&db.path);
    let old = "2023-01-01 00:00:00";
    let a = message(&c, "outbound", "failed", old, old);
    let b = message(&c, "outbound", "failed", old, old);
    let cutoff = at(0);
    let rules =
        vec![RetentionRule::new(Direction::Outbound, vec![Status::Failed], cutoff).expect("rule")];
    let candidates = db.store.retention_candidates(rules).await.expect("list");
    assert_eq!(candidates.len(), 2);
    // Someone requeues `b` with the SQL contract between the listing and the delete.
    c.execute("UPDATE messages SET status = 'queued' WHERE id = ?1", [b])
        .expect("requeue");
    let done = db.store.delete_retained(candidates).await.expect("delete");
    assert_eq!(done.deleted, vec![MessageId(a)]);
    assert_eq!(done.changed, 1);
    assert_eq!(
        count(&c, "SELECT count(*) FROM messages WHERE id = ?1", b),
        1
    );
}
