//! Migrations, the SQL contract from another process, and the `updated_at` trigger.

use conductor_store::{
    Direction, ListFilter, SCHEMA_VERSION, Status, Store, StoreError, StoreOptions,
};

use crate::util::{TestDb, at, at_sql, claim, param_text, sms, sqlite3, sqlite3_raw};

#[tokio::test]
async fn a_new_database_is_migrated_and_opening_it_again_changes_nothing() {
    let db = TestDb::new().await;
    let version = db.sql("PRAGMA user_version;");
    assert_eq!(version.trim(), SCHEMA_VERSION.to_string());
    assert_eq!(
        db.sql("SELECT count(*) FROM schema_migrations;").trim(),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(db.sql("PRAGMA journal_mode;").trim(), "wal");
    // A second store on the same file (the CLI beside the daemon) and a reopen are no-ops.
    let second = Store::open_sqlite(&db.path, StoreOptions::default())
        .await
        .expect("second open");
    drop(second);
    let tables_before = db.sql("SELECT group_concat(name) FROM sqlite_schema;");
    let again = Store::open_sqlite(&db.path, StoreOptions::default())
        .await
        .expect("reopen");
    assert_eq!(
        db.sql("SELECT group_concat(name) FROM sqlite_schema;"),
        tables_before
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM schema_migrations;").trim(),
        SCHEMA_VERSION.to_string()
    );
    for table in [
        "messages",
        "message_parts",
        "delivery_reports",
        "modem_status",
        "events",
    ] {
        assert!(
            tables_before.contains(table),
            "{table} missing: {tables_before}"
        );
    }
    drop(again);
}

#[tokio::test]
async fn a_database_from_a_newer_conductor_is_refused() {
    let db = TestDb::new().await;
    db.sql("PRAGMA user_version = 99;");
    let err = Store::open_sqlite(&db.path, StoreOptions::default())
        .await
        .expect_err("newer schema refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade conductor"), "{err}");
}

#[tokio::test]
async fn a_messages_table_conductor_did_not_create_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("prototype.db");
    sqlite3(
        &path,
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, phone_number TEXT);",
    );
    let err = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .expect_err("foreign schema refused");
    assert!(matches!(err, StoreError::ForeignSchema { .. }), "{err}");
    assert!(err.to_string().contains("move the file aside"), "{err}");
}

#[tokio::test]
async fn a_missing_directory_gives_an_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-such-dir").join("conductor.db");
    let err = Store::open_sqlite(&path, StoreOptions::default())
        .await
        .expect_err("cannot open");
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[tokio::test]
async fn database_urls_pick_the_backend_and_refuse_what_is_not_built() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    Store::open_url(&url, StoreOptions::default())
        .await
        .expect("sqlite url opens");
    let err = Store::open_url("postgres://localhost/conductor", StoreOptions::default())
        .await
        .expect_err("no postgres yet");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}

