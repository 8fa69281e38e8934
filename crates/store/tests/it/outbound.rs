//! Outbound: claiming, duplicates, scheduling, parts, retries, crash recovery, requeue/cancel.

use std::time::Duration;

use conductor_store::{MessageId, NewOutbound, PartSending, Retry, Status, StoreError};

use crate::util::{TestDb, at, claim, modem};

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

fn pdu_part(seq: u8, total: u8) -> PartSending {
    PartSending {
        seq,
        total,
        concat_ref: (total > 1).then_some(17),
        pdu: format!("0011000B91{seq:02X}"),
        status_report: true,
    }
}

async fn status(db: &TestDb, id: MessageId) -> (Status, Option<String>) {
    let m = db
        .store
        .message(id)
        .await
        .expect("read")
        .expect("exists")
        .message;
    (m.status, m.reason)
}

/// Queues `n` distinct messages and returns their ids.
async fn queue_n(db: &TestDb, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            db.store
                .queue_outbound(outbound(&format!("+49170000{i:04}"), "hi"), at(0))
                .await
                .expect("queue"),
        );
    }
    ids
}

#[tokio::test]
async fn claimed_rows_are_sending_and_spread_over_the_ready_modems() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 6).await;
    let claimed = db
        .store
        .claim_due(claim(1, &["m1", "m2", "m3"]))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    let mut per_modem = std::collections::BTreeMap::new();
    for job in &claimed.jobs {
        *per_modem.entry(job.modem.to_string()).or_insert(0) += 1;
        assert_eq!(job.attempt, 1);
        assert!(job.sent_parts.is_empty());
    }
    assert_eq!(
        per_modem.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per_modem:?}"
    );
    for id in ids {
        assert_eq!(status(&db, id).await.0, Status::Sending);
    }
    // Nothing is claimed twice.
    let again = db
        .store
        .claim_due(claim(2, &["m1", "m2", "m3"]))
        .await
        .expect("claim");
    assert!(again.jobs.is_empty());
}

#[tokio::test]
async fn a_row_naming_a_modem_waits_until_that_modem_is_ready() {
    let db = TestDb::new().await;
    let mut named = outbound("+4917000001", "via m2");
    named.modem_id = Some(modem("m2"));
    let named = db.store.queue_outbound(named, at(0)).await.expect("queue");
    let any = db
        .store
        .queue_outbound(outbound("+4917000002", "any"), at(0))
        .await
        .expect("queue");

    let nothing_ready = db.store.claim_due(claim(1, &[])).await.expect("claim");
    assert!(nothing_ready.jobs.is_empty());
    let first = db.store.claim_due(claim(1, &["m1"])).await.expect("claim");
    assert_eq!(
        first.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![any]
    );
    assert_eq!(first.jobs[0].modem, modem("m1"));
    assert_eq!(status(&db, named).await.0, Status::Queued);
    let second = db
        .store
        .claim_due(claim(2, &["m1", "m2"]))
        .await
        .expect("claim");
    assert_eq!(second.jobs.len(), 1);
    assert_eq!(
        (second.jobs[0].id, second.jobs[0].modem.clone()),
        (named, modem("m2"))
    );
}

#[tokio::test]
async fn duplicates_inside_the_window_are_caught_with_both_ids_after_normalising_the_number() {
    let db = TestDb::new().await;
    let first = db
        .store
        .queue_outbound(outbound("+49 176 1234-5678", "Same text"), at(0))
        .await
        .expect("queue");
    // Another writer, the same number in 00 form, five minutes later.
    db.sql(&format!(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, created_at) \
         VALUES ('004917612345678', 'Same text', '{t}', 'queued', 'outbound', '{t}');",
        t = crate::util::at_sql(300)
    ));
    let second = MessageId(
        db.sql("SELECT max(id) FROM messages;")
            .trim()
            .parse()
            .expect("id"),
    );
    let claimed = db
        .store
        .claim_due(claim(301, &["m1"]))
        .await
        .expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert_eq!(claimed.duplicates.len(), 1);
    assert_eq!(
        (claimed.duplicates[0].id, claimed.duplicates[0].earlier),
        (second, first)
    );
    let (st, reason) = status(&db, second).await;
    assert_eq!(st, Status::Duplicate);
    let reason = reason.expect("reason");
    assert!(
        reason.contains(&format!("#{}", first.0)) && reason.contains("10 min"),
        "{reason}"
    );
}

