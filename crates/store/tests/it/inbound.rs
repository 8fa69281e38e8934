//! Inbound: fingerprints, reassembly, incomplete messages, undecodable PDUs, SIM lifecycle.

use conductor_store::{
    DeletePolicy, Fingerprint, MessageId, PartOutcome, SimCopyKind, Status, StoredPart,
    UndecodablePdu,
};

use crate::util::{TestDb, at, modem, part, sms};

async fn content(db: &TestDb, id: MessageId) -> conductor_store::Message {
    db.store
        .message(id)
        .await
        .expect("read")
        .expect("message exists")
        .message
}

#[tokio::test]
async fn reading_the_same_sim_copy_twice_stores_one_row() {
    let db = TestDb::new().await;
    let first = db
        .store
        .store_inbound_single(sms(3, "+4915112345678", "hello", 0))
        .await
        .expect("store");
    assert!(first.newly_created);
    let again = db
        .store
        .store_inbound_single(sms(3, "+4915112345678", "hello", 0))
        .await
        .expect("store again");
    assert_eq!(again.id, first.id);
    assert!(!again.newly_created);
    // The same text in another slot is another message.
    let other = db
        .store
        .store_inbound_single(sms(4, "+4915112345678", "hello", 0))
        .await
        .expect("store other slot");
    assert_ne!(other.id, first.id);
    assert_eq!(db.sql("SELECT count(*) FROM messages;").trim(), "2");

    let row = content(&db, first.id).await;
    assert_eq!(row.status, Status::Unread);
    assert_eq!(row.modem_index, Some(3));
    // The SMSC time (13:00 +01:00) in UTC is the contract's timestamp; the original is kept.
    assert_eq!(row.timestamp.as_str(), "2024-03-01 12:00:00");
    assert_eq!(
        row.smsc_timestamp.as_deref(),
        Some("2024-03-01T13:00:00+01:00")
    );
}

#[tokio::test]
async fn a_long_message_arriving_out_of_order_is_stored_once_in_part_order() {
    let db = TestDb::new().await;
    let third = db
        .store
        .store_inbound_part(part(7, 42, 3, 3, "C", 0))
        .await
        .expect("p3");
    assert_eq!(third.outcome, PartOutcome::Waiting { have: 1, total: 3 });
    let first = db
        .store
        .store_inbound_part(part(5, 42, 1, 3, "A", 1))
        .await
        .expect("p1");
    assert_eq!(first.outcome, PartOutcome::Waiting { have: 2, total: 3 });
    // A re-read of a stored part changes nothing.
    let reread = db
        .store
        .store_inbound_part(part(5, 42, 1, 3, "A", 1))
        .await
        .expect("p1 again");
    assert_eq!(reread.outcome, PartOutcome::Duplicate { message_id: None });
    // No half message is visible to the contract's unread query meanwhile.
    assert_eq!(db.sql("SELECT count(*) FROM messages;").trim(), "0");

    let second = db
        .store
        .store_inbound_part(part(6, 42, 2, 3, "B", 2))
        .await
        .expect("p2");
    let PartOutcome::Completed { id } = second.outcome else {
        panic!("expected completion, got {second:?}");
    };
    let row = content(&db, id).await;
    assert_eq!(row.content, "ABC");
    assert_eq!(
        (row.parts_total, row.parts_received, row.incomplete),
        (3, 3, false)
    );
    assert_eq!(row.modem_index, Some(5), "the first part's slot");
    assert_eq!(row.status, Status::Unread);

    let reread = db
        .store
        .store_inbound_part(part(6, 42, 2, 3, "B", 2))
        .await
        .expect("p2 again");
    assert_eq!(
        reread.outcome,
        PartOutcome::Duplicate {
            message_id: Some(id)
        }
    );
    assert_eq!(db.sql("SELECT count(*) FROM messages;").trim(), "1");
}

#[tokio::test]
async fn a_second_copy_of_a_part_does_not_count_twice() {
    let db = TestDb::new().await;
    db.store
        .store_inbound_part(part(1, 9, 1, 2, "A", 0))
        .await
        .expect("p1");
    // The network delivered part 1 again, into another slot.
    let copy = db
        .store
        .store_inbound_part(part(2, 9, 1, 2, "A", 1))
        .await
        .expect("p1 copy");
    assert_eq!(copy.outcome, PartOutcome::Waiting { have: 1, total: 2 });
    let done = db
        .store
        .store_inbound_part(part(3, 9, 2, 2, "B", 2))
        .await
        .expect("p2");
    let PartOutcome::Completed { id } = done.outcome else {
        panic!("expected completion, got {done:?}");
    };
    assert_eq!(content(&db, id).await.content, "AB");
    // Both copies of part 1 belong to the message, so both are deleted from the SIM with it.
    let due = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnStore)
        .await
        .expect("due");
    assert_eq!(due.len(), 3);
}