#[tokio::test]
async fn the_contract_statements_work_unchanged_from_the_sqlite3_shell_while_the_store_writes() {
    let db = TestDb::new().await;
    // The daemon keeps writing inbound rows while the other process works.
    let writer = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for i in 0..200u32 {
                store
                    .store_inbound_single(sms(
                        i,
                        "+4915112345678",
                        &format!("in {i}"),
                        i64::from(i),
                    ))
                    .await
                    .expect("store inbound");
            }
        })
    };
    let mut script = String::new();
    script.push_str(&param_text("+4917612345678"));
    script.push_str(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction)\n\
         VALUES (?, 'Auto-reply', datetime('now'), 'queued', 'outbound');\n",
    );
    script.push_str(
        "SELECT * FROM messages WHERE status='unread' AND direction='inbound'\n\
         ORDER BY timestamp DESC LIMIT 10;\n",
    );
    db.sql(&script);
    writer.await.expect("writer task");
    let unread = db.sql(
        "SELECT * FROM messages WHERE status='unread' AND direction='inbound'\n\
         ORDER BY timestamp DESC LIMIT 10;",
    );
    assert_eq!(unread.lines().count(), 10, "{unread}");
    let first_unread = db.sql(
        "SELECT id FROM messages WHERE status='unread' AND direction='inbound' ORDER BY id LIMIT 1;",
    );
    db.sql(&format!(
        ".parameter set ?1 {}\nUPDATE messages SET status='read' WHERE id=?;",
        first_unread.trim()
    ));
    let read = db
        .store
        .list(ListFilter {
            status: Some(Status::Read),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(read.len(), 1);

    // The row the shell queued is claimed like any other.
    let claimed = db.store.claim_due(claim(0, &["m1"])).await.expect("claim");
    assert_eq!(claimed.jobs.len(), 1, "{claimed:?}");
    assert_eq!(claimed.jobs[0].to, "+4917612345678");
    assert_eq!(claimed.jobs[0].text, "Auto-reply");
    let message = db
        .store
        .message(claimed.jobs[0].id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(message.message.source, "sql");
    assert_eq!(message.message.direction, Direction::Outbound);
    assert_eq!(message.message.status, Status::Sending);
}

#[tokio::test]
async fn updated_at_moves_on_an_external_update_and_keeps_the_daemon_clock_otherwise() {
    let db = TestDb::new().await;
    let stored = db
        .store
        .store_inbound_single(sms(1, "+4915112345678", "hello", 0))
        .await
        .expect("store");
    let id = stored.id.0;
    let row = |db: &TestDb| {
        db.sql(&format!(
            "SELECT updated_at, revision FROM messages WHERE id={id};"
        ))
    };
    assert_eq!(row(&db).trim(), format!("{}|0", at_sql(0)));

    // Another process updates without touching updated_at: the trigger moves it to its now.
    db.sql(&format!(
        ".parameter set ?1 {id}\nUPDATE messages SET status='read' WHERE id=?;"
    ));
    let after = row(&db);
    let (updated_at, revision) = after.trim().split_once('|').expect("two columns");
    assert_ne!(updated_at, at_sql(0), "trigger did not fire");
    let wall = jiff::Timestamp::now();
    let parsed = conductor_store::SqlTime(updated_at.to_owned())
        .timestamp()
        .expect("contract form");
    assert!(
        (wall.as_second() - parsed.as_second()).abs() < 60,
        "{updated_at} vs {wall}"
    );
    assert_eq!(revision, "1");

    // A writer that sets updated_at itself keeps its value.
    db.sql(&format!(
        "UPDATE messages SET content='x', updated_at='2030-01-01 00:00:00' WHERE id={id};"
    ));
    assert!(row(&db).starts_with("2030-01-01 00:00:00|"));

    // The daemon's own writes carry the daemon's clock, also within the same second.
    db.sql(&format!(
        "UPDATE messages SET status='unread' WHERE id={id};"
    ));
    db.store
        .mark_read(vec![stored.id], at(5))
        .await
        .expect("mark read");
    assert!(
        row(&db).starts_with(&format!("{}|", at_sql(5))),
        "{}",
        row(&db)
    );
}

#[tokio::test]
async fn an_external_typo_in_status_or_direction_gets_a_clear_error() {
    let db = TestDb::new().await;
    let (ok, _, stderr) = sqlite3_raw(
        &db.path,
        "INSERT INTO messages (phone_number, content, status, direction) \
         VALUES ('+491', 'x', 'qeued', 'outbound');",
    );
    assert!(!ok);
    assert!(stderr.contains("CHECK constraint failed"), "{stderr}");
    let (ok, _, stderr) = sqlite3_raw(
        &db.path,
        "INSERT INTO messages (phone_number, content, status, direction) \
         VALUES ('+491', 'x', 'queued', 'out');",
    );
    assert!(!ok);
    assert!(stderr.contains("CHECK constraint failed"), "{stderr}");
}

#[tokio::test]
async fn a_minimal_external_insert_gets_every_default_and_a_normalised_number() {
    let db = TestDb::new().await;
    db.sql("INSERT INTO messages (phone_number, content) VALUES ('0049 176-123 45678', 'hi');");
    let row = db.sql(
        "SELECT status, direction, source, allow_duplicate, attempts, parts_total, incomplete, \
         number_key, status_report IS NULL FROM messages;",
    );
    assert_eq!(row.trim(), "queued|outbound|sql|0|0|1|0|+4917612345678|1");
}
