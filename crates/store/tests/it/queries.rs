//! What the CLI reads: totals, list, show, modem status, events.

use conductor_store::{
    Direction, ListFilter, MessageId, ModemState, ModemStatus, NewEvent, NewOutbound, SqlTime,
    Status, StorageUse,
};

use crate::util::{TestDb, at, at_sql, claim, modem, sms};

fn outbound(to: &str, text: &str) -> NewOutbound {
    NewOutbound {
        to: to.into(),
        text: text.into(),
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
async fn totals_list_and_show_report_what_was_recorded() {
    let db = TestDb::new().await;
    for i in 0..3u32 {
        db.store
            .store_inbound_single(sms(
                i,
                "+4915112345678",
                &format!("Hello {i}"),
                i64::from(i),
            ))
            .await
            .expect("inbound");
    }
    let a = db
        .store
        .queue_outbound(outbound("+49 170 1", "Invoice ready"), at(10))
        .await
        .expect("q");
    let b = db
        .store
        .queue_outbound(outbound("+491702", "other"), at(20))
        .await
        .expect("q");
    db.store.claim_due(claim(30, &["m1"])).await.expect("claim");
    db.store.cancel(b, at(31)).await.err();

    let totals = db.store.totals().await.expect("totals");
    let count = |d: Direction, s: Status| {
        totals
            .iter()
            .find(|t| t.direction == d && t.status == s)
            .map_or(0, |t| t.count)
    };
    assert_eq!(count(Direction::Inbound, Status::Unread), 3);
    assert_eq!(count(Direction::Outbound, Status::Sending), 2);

    let by_number = db
        .store
        .list(ListFilter {
            number: Some("00491701".into()),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(by_number.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a]);
    let by_text = db
        .store
        .list(ListFilter {
            text_contains: Some("INVOICE".into()),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(by_text.len(), 1);
    let page = db
        .store
        .list(ListFilter {
            direction: Some(Direction::Inbound),
            limit: 2,
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(page.len(), 2);
    let next = db
        .store
        .list(ListFilter {
            direction: Some(Direction::Inbound),
            before_id: page.last().map(|m| m.id),
            limit: 2,
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(next.len(), 1);
    let window = db
        .store
        .list(ListFilter {
            since: Some(at(10)),
            until: Some(at(15)),
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(window.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a]);

    let detail = db.store.message(a).await.expect("show").expect("exists");
    let kinds: Vec<&str> = detail.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["queued", "claimed"]);
    assert_eq!(detail.history[0].at.as_str(), at_sql(10));
    // RFC 3339 in JSON, as the CLI and API promise.
    let json = serde_json::to_value(&detail.message).expect("json");
    assert_eq!(json["created_at"], "2024-03-01T12:00:10Z");
    assert_eq!(json["status"], "sending");
    assert!(
        db.store
            .message(MessageId(999))
            .await
            .expect("show")
            .is_none()
    );
}

#[tokio::test]
async fn an_odd_value_written_by_hand_still_lists() {
    let db = TestDb::new().await;
    db.sql(
        "INSERT INTO messages (phone_number, content, timestamp, modem_index) \
         VALUES (4917000001, 'x', 1709294400, 'slot seven');",
    );
    let rows = db.store.list(ListFilter::default()).await.expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].phone_number, "4917000001");
    assert_eq!(rows[0].timestamp, SqlTime("1709294400".into()));
    assert_eq!(rows[0].modem_index, None);
}

#[tokio::test]
async fn modem_status_rows_round_trip_with_storage_shown_as_used_of_total() {
    let db = TestDb::new().await;
    let status = ModemStatus {
        modem_id: modem("m1"),
        state: ModemState::Ready,
        last_error: None,
        manufacturer: Some("SIMCOM".into()),
        model: Some("SIM7600".into()),
        firmware: None,
        imei: Some("860000000000001".into()),
        imsi: None,
        iccid: Some("8949000000000000001".into()),
        operator: Some("Telekom.de".into()),
        signal_dbm: Some(-71),
        registration: Some("home".into()),
        storage: vec![StorageUse {
            memory: "SM".into(),
            used: 27,
            total: 30,
        }],
        last_cycle_at: Some(SqlTime::from_timestamp(at(5))),
        updated_at: SqlTime::from_timestamp(at(6)),
    };
    db.store
        .upsert_modem_status(status.clone())
        .await
        .expect("upsert");
    let mut changed = status.clone();
    changed.state = ModemState::Degraded;
    changed.last_error = Some("SIM full (30/30)".into());
    changed.storage[0].used = 30;
    db.store
        .upsert_modem_status(changed.clone())
        .await
        .expect("upsert again");
    let rows = db.store.modem_statuses().await.expect("read");
    assert_eq!(rows, vec![changed]);
    assert_eq!(status.storage[0].display(), "27/30 (90.0 % full)");
}

#[tokio::test]
async fn events_are_appended_and_read_back_in_order() {
    let db = TestDb::new().await;
    let first = db
        .store
        .append_event(NewEvent {
            at: at(0),
            kind: "modem_down".into(),
            message_id: None,
            modem_id: Some(modem("m2")),
            detail: Some(serde_json::json!({ "error": "no such device" })),
        })
        .await
        .expect("append");
    let events = db.store.events_since(first - 1, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "modem_down");
    assert_eq!(
        events[0].detail,
        Some(serde_json::json!({ "error": "no such device" }))
    );
}