#[tokio::test]
async fn rows_outside_the_window_opted_out_or_with_the_window_off_are_sent() {
    let db = TestDb::new().await;
    let _first = db
        .store
        .queue_outbound(outbound("+4917000001", "t"), at(0))
        .await
        .expect("q");
    db.store
        .claim_due(claim(0, &["m1"]))
        .await
        .expect("claim first");

    // Eleven minutes later: outside the 10-minute window.
    let late = db
        .store
        .queue_outbound(outbound("+4917000001", "t"), at(660))
        .await
        .expect("q");
    // Inside the window, but the row opts out.
    let mut opted = outbound("+4917000001", "t");
    opted.allow_duplicate = true;
    let opted = db.store.queue_outbound(opted, at(661)).await.expect("q");
    // Inside the window, from a source that opts out.
    let mut api = outbound("+4917000001", "t");
    api.source = "api".into();
    let api = db.store.queue_outbound(api, at(662)).await.expect("q");
    let mut request = claim(700, &["m1"]);
    request.duplicate_exempt_sources = vec!["api".into()];
    let claimed = db.store.claim_due(request).await.expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![late, opted, api]
    );
    assert!(claimed.duplicates.is_empty());

    // Window 0 turns detection off entirely.
    let same = db
        .store
        .queue_outbound(outbound("+4917000001", "t"), at(701))
        .await
        .expect("q");
    let mut off = claim(702, &["m1"]);
    off.duplicate_window = Some(Duration::ZERO);
    let claimed = db.store.claim_due(off).await.expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![same]
    );
}

#[tokio::test]
async fn scheduled_rows_wait_for_their_time_and_an_unreadable_time_fails_with_a_reason() {
    let db = TestDb::new().await;
    let mut later = outbound("+4917000001", "later");
    later.send_at = Some(at(100));
    let later = db.store.queue_outbound(later, at(0)).await.expect("queue");
    // External writers may use ISO forms with a zone; SQLite reads them as UTC.
    db.sql(
        "INSERT INTO messages (phone_number, content, status, direction, send_at) \
         VALUES ('+4917000002', 'iso', 'queued', 'outbound', '2024-03-01T13:03:20+01:00');",
    );
    db.sql(
        "INSERT INTO messages (phone_number, content, status, direction, send_at) \
         VALUES ('+4917000003', 'bad', 'queued', 'outbound', 'tomorrow-ish');",
    );
    let early = db.store.claim_due(claim(10, &["m1"])).await.expect("claim");
    assert!(early.jobs.is_empty(), "{early:?}");
    assert_eq!(early.failed.len(), 1);
    assert!(
        early.failed[0].1.contains("tomorrow-ish"),
        "{:?}",
        early.failed
    );

    let due = db
        .store
        .claim_due(claim(200, &["m1"]))
        .await
        .expect("claim");
    let texts: Vec<&str> = due.jobs.iter().map(|j| j.text.as_str()).collect();
    assert_eq!(texts, vec!["later", "iso"]);
    assert_eq!(due.jobs[0].id, later);
}

#[tokio::test]
async fn a_long_message_is_sent_when_every_part_is_and_a_retry_sends_only_the_rest_on_the_same_modem()
 {
    let db = TestDb::new().await;
    let id = db
        .store
        .queue_outbound(outbound("+4917000001", "long"), at(0))
        .await
        .expect("q");
    let job = &db
        .store
        .claim_due(claim(1, &["m1", "m2"]))
        .await
        .expect("claim")
        .jobs[0];
    let sender = job.modem.clone();
    db.store
        .part_sending(id, pdu_part(1, 2), at(2))
        .await
        .expect("p1 sending");
    assert_eq!(
        db.store.part_sent(id, 1, 10, at(3)).await.expect("p1 sent"),
        Status::Sending
    );
    db.store
        .part_sending(id, pdu_part(2, 2), at(4))
        .await
        .expect("p2 sending");
    let retry = Retry::At {
        next_attempt_at: at(60),
        max_attempts: 3,
    };
    let st = db
        .store
        .part_rejected(id, 2, "+CMS ERROR: 42 (congestion)".into(), retry, at(5))
        .await
        .expect("rejected");
    assert_eq!(st, Status::Queued);

    // Not before its next attempt time, and only on the modem that sent part 1.
    assert!(
        db.store
            .claim_due(claim(30, &["m1", "m2"]))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );
    let other = if sender == modem("m1") { "m2" } else { "m1" };
    assert!(
        db.store
            .claim_due(claim(61, &[other]))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );
    let retry_job = db
        .store
        .claim_due(claim(62, &["m1", "m2"]))
        .await
        .expect("claim");
    let retry_job = &retry_job.jobs[0];
    assert_eq!(retry_job.modem, sender);
    assert_eq!(retry_job.attempt, 2);
    assert_eq!(retry_job.sent_parts.len(), 1);
    assert_eq!(retry_job.sent_parts[0].seq, 1);
    assert_eq!(retry_job.sent_parts[0].concat_ref, Some(17));

    db.store
        .part_sending(id, pdu_part(2, 2), at(63))
        .await
        .expect("p2 again");
    assert_eq!(
        db.store
            .part_sent(id, 2, 11, at(64))
            .await
            .expect("p2 sent"),
        Status::Sent
    );
    let m = db
        .store
        .message(id)
        .await
        .expect("read")
        .expect("exists")
        .message;
    assert_eq!(
        m.sent_at.as_ref().map(|t| t.as_str().to_owned()),
        Some(crate::util::at_sql(64))
    );
}

