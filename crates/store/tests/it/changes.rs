//! Noticing external commits cheaply (`PRAGMA data_version`).

use std::time::Duration;

use conductor_store::NewOutbound;

use crate::util::{TestDb, at};

fn outbound() -> NewOutbound {
    NewOutbound {
        to: "+4917000001".into(),
        text: "own".into(),
        modem_id: None,
        source: "cli".into(),
        allow_duplicate: false,
        status_report: None,
        send_at: None,
        priority: 0,
        expires_at: None,
        transactional: false,
    }
}

#[tokio::test]
async fn data_version_notices_an_external_insert_but_not_the_store_s_own_writes() {
    let db = TestDb::new().await;
    let before = db.store.data_version().await.expect("version");
    db.store
        .queue_outbound(outbound(), at(0))
        .await
        .expect("queue");
    assert_eq!(db.store.data_version().await.expect("version"), before);
    db.sql("INSERT INTO messages (phone_number, content) VALUES ('+4917000002', 'ext');");
    assert_ne!(db.store.data_version().await.expect("version"), before);
}

#[tokio::test]
async fn the_change_watcher_wakes_within_a_second_of_an_external_commit() {
    let db = TestDb::new().await;
    let mut watcher = db
        .store
        .watch_external_changes(Duration::from_millis(250))
        .await
        .expect("watcher");
    assert!(!watcher.poll().await.expect("poll"), "nothing happened yet");
    db.store
        .queue_outbound(outbound(), at(0))
        .await
        .expect("own write");
    assert!(
        !watcher.poll().await.expect("poll"),
        "own writes do not count"
    );

    let path = db.path.clone();
    let external = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(100));
        crate::util::sqlite3(
            &path,
            "UPDATE messages SET content='changed elsewhere' WHERE id=1;",
        );
    });
    tokio::time::timeout(Duration::from_secs(1), watcher.changed())
        .await
        .expect("noticed within a second")
        .expect("watch");
    external.await.expect("external writer");
}
