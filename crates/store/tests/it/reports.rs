//! Status reports: matching under TP-MR wrap, aggregation over parts, SIM copies of reports.

use conductor_store::{
    DeletePolicy, Fingerprint, MessageId, ModemId, NewOutbound, PartSending, ReportCategory,
    SimCopyKind, SimLocation, Status, StatusReportIn,
};

use crate::util::{TestDb, at, claim, modem};

/// Queues, claims and sends a message of `parts` parts to `to` on m1, part i getting TP-MR
/// `refs[i]`; returns its id.
async fn send(db: &TestDb, to: &str, text: &str, refs: &[u8], secs: i64) -> MessageId {
    let id = db
        .store
        .queue_outbound(
            NewOutbound {
                to: to.into(),
                text: text.into(),
                modem_id: Some(modem("m1")),
                source: "cli".into(),
                allow_duplicate: true,
                status_report: Some(true),
                send_at: None,
                priority: 0,
                expires_at: None,
                transactional: false,
            },
            at(secs),
        )
        .await
        .expect("queue");
    let claimed = db
        .store
        .claim_due(claim(secs, &["m1"]))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 1);
    let total = u8::try_from(refs.len()).expect("few parts");
    for (i, mr) in refs.iter().enumerate() {
        let seq = u8::try_from(i + 1).expect("few parts");
        db.store
            .part_sending(
                id,
                PartSending {
                    seq,
                    total,
                    concat_ref: (total > 1).then_some(3),
                    pdu: "00".into(),
                    status_report: true,
                },
                at(secs),
            )
            .await
            .expect("sending");
        db.store
            .part_sent(id, seq, *mr, at(secs))
            .await
            .expect("sent");
    }
    id
}

fn report(mr: u8, to: &str, code: u8, category: ReportCategory, secs: i64) -> StatusReportIn {
    StatusReportIn {
        modem_id: ModemId::from("m1"),
        message_ref: mr,
        recipient: to.into(),
        status_code: code,
        category,
        description: None,
        discharge_time: Some("2024-03-01T13:00:05+01:00".into()),
        raw_pdu: Some("0006".into()),
        received_at: at(secs),
        sim: None,
    }
}

async fn status(db: &TestDb, id: MessageId) -> Status {
    db.store
        .message(id)
        .await
        .expect("read")
        .expect("exists")
        .message
        .status
}

#[tokio::test]
async fn a_report_matches_the_most_recent_waiting_part_when_the_reference_wrapped() {
    let db = TestDb::new().await;
    // An old message got TP-MR 5 and never a report; 256 sends later a new one gets 5 again.
    let old = send(&db, "+4917612345678", "old", &[5], 0).await;
    let new = send(&db, "+4917612345678", "new", &[5], 1000).await;
    let outcome = db
        .store
        .record_status_report(report(
            5,
            "+4917612345678",
            0x00,
            ReportCategory::Delivered,
            1001,
        ))
        .await
        .expect("report");
    assert_eq!(outcome.message_id, Some(new));
    assert_eq!(outcome.message_status, Some(Status::Delivered));
    assert_eq!(status(&db, old).await, Status::Sent);
    // The next report with the same reference goes to the one still waiting: the old one.
    let outcome = db
        .store
        .record_status_report(report(
            5,
            "+4917612345678",
            0x00,
            ReportCategory::Delivered,
            1002,
        ))
        .await
        .expect("report");
    assert_eq!(outcome.message_id, Some(old));
}

#[tokio::test]
async fn the_recipient_must_match_in_international_or_national_form() {
    let db = TestDb::new().await;
    let to_a = send(&db, "0176 12345678", "a", &[9], 0).await;
    let _to_b = send(&db, "+4915199999999", "b", &[9], 1).await;
    // The network reports the first recipient in international form.
    let outcome = db
        .store
        .record_status_report(report(
            9,
            "+4917612345678",
            0x00,
            ReportCategory::Delivered,
            2,
        ))
        .await
        .expect("report");
    assert_eq!(outcome.message_id, Some(to_a));
    // A recipient nobody was sent to with that reference matches nothing, and is kept.
    let outcome = db
        .store
        .record_status_report(report(
            9,
            "+4930123456789",
            0x00,
            ReportCategory::Delivered,
            3,
        ))
        .await
        .expect("report");
    assert_eq!(outcome.message_id, None);
    assert!(outcome.newly_recorded);
    assert_eq!(db.sql("SELECT count(*) FROM delivery_reports;").trim(), "2");
}