#[tokio::test]
async fn retryable_rejections_stop_after_the_last_attempt_and_permanent_ones_fail_at_once() {
    let db = TestDb::new().await;
    let id = db
        .store
        .queue_outbound(outbound("+4917000001", "x"), at(0))
        .await
        .expect("q");
    let mut now = 0;
    for attempt in 1..=2u32 {
        now += 100;
        let jobs = db
            .store
            .claim_due(claim(now, &["m1"]))
            .await
            .expect("claim")
            .jobs;
        assert_eq!(jobs[0].attempt, attempt);
        db.store
            .part_sending(id, pdu_part(1, 1), at(now))
            .await
            .expect("sending");
        let st = db
            .store
            .part_rejected(
                id,
                1,
                "+CMS ERROR: 38 (network out of order)".into(),
                Retry::At {
                    next_attempt_at: at(now + 10),
                    max_attempts: 2,
                },
                at(now),
            )
            .await
            .expect("rejected");
        assert_eq!(
            st,
            if attempt < 2 {
                Status::Queued
            } else {
                Status::Failed
            }
        );
    }
    let (st, reason) = status(&db, id).await;
    assert_eq!(st, Status::Failed);
    assert!(reason.expect("reason").contains("gave up after 2 attempts"));

    let permanent = db
        .store
        .queue_outbound(outbound("+4917000002", "y"), at(0))
        .await
        .expect("q");
    db.store
        .claim_due(claim(500, &["m1"]))
        .await
        .expect("claim");
    db.store
        .part_sending(permanent, pdu_part(1, 1), at(500))
        .await
        .expect("sending");
    let st = db
        .store
        .part_rejected(
            permanent,
            1,
            "invalid recipient: +4917000002x".into(),
            Retry::Never,
            at(501),
        )
        .await
        .expect("rejected");
    assert_eq!(st, Status::Failed);
    assert_eq!(
        status(&db, permanent).await.1.as_deref(),
        Some("invalid recipient: +4917000002x")
    );
}

#[tokio::test]
async fn an_interrupted_send_becomes_unknown_and_is_never_claimed_again_by_itself() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 2).await;
    db.store.claim_due(claim(1, &["m1"])).await.expect("claim");
    // Row 0 had its PDU handed to the modem; row 1 was claimed but never reached it.
    db.store
        .part_sending(ids[0], pdu_part(1, 1), at(2))
        .await
        .expect("sending");
    // The daemon crashed here; at its next start it recovers before claiming.
    let recovered = db
        .store
        .recover_interrupted(at(10), false)
        .await
        .expect("recover");
    assert_eq!(recovered.unknown, vec![ids[0]]);
    assert_eq!(recovered.requeued, vec![ids[1]]);
    let (st, reason) = status(&db, ids[0]).await;
    assert_eq!(st, Status::Unknown);
    assert!(reason.expect("reason").contains("not resent"));
    let claimed = db.store.claim_due(claim(11, &["m1"])).await.expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );

    // Requeue sends it on purpose, and it is not a duplicate of itself.
    db.store.requeue(ids[0], at(12)).await.expect("requeue");
    let claimed = db.store.claim_due(claim(13, &["m1"])).await.expect("claim");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    assert_eq!(claimed.jobs[0].attempt, 1);
}

#[tokio::test]
async fn with_at_least_once_an_interrupted_send_goes_back_to_the_queue() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 1).await;
    db.store.claim_due(claim(1, &["m1"])).await.expect("claim");
    db.store
        .part_sending(ids[0], pdu_part(1, 1), at(2))
        .await
        .expect("sending");
    let recovered = db
        .store
        .recover_interrupted(at(10), true)
        .await
        .expect("recover");
    assert_eq!(recovered.requeued, ids);
    assert_eq!(status(&db, ids[0]).await.0, Status::Queued);
}

