//! Alert episodes and the figures the evaluator reads.

use conductor_store::{ModemId, NewAlert, NewEvent};
use serde_json::json;

use crate::util::{TestDb, at, at_sql};

fn alert(key: &str, secs: i64) -> NewAlert {
    NewAlert {
        key: key.into(),
        kind: "modem_down".into(),
        modem_id: Some(ModemId::from("m1")),
        message: "modem m1 is down".into(),
        detail: Some(json!({"down_for_secs": 120})),
        at: at(secs),
    }
}

#[tokio::test]
async fn an_alert_is_raised_once_and_cleared_once_with_one_event_each() {
    let db = TestDb::new().await;
    let raised = db
        .store
        .raise_alert(alert("modem_down:m1", 0))
        .await
        .expect("raise")
        .expect("newly raised");
    assert_eq!(raised.raised_at.as_str(), at_sql(0));
    assert_eq!(raised.detail, Some(json!({"down_for_secs": 120})));
    // Raised again (this process or another): nothing new.
    assert!(
        db.store
            .raise_alert(alert("modem_down:m1", 5))
            .await
            .expect("raise")
            .is_none()
    );
    let active = db.store.active_alerts().await.expect("active");
    assert_eq!(active, vec![raised.clone()]);

    let cleared = db
        .store
        .clear_alert("modem_down:m1".into(), "modem m1 is ready".into(), at(60))
        .await
        .expect("clear")
        .expect("was active");
    assert_eq!(
        cleared.cleared_at.as_ref().map(|t| t.as_str().to_owned()),
        Some(at_sql(60))
    );
    assert!(
        db.store
            .clear_alert("modem_down:m1".into(), "again".into(), at(61))
            .await
            .expect("clear")
            .is_none()
    );
    assert!(db.store.active_alerts().await.expect("active").is_empty());

    let events = db.store.events_since(0, 100).await.expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["alert_raised", "alert_cleared"]);
    assert_eq!(events[0].modem_id, Some(ModemId::from("m1")));
    assert_eq!(
        events[0].detail.as_ref().and_then(|d| d.get("key")),
        Some(&json!("modem_down:m1"))
    );
    assert_eq!(
        events[1].detail.as_ref().and_then(|d| d.get("why")),
        Some(&json!("modem m1 is ready"))
    );

    // A new episode of the same condition is a new row.
    let again = db
        .store
        .raise_alert(alert("modem_down:m1", 120))
        .await
        .expect("raise")
        .expect("new episode");
    assert_ne!(again.id, raised.id);
}

#[tokio::test]
async fn the_one_active_episode_per_key_holds_for_external_writers_too() {
    let db = TestDb::new().await;
    db.store
        .raise_alert(alert("disk_space", 0))
        .await
        .expect("raise");
    let (ok, _, stderr) = crate::util::sqlite3_raw(
        &db.path,
        "INSERT INTO alerts (key, kind, message, raised_at) VALUES ('disk_space', 'disk_space', 'x', '2024-03-01 12:00:00');",
    );
    assert!(!ok && stderr.contains("UNIQUE"), "{stderr}");
}

#[tokio::test]
async fn the_newest_event_of_several_kinds_is_found() {
    let db = TestDb::new().await;
    assert!(
        db.store
            .latest_event(vec!["backup_completed".into(), "backup_failed".into()])
            .await
            .expect("latest")
            .is_none()
    );
    for (secs, kind) in [
        (0, "backup_completed"),
        (10, "backup_failed"),
        (20, "received"),
    ] {
        db.store
            .append_event(NewEvent {
                at: at(secs),
                kind: kind.into(),
                message_id: None,
                modem_id: None,
                detail: Some(json!({"error": "disk full"})),
            })
            .await
            .expect("event");
    }
    let newest = db
        .store
        .latest_event(vec!["backup_completed".into(), "backup_failed".into()])
        .await
        .expect("latest")
        .expect("found");
    assert_eq!(newest.kind, "backup_failed");
    assert_eq!(newest.at.as_str(), at_sql(10));
    assert_eq!(db.store.journal_mode().await.expect("mode"), "wal");
}

#[tokio::test]
async fn the_backlog_and_outcomes_count_what_is_due_and_what_finished_in_the_window() {
    let db = TestDb::new().await;
    db.sql(&format!(
        "INSERT INTO messages (phone_number, status, direction, created_at, updated_at, send_at, next_attempt_at, sent_at)
         VALUES ('+1', 'queued', 'outbound', '{a0}', '{a0}', NULL, NULL, NULL),
                ('+1', 'queued', 'outbound', '{a0}', '{a0}', '{a100}', NULL, NULL),
                ('+1', 'queued', 'outbound', '{a0}', '{a0}', NULL, '{a500}', NULL),
                ('+1', 'sent', 'outbound', '{a0}', '{a200}', NULL, NULL, '{a200}'),
                ('+1', 'delivered', 'outbound', '{a0}', '{a300}', NULL, NULL, '{a10}'),
                ('+1', 'failed', 'outbound', '{a0}', '{a250}', NULL, NULL, NULL);",
        a0 = at_sql(0),
        a10 = at_sql(10),
        a100 = at_sql(100),
        a200 = at_sql(200),
        a250 = at_sql(250),
        a300 = at_sql(300),
        a500 = at_sql(500),
    ));
    let backlog = db
        .store
        .queue_backlog(at(400), at(150))
        .await
        .expect("backlog");
    // The third row's retry is not due yet; the second has waited since its send_at.
    assert_eq!(backlog.due, 2);
    assert_eq!(backlog.oldest_due_since.map(|t| t.0), Some(at_sql(0)));
    // The delivered row was sent before the window: only the sent and failed rows count.
    assert_eq!(backlog.last_progress.map(|t| t.0), Some(at_sql(250)));
    let none = db
        .store
        .queue_backlog(at(400), at(260))
        .await
        .expect("backlog");
    assert_eq!(none.last_progress, None);

    let outcomes = db.store.send_outcomes(at(150)).await.expect("outcomes");
    assert_eq!((outcomes.total, outcomes.failed), (2, 1));
    let outcomes = db.store.send_outcomes(at(0)).await.expect("outcomes");
    assert_eq!((outcomes.total, outcomes.failed), (3, 1));
}