#[tokio::test]
async fn a_long_message_is_delivered_when_every_part_is_and_failed_when_one_part_fails() {
    let db = TestDb::new().await;
    let ok = send(&db, "+4917000001", "three parts", &[1, 2, 3], 0).await;
    for (mr, expected) in [(1, Status::Sent), (3, Status::Sent), (2, Status::Delivered)] {
        let outcome = db
            .store
            .record_status_report(report(
                mr,
                "+4917000001",
                0x00,
                ReportCategory::Delivered,
                10,
            ))
            .await
            .expect("report");
        assert_eq!(
            outcome.message_status,
            Some(expected),
            "after part with MR {mr}"
        );
    }

    let bad = send(&db, "+4917000002", "two parts", &[4, 5], 20).await;
    db.store
        .record_status_report(report(
            4,
            "+4917000002",
            0x00,
            ReportCategory::Delivered,
            21,
        ))
        .await
        .expect("report");
    let mut failed = report(5, "+4917000002", 0x46, ReportCategory::Failed, 22);
    failed.description = Some("validity period expired".into());
    let outcome = db.store.record_status_report(failed).await.expect("report");
    assert_eq!(outcome.message_status, Some(Status::Failed));
    let detail = db.store.message(bad).await.expect("read").expect("exists");
    let reason = detail.message.reason.expect("reason");
    assert!(
        reason.contains("validity period expired") && reason.contains("0x46"),
        "{reason}"
    );
    assert_eq!(detail.reports.len(), 2);
    assert_eq!(status(&db, ok).await, Status::Delivered);
}

#[tokio::test]
async fn a_pending_report_is_recorded_without_changing_the_message() {
    let db = TestDb::new().await;
    let id = send(&db, "+4917000001", "x", &[7], 0).await;
    let outcome = db
        .store
        .record_status_report(report(7, "+4917000001", 0x21, ReportCategory::Pending, 1))
        .await
        .expect("pending");
    assert_eq!(outcome.message_id, Some(id));
    assert_eq!(outcome.message_status, Some(Status::Sent));
    // The part still waits, so the final report matches it.
    let outcome = db
        .store
        .record_status_report(report(7, "+4917000001", 0x00, ReportCategory::Delivered, 2))
        .await
        .expect("final");
    assert_eq!(outcome.message_status, Some(Status::Delivered));
}

#[tokio::test]
async fn a_report_stored_on_the_sim_is_recorded_once_and_always_due_for_deletion() {
    let db = TestDb::new().await;
    let id = send(&db, "+4917000001", "x", &[8], 0).await;
    let mut stored = report(8, "+4917000001", 0x00, ReportCategory::Delivered, 1);
    stored.sim = Some(SimLocation {
        storage: "SR".into(),
        slot: 2,
        fingerprint: Fingerprint("fp-report".into()),
    });
    let first = db
        .store
        .record_status_report(stored.clone())
        .await
        .expect("report");
    let again = db
        .store
        .record_status_report(stored)
        .await
        .expect("re-read");
    assert!(first.newly_recorded && !again.newly_recorded);
    assert_eq!(
        (again.report_id, again.message_id),
        (first.report_id, Some(id))
    );
    let due = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnRead)
        .await
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].kind, due[0].slot), (SimCopyKind::StatusReport, 2));
    assert!(
        db.store
            .sim_copy_deleted(
                modem("m1"),
                "SR".into(),
                2,
                Fingerprint("fp-report".into()),
                at(3)
            )
            .await
            .expect("deleted")
    );
    let due = db
        .store
        .sim_deletions_due(modem("m1"), DeletePolicy::OnRead)
        .await
        .expect("due");
    assert!(due.is_empty());
}