#[tokio::test]
async fn requeue_and_cancel_accept_only_the_states_they_apply_to() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 2).await;
    let err = db
        .store
        .requeue(ids[0], at(1))
        .await
        .expect_err("queued cannot be requeued");
    assert!(
        matches!(
            err,
            StoreError::WrongStatus {
                status: Status::Queued,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("only unknown, failed"), "{err}");
    db.store.cancel(ids[0], at(1)).await.expect("cancel queued");
    assert_eq!(status(&db, ids[0]).await.0, Status::Cancelled);
    let err = db
        .store
        .cancel(ids[0], at(2))
        .await
        .expect_err("cancel twice");
    assert_eq!(
        err.to_string(),
        format!(
            "message #{} is cancelled; only queued messages can be cancelled",
            ids[0]
        )
    );
    let err = db
        .store
        .cancel(MessageId(9999), at(2))
        .await
        .expect_err("absent");
    assert_eq!(err.to_string(), "message #9999 does not exist");
    db.store
        .requeue(ids[0], at(3))
        .await
        .expect("requeue cancelled");
    assert_eq!(status(&db, ids[0]).await.0, Status::Queued);
}

#[tokio::test]
async fn a_row_changed_by_someone_else_while_sending_is_not_handed_to_the_modem() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 1).await;
    db.store.claim_due(claim(1, &["m1"])).await.expect("claim");
    db.sql(&format!(
        "UPDATE messages SET status='cancelled' WHERE id={};",
        ids[0]
    ));
    let err = db
        .store
        .part_sending(ids[0], pdu_part(1, 1), at(2))
        .await
        .expect_err("not sending any more");
    assert!(
        matches!(
            err,
            StoreError::WrongStatus {
                status: Status::Cancelled,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_ambiguous_part_makes_the_message_unknown() {
    let db = TestDb::new().await;
    let ids = queue_n(&db, 1).await;
    db.store.claim_due(claim(1, &["m1"])).await.expect("claim");
    db.store
        .part_sending(ids[0], pdu_part(1, 1), at(2))
        .await
        .expect("sending");
    db.store
        .part_ambiguous(ids[0], 1, "no answer to AT+CMGS within 60 s".into(), at(70))
        .await
        .expect("ambiguous");
    let (st, reason) = status(&db, ids[0]).await;
    assert_eq!(st, Status::Unknown);
    assert!(reason.expect("reason").contains("no answer to AT+CMGS"));
}

#[tokio::test]
async fn a_released_job_is_queued_again_without_using_up_an_attempt() {
    let db = TestDb::new().await;
    let id = db
        .store
        .queue_outbound(outbound("+4917000002", "flapping modem"), at(0))
        .await
        .expect("q");
    // Claimed and released five times: as often as max_attempts would allow retries.
    for round in 0..5 {
        let claimed = db
            .store
            .claim_due(claim(1 + round, &["m1"]))
            .await
            .expect("claim");
        assert_eq!(claimed.jobs.len(), 1, "round {round}");
        assert_eq!(
            claimed.jobs[0].attempt, 1,
            "a release does not count: round {round}"
        );
        let status = db
            .store
            .part_rejected(
                id,
                1,
                "modem m1 is not ready to send".into(),
                Retry::Release,
                at(1 + round),
            )
            .await
            .expect("released");
        assert_eq!(status, Status::Queued);
    }
    let m = db
        .store
        .message(id)
        .await
        .expect("read")
        .expect("exists")
        .message;
    assert_eq!(m.status, Status::Queued);
    assert!(
        m.reason
            .as_deref()
            .is_some_and(|r| r.contains("queued again")),
        "{:?}",
        m.reason
    );
}

#[tokio::test]
async fn a_row_without_text_fails_with_a_reason_instead_of_going_out_blank() {
    let db = TestDb::new().await;
    db.sql(
        "INSERT INTO messages (phone_number, content, status, direction) \
         VALUES ('+4917000004', '', 'queued', 'outbound'), \
                ('+4917000005', '   ', 'queued', 'outbound'), \
                ('+4917000006', 'fine', 'queued', 'outbound');",
    );
    let claimed = db.store.claim_due(claim(10, &["m1"])).await.expect("claim");
    let texts: Vec<&str> = claimed.jobs.iter().map(|j| j.text.as_str()).collect();
    assert_eq!(texts, vec!["fine"]);
    assert_eq!(claimed.failed.len(), 2, "{claimed:?}");
    for (id, reason) in &claimed.failed {
        assert!(reason.contains("content is empty"), "{reason}");
        let (st, stored) = status(&db, *id).await;
        assert_eq!(st, Status::Failed);
        assert_eq!(stored.as_deref(), Some(reason.as_str()));
    }
}

#[tokio::test]
async fn a_database_file_deleted_while_open_refuses_every_write_naming_the_file() {
    let db = TestDb::new().await;
    db.store
        .queue_outbound(outbound("+4917000007", "before"), at(0))
        .await
        .expect("queue");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.path.display()));
    }
    // SQLite in WAL mode would commit into the unlinked file; the store refuses instead.
    let err = db
        .store
        .queue_outbound(outbound("+4917000008", "after"), at(1))
        .await
        .expect_err("no write into a deleted file");
    assert!(matches!(err, StoreError::Moved { .. }), "{err:?}");
    assert!(
        err.to_string().contains("was deleted, moved or replaced"),
        "{err}"
    );
    assert!(db.store.claim_due(claim(10, &["m1"])).await.is_err());
}