#[tokio::test]
async fn an_incomplete_message_is_flushed_flagged_and_completed_by_a_late_part() {
    let db = TestDb::new().await;
    db.store
        .store_inbound_part(part(1, 7, 1, 3, "Hello ", 0))
        .await
        .expect("p1");
    db.store
        .store_inbound_part(part(3, 7, 3, 3, "!", 5))
        .await
        .expect("p3");
    // Not yet old enough.
    let none = db
        .store
        .flush_incomplete(at(-1), at(10))
        .await
        .expect("flush");
    assert!(none.is_empty());
    let flushed = db
        .store
        .flush_incomplete(at(0), at(600))
        .await
        .expect("flush");
    assert_eq!(flushed.len(), 1);
    let id = flushed[0];
    let row = content(&db, id).await;
    assert!(row.incomplete);
    assert_eq!(row.content, "Hello […]!");
    assert_eq!(row.parts_received, 2);
    assert!(
        row.reason
            .as_deref()
            .unwrap_or("")
            .contains("part(s) 2 of 3"),
        "{:?}",
        row.reason
    );
    assert_eq!(row.status, Status::Unread);
    assert_eq!(row.created_at.as_str(), crate::util::at_sql(600));

    let late = db
        .store
        .store_inbound_part(part(2, 7, 2, 3, "world", 700))
        .await
        .expect("p2");
    assert_eq!(late.outcome, PartOutcome::CompletedLate { id });
    let row = content(&db, id).await;
    assert!(!row.incomplete);
    assert_eq!(row.content, "Hello world!");
    assert_eq!(row.reason, None);
    assert_eq!(db.sql("SELECT count(*) FROM messages;").trim(), "1");
}

#[tokio::test]
async fn a_reused_reference_with_new_text_stores_the_old_group_first() {
    let db = TestDb::new().await;
    db.store
        .store_inbound_part(part(1, 200, 1, 2, "old ", 0))
        .await
        .expect("old p1");
    let new = db
        .store
        .store_inbound_part(part(2, 200, 1, 2, "new ", 30))
        .await
        .expect("new p1");
    let StoredPart {
        outcome: PartOutcome::Waiting { have: 1, total: 2 },
        flushed: Some(old),
    } = new
    else {
        panic!("expected the old group flushed, got {new:?}");
    };
    assert!(content(&db, old).await.incomplete);
    let done = db
        .store
        .store_inbound_part(part(3, 200, 2, 2, "text", 31))
        .await
        .expect("new p2");
    // Part 2 belongs to the group that is waiting, not to the old incomplete row.
    let PartOutcome::Completed { id } = done.outcome else {
        panic!("expected the new message complete, got {done:?}");
    };
    assert_eq!(content(&db, id).await.content, "new text");
    let old = content(&db, old).await;
    assert_eq!((old.content.as_str(), old.incomplete), ("old […]", true));
}

#[tokio::test]
async fn undecodable_pdus_are_stored_raw_with_the_reason_once() {
    let db = TestDb::new().await;
    let pdu = UndecodablePdu {
        modem_id: modem("m1"),
        fingerprint: Fingerprint("fp-garbage".into()),
        sim_storage: "SM".into(),
        sim_slot: 9,
        sender: None,
        raw_pdu: "07911326040000F0FFFF".into(),
        reason: "user data length 200 exceeds the PDU".into(),
        received_at: at(0),
    };
    let stored = db
        .store
        .store_undecodable(pdu.clone())
        .await
        .expect("store");
    assert!(stored.newly_created);
    let again = db.store.store_undecodable(pdu).await.expect("again");
    assert_eq!((again.id, again.newly_created), (stored.id, false));
    let row = content(&db, stored.id).await;
    assert_eq!(row.status, Status::Unread);
    assert_eq!(row.raw_pdu.as_deref(), Some("07911326040000F0FFFF"));
    assert!(
        row.reason
            .as_deref()
            .unwrap_or("")
            .contains("exceeds the PDU")
    );
}

#[tokio::test]
async fn on_store_deletes_every_committed_copy_but_on_read_waits_until_the_row_is_read() {
    let db = TestDb::new().await;
    let single = db
        .store
        .store_inbound_single(sms(1, "+4915112345678", "one", 0))
        .await
        .expect("single");
    db.store
        .store_inbound_part(part(2, 5, 1, 2, "a", 0))
        .await
        .expect("p1");
    let done = db
        .store
        .store_inbound_part(part(3, 5, 2, 2, "b", 0))
        .await
        .expect("p2");
    let PartOutcome::Completed { id: long } = done.outcome else {
        panic!("{done:?}");
    };
    // A part still waiting for its group is committed in message_parts.
    db.store
        .store_inbound_part(part(4, 6, 1, 2, "x", 0))
        .await
        .expect("waiting");
    let slots = |copies: &[conductor_store::SimCopy]| {
        let mut s: Vec<u32> = copies.iter().map(|c| c.slot).collect();
        s.sort_unstable();
        s
    };

    let on_store = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnStore)
        .await
        .expect("on store");
    assert_eq!(slots(&on_store), vec![1, 2, 3, 4]);
    let on_read = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnRead)
        .await
        .expect("on read");
    assert!(on_read.is_empty(), "{on_read:?}");

    // Read through the CLI for one, through plain SQL for the other.
    db.store
        .mark_read(vec![single.id], at(10))
        .await
        .expect("mark read");
    db.sql(&format!(
        "UPDATE messages SET status='read' WHERE id={};",
        long.0
    ));
    let on_read = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnRead)
        .await
        .expect("on read");
    assert_eq!(
        slots(&on_read),
        vec![1, 2, 3],
        "all parts of the long message"
    );
    assert!(on_read.iter().all(|c| c.kind == SimCopyKind::MessagePart));
    // Another modem's SIM is another list.
    let other = db
        .store
        .sim_deletions_due(modem("m2"), DeletePolicy::OnStore)
        .await
        .expect("other modem");
    assert!(other.is_empty());
}

#[tokio::test]
async fn deleting_sim_copies_clears_modem_index_once_no_part_is_left() {
    let db = TestDb::new().await;
    db.store
        .store_inbound_part(part(2, 5, 1, 2, "a", 0))
        .await
        .expect("p1");
    let done = db
        .store
        .store_inbound_part(part(3, 5, 2, 2, "b", 0))
        .await
        .expect("p2");
    let PartOutcome::Completed { id } = done.outcome else {
        panic!("{done:?}");
    };
    let due = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnStore)
        .await
        .expect("due");
    let by_slot = |slot: u32| {
        due.iter()
            .find(|c| c.slot == slot)
            .expect("slot listed")
            .clone()
    };

    let first = by_slot(2);
    // A wrong fingerprint (the slot was reused) matches nothing.
    let wrong = db
        .store
        .sim_copy_deleted(
            modem("m1"),
            "SM".into(),
            2,
            Fingerprint("other".into()),
            at(1),
        )
        .await
        .expect("wrong fingerprint");
    assert!(!wrong);
    assert!(
        db.store
            .sim_copy_deleted(
                modem("m1"),
                first.storage,
                first.slot,
                first.fingerprint,
                at(1)
            )
            .await
            .expect("delete p1")
    );
    assert_eq!(
        content(&db, id).await.modem_index,
        Some(3),
        "part 2 is still on the SIM"
    );
    let second = by_slot(3);
    db.store
        .sim_copy_deleted(
            modem("m1"),
            second.storage,
            second.slot,
            second.fingerprint,
            at(2),
        )
        .await
        .expect("delete p2");
    assert_eq!(content(&db, id).await.modem_index, None);
    let due = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnStore)
        .await
        .expect("due");
    assert!(due.is_empty());
}

#[tokio::test]
async fn the_capacity_guard_offers_the_oldest_committed_copies_even_if_unread() {
    let db = TestDb::new().await;
    for (slot, secs) in [(4u32, 30i64), (1, 10), (2, 20), (3, 0)] {
        db.store
            .store_inbound_single(sms(slot, "+4915112345678", &format!("m{slot}"), secs))
            .await
            .expect("store");
    }
    let oldest = db
        .store
        .oldest_sim_copies(modem("m1"), 2)
        .await
        .expect("oldest");
    let slots: Vec<u32> = oldest.iter().map(|c| c.slot).collect();
    assert_eq!(slots, vec![3, 1]);
}
