//! The operations ported to PostgreSQL after the first step (long messages, sending policy,
//! the API's records, stats, alerts, retention, the toolbox), checked against the same
//! expectations as the SQLite tests in `tests/it`. One server per test function and one
//! database per topic, so the whole binary stays well under a minute.

use std::collections::HashMap;
use std::time::Duration;

use conductor_store::api::{AttemptResult, DeliveryFilter, DeliveryState, NewDelivery};
use conductor_store::policy::{ClaimPolicy, Limits};
use conductor_store::{
    Concat, Direction, Fingerprint, IdempotencyKey, InboundPart, InboundSms, Latency, MessageId,
    ModemId, NewAlert, PartOutcome, PartSending, QueueOutcome, RetentionRule, StatsQuery, Status,
    Store, TimeRange, UndecodablePdu,
};
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::server::PgServer;
use crate::{at, claim, open, outbound};

fn sms(fingerprint: &str, slot: u32, text: &str, secs: i64) -> InboundSms {
    InboundSms {
        modem_id: ModemId::from("m1"),
        fingerprint: Fingerprint(fingerprint.into()),
        sim_storage: "SM".into(),
        sim_slot: slot,
        sender: "+4917612345678".into(),
        text: text.into(),
        encoding: Some("gsm7".into()),
        smsc_timestamp: Some("2024-03-01T13:00:00+01:00".into()),
        message_class: None,
        raw_pdu: Some("0791".into()),
        received_at: at(secs),
    }
}

fn part(slot: u32, reference: u16, seq: u8, total: u8, text: &str, secs: i64) -> InboundPart {
    InboundPart {
        sms: sms(
            &format!("fp-part-{slot}-{reference}-{seq}-{text}-{secs}"),
            slot,
            text,
            secs,
        ),
        concat: Concat {
            reference,
            ref_bits: 8,
            total,
            seq,
        },
    }
}

async fn content(store: &Store, id: MessageId) -> (String, bool, Option<String>) {
    let detail = store.message(id).await.expect("read").expect("exists");
    let m = detail.message;
    (m.content, m.incomplete, m.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_messages_undecodable_pdus_the_block_list_and_limits() {
    let Some(pg) = PgServer::start() else { return };

    // --- reassembly, a flush and a late part (as tests/it/inbound.rs) ---
    let store = open(&pg.create_db("reassembly").await).await;
    let first = store
        .store_inbound_part(part(1, 7, 1, 3, "Hello ", 0))
        .await
        .expect("part 1");
    assert_eq!(first.outcome, PartOutcome::Waiting { have: 1, total: 3 });
    // The same copy again is a duplicate of a waiting part.
    let again = store
        .store_inbound_part(part(1, 7, 1, 3, "Hello ", 0))
        .await
        .expect("part 1 again");
    assert_eq!(again.outcome, PartOutcome::Duplicate { message_id: None });
    store
        .store_inbound_part(part(3, 7, 3, 3, "!", 2))
        .await
        .expect("part 3");
    // Part 2 is late: the group is flushed as incomplete.
    let flushed = store.flush_incomplete(at(60), at(61)).await.expect("flush");
    assert_eq!(flushed.len(), 1);
    let id = flushed[0];
    let (text, incomplete, reason) = content(&store, id).await;
    assert_eq!(text, "Hello […]!");
    assert!(incomplete);
    assert!(reason.expect("reason").contains("part(s) 2 of 3"));
    // Nothing waits any more: a second flush stores nothing.
    assert!(
        store
            .flush_incomplete(at(120), at(121))
            .await
            .expect("flush")
            .is_empty()
    );
    // The late part completes the same row.
    let late = store
        .store_inbound_part(part(2, 7, 2, 3, "world", 90))
        .await
        .expect("late part");
    assert_eq!(late.outcome, PartOutcome::CompletedLate { id });
    let (text, incomplete, reason) = content(&store, id).await;
    assert_eq!(text, "Hello world!");
    assert!(!incomplete);
    assert_eq!(reason, None);
    let kinds: Vec<String> = store
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"received_incomplete".to_owned()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"completed_late".to_owned()), "{kinds:?}");
    // A complete group in any order makes one unread row.
    store
        .store_inbound_part(part(5, 8, 2, 2, "there", 200))
        .await
        .expect("b2");
    let done = store
        .store_inbound_part(part(4, 8, 1, 2, "Hi ", 201))
        .await
        .expect("b1");
    let PartOutcome::Completed { id: whole } = done.outcome else {
        panic!("expected a completed message: {done:?}");
    };
    assert_eq!(content(&store, whole).await.0, "Hi there");
    // Two different texts for the same part number: the reference wrapped; the old group
    // is stored as incomplete and the new one starts.
    store
        .store_inbound_part(part(6, 9, 1, 2, "old ", 300))
        .await
        .expect("old 1");
    let wrapped = store
        .store_inbound_part(part(7, 9, 1, 2, "new ", 301))
        .await
        .expect("new 1");
    let old = wrapped.flushed.expect("the old group was flushed");
    assert_eq!(content(&store, old).await.0, "old […]");
    assert_eq!(wrapped.outcome, PartOutcome::Waiting { have: 1, total: 2 });

    // --- undecodable ---
    let pdu = UndecodablePdu {
        modem_id: ModemId::from("m1"),
        fingerprint: Fingerprint("fp-bad".into()),
        sim_storage: "SM".into(),
        sim_slot: 9,
        sender: None,
        raw_pdu: "07FFFF".into(),
        reason: "truncated user data".into(),
        received_at: at(400),
    };
    let stored = store.store_undecodable(pdu.clone()).await.expect("store");
    assert!(stored.newly_created);
    let again = store.store_undecodable(pdu).await.expect("store again");
    assert_eq!((again.id, again.newly_created), (stored.id, false));
    let detail = store.message(stored.id).await.expect("read").expect("row");
    assert_eq!(detail.message.status, Status::Unread);
    assert_eq!(detail.message.content, "");
    assert_eq!(
        detail.message.reason.as_deref(),
        Some("undecodable PDU: truncated user data")
    );

    // --- block list ---
    let store = open(&pg.create_db("policy").await).await;
    assert!(
        store
            .block_number(
                "+4917611111111".into(),
                "cli".into(),
                Some("asked".into()),
                None,
                at(0)
            )
            .await
            .expect("block")
    );
    assert!(
        !store
            .block_number("+4917611111111".into(), "cli".into(), None, None, at(1))
            .await
            .expect("block again")
    );
    let list = store.blocked_numbers().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason.as_deref(), Some("asked"));
    let blocked = store
        .queue_outbound(outbound("+4917611111111", "promo"), at(2))
        .await
        .expect("queue");
    let claimed = store
        .claim_due(claim(at(3), &["m1"], 10))
        .await
        .expect("claim");
    assert_eq!(claimed.blocked.len(), 1, "{claimed:?}");
    assert_eq!(claimed.blocked[0].0, blocked);
    assert!(
        store
            .unblock_number("+4917611111111".into(), "cli".into(), None, at(4))
            .await
            .expect("unblock")
    );
    assert!(store.blocked_numbers().await.expect("list").is_empty());

    // --- limits: per_minute 2 on m1, recipient_per_hour 3 ---
    let mut policy = ClaimPolicy::default();
    policy.limits.insert(
        ModemId::from("m1"),
        Limits {
            per_minute: Some(2),
            ..Limits::default()
        },
    );
    policy.recipient_per_hour = Some(3);
    let limited = |secs: i64| {
        let mut request = claim(at(secs), &["m1"], 10);
        request.policy = policy.clone();
        request
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            store
                .queue_outbound(outbound(&format!("+49176200000{i}"), "limited"), at(10))
                .await
                .expect("queue"),
        );
    }
    let claimed = store.claim_due(limited(100)).await.expect("claim");
    assert_eq!(claimed.jobs.len(), 2, "{claimed:?}");
    assert_eq!(claimed.held.len(), 1, "{claimed:?}");
    let held = &claimed.held[0];
    assert_eq!(held.held_by, "per_minute");
    // The two parts count from when they go out (at 100 here): the window frees at 160.
    assert_eq!(held.until, Some(at(160)));
    for (n, job) in claimed.jobs.iter().enumerate() {
        let part = PartSending {
            seq: 1,
            total: 1,
            concat_ref: None,
            pdu: "00".into(),
            status_report: false,
        };
        store
            .part_sending(job.id, part, at(100))
            .await
            .expect("sending");
        store
            .part_sent(job.id, 1, u8::try_from(n).expect("small"), at(100))
            .await
            .expect("sent");
    }
    assert_eq!(
        store.held_counts().await.expect("held"),
        vec![("per_minute".to_owned(), 1)]
    );
    let usage = store
        .limit_usage(
            HashMap::from([(
                ModemId::from("m1"),
                Limits {
                    per_minute: Some(2),
                    ..Limits::default()
                },
            )]),
            Some(3),
            at(101),
        )
        .await
        .expect("usage");
    let per_minute = usage
        .iter()
        .find(|u| u.limit == "per_minute")
        .expect("per_minute");
    assert_eq!((per_minute.used, per_minute.max), (2, 2));
    let per_recipient = usage
        .iter()
        .find(|u| u.limit == "recipient_per_hour")
        .expect("recipient_per_hour");
    assert_eq!((per_recipient.used, per_recipient.max), (1, 3));
    // Still held before the window frees, released after.
    assert!(
        store
            .claim_due(limited(159))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );
    let released = store.claim_due(limited(161)).await.expect("claim");
    assert_eq!(released.jobs.len(), 1, "{released:?}");
    assert_eq!(released.jobs[0].id, ids[2]);
    assert!(store.held_counts().await.expect("held").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_the_webhook_outbox_and_dashboard_figures() {
    let Some(pg) = PgServer::start() else { return };
    let store = open(&pg.create_db("api").await).await;

    // --- idempotency: replay, conflict, expiry, prune ---
    let key = |hash: &str, expired_before: Option<Timestamp>| IdempotencyKey {
        key: "k1".into(),
        request_hash: hash.into(),
        expired_before,
    };
    let batch = || {
        vec![
            outbound("+4917630000001", "a"),
            outbound("+4917630000002", "b"),
        ]
    };
    let QueueOutcome::Queued(first) = store
        .queue_outbound_batch(batch(), Some(key("h1", None)), at(0))
        .await
        .expect("queue")
    else {
        panic!("expected queued");
    };
    assert_eq!(first.len(), 2);
    assert_eq!(
        store
            .queue_outbound_batch(batch(), Some(key("h1", None)), at(5))
            .await
            .expect("replay"),
        QueueOutcome::Replayed(first.clone())
    );
    assert_eq!(
        store
            .queue_outbound_batch(batch(), Some(key("h2", None)), at(6))
            .await
            .expect("conflict"),
        QueueOutcome::KeyConflict
    );
    // Expired (recorded before the cutoff): queued afresh, and the key now names the new ids.
    let QueueOutcome::Queued(second) = store
        .queue_outbound_batch(batch(), Some(key("h1", Some(at(1)))), at(10))
        .await
        .expect("after expiry")
    else {
        panic!("expected queued after expiry");
    };
    assert_ne!(second, first);
    assert_eq!(
        store
            .queue_outbound_batch(batch(), Some(key("h1", Some(at(1)))), at(11))
            .await
            .expect("replay"),
        QueueOutcome::Replayed(second)
    );
    assert_eq!(store.prune_idempotency_keys(at(5)).await.expect("prune"), 0);
    assert_eq!(
        store.prune_idempotency_keys(at(20)).await.expect("prune"),
        1
    );
    // Two requests with one key at once (two nodes' APIs): one queues, the other replays.
    let (a, b) = tokio::join!(
        store.queue_outbound_batch(batch(), Some(key("h3", None)), at(30)),
        store.queue_outbound_batch(batch(), Some(key("h3", None)), at(30)),
    );
    let outcomes = [a.expect("a"), b.expect("b")];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, QueueOutcome::Queued(_)))
            .count(),
        1,
        "{outcomes:?}"
    );

    // --- webhook outbox ---
    let last = store.last_event_id().await.expect("last event");
    assert!(last > 0);
    assert_eq!(
        store.webhook_cursor("hook".into()).await.expect("cursor"),
        None
    );
    let deliveries: Vec<NewDelivery> = (1..=3)
        .map(|i| NewDelivery {
            event_id: i,
            event: "message.queued".into(),
            payload: format!("{{\"n\":{i}}}"),
        })
        .collect();
    let new = store
        .enqueue_webhooks("hook".into(), 3, deliveries.clone(), at(40))
        .await
        .expect("enqueue");
    assert_eq!(new, 3);
    // Again: nothing new, and the cursor never goes back.
    let new = store
        .enqueue_webhooks("hook".into(), 2, deliveries, at(41))
        .await
        .expect("enqueue again");
    assert_eq!(new, 0);
    assert_eq!(
        store.webhook_cursor("hook".into()).await.expect("cursor"),
        Some(3)
    );
    let due = store
        .webhooks_due("hook".into(), at(40), 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    store
        .webhook_attempted(due[0].id, AttemptResult::Delivered { status: 200 }, at(42))
        .await
        .expect("delivered");
    store
        .webhook_attempted(
            due[1].id,
            AttemptResult::Retry {
                status: Some(503),
                error: "busy".into(),
                next_attempt_at: at(100),
            },
            at(42),
        )
        .await
        .expect("retry");
    store
        .webhook_attempted(
            due[2].id,
            AttemptResult::GiveUp {
                status: None,
                error: "refused".into(),
            },
            at(42),
        )
        .await
        .expect("give up");
    assert!(
        store
            .webhooks_due("hook".into(), at(50), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store
            .webhooks_due_now("hook".into(), at(50))
            .await
            .expect("due now"),
        1
    );
    let due = store
        .webhooks_due("hook".into(), at(50), 10)
        .await
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].attempts, due[0].last_status), (1, Some(503)));
    let failed = store
        .webhook_deliveries(DeliveryFilter {
            state: Some(DeliveryState::Failed),
            ..DeliveryFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("refused"));
    let all = store
        .webhook_deliveries(DeliveryFilter {
            endpoint: Some("hook".into()),
            limit: 2,
            ..DeliveryFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
    let mut counts: Vec<(DeliveryState, u64, u64)> = store
        .webhook_counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.state, c.deliveries, c.attempts))
        .collect();
    counts.sort_by_key(|c| c.0.as_str());
    assert_eq!(
        counts,
        vec![
            (DeliveryState::Delivered, 1, 1),
            (DeliveryState::Failed, 1, 1),
            (DeliveryState::Pending, 1, 1),
        ]
    );

    // --- volume and latency ---
    let volume = store.volume(at(-3600), false).await.expect("volume");
    let queued: u64 = volume
        .iter()
        .filter(|b| b.status == Status::Queued)
        .map(|b| b.count)
        .sum();
    assert_eq!(queued, 6, "three batches of two");
    assert!(volume[0].bucket.ends_with(":00:00Z"), "{volume:?}");
    let by_day = store.volume(at(-3600), true).await.expect("volume");
    assert_eq!(by_day[0].bucket.len(), "2023-11-14".len());
    let id = first[0];
    let claimed = store
        .claim_due(claim(at(60), &["m1"], 1))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs[0].id, id);
    let part = PartSending {
        seq: 1,
        total: 1,
        concat_ref: None,
        pdu: "00".into(),
        status_report: false,
    };
    store.part_sending(id, part, at(61)).await.expect("sending");
    store.part_sent(id, 1, 1, at(64)).await.expect("sent");
    let histogram = store
        .latency_histogram(Latency::Send, vec![1.0, 64.0, 100.0])
        .await
        .expect("histogram");
    // Queued at 0, sent at 64.
    assert_eq!(histogram.count, 1);
    assert_eq!(histogram.sum, 64.0);
    assert_eq!(histogram.buckets, vec![(1.0, 0), (64.0, 1), (100.0, 1)]);

    // --- data_version: other writers' commits move it, our own do not ---
    let before = store.data_version().await.expect("version");
    store
        .queue_outbound(outbound("+4917630000009", "own"), at(70))
        .await
        .expect("own write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.data_version().await.expect("version"), before);
    pg.client("api")
        .await
        .execute(
            "INSERT INTO messages (phone_number, content) VALUES ('+1', 'external')",
            &[],
        )
        .await
        .expect("external insert");
    let mut moved = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if store.data_version().await.expect("version") != before {
            moved = true;
            break;
        }
    }
    assert!(moved, "an external commit moves data_version");
}

/// One generated row (as tests/it/stats.rs).
struct Gen {
    direction: &'static str,
    status: &'static str,
    modem: &'static str,
    created: Timestamp,
    latency: Option<i64>,
    reason: Option<&'static str>,
}

const CMS_38: &str =
    "modem m1 refused the send: +CMS ERROR 38 (network out of order) (gave up after 5 attempts)";
const ABSENT: &str = "not delivered: absent subscriber (status report TP-ST 0x46, part 1)";

fn utc(day: i8, hour: i8, minute: i8) -> Timestamp {
    date(2024, 3, day)
        .at(hour, minute, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .expect("valid time")
        .timestamp()
}

/// The same month as tests/it/stats.rs.
fn month() -> Vec<Gen> {
    let mut rows = Vec::new();
    for d in 1..=31i8 {
        let day = i64::from(d);
        for (i, minute) in [(0i64, 10i8), (1, 40)] {
            rows.push(Gen {
                direction: "inbound",
                status: "unread",
                modem: "m1",
                created: utc(d, 14, minute),
                latency: Some(3 + i * 4 + day % 5),
                reason: None,
            });
        }
        for (j, (hour, minute)) in [(9i8, 5i8), (9, 35), (10, 5), (14, 20)]
            .into_iter()
            .enumerate()
        {
            let j = j as i64;
            let (status, reason, sent) = match j {
                0 | 1 => ("delivered", None, true),
                2 => ("sent", None, true),
                _ if d % 3 != 0 => ("delivered", None, true),
                _ if d % 2 == 0 => ("failed", Some(CMS_38), false),
                _ => ("failed", Some(ABSENT), true),
            };
            rows.push(Gen {
                direction: "outbound",
                status,
                modem: "m1",
                created: utc(d, hour, minute),
                latency: sent.then_some(10 * j + day),
                reason,
            });
        }
    }
    for k in 0..3 {
        rows.push(Gen {
            direction: "outbound",
            status: "delivered",
            modem: "m2",
            created: utc(15, 20, 10 * k),
            latency: Some(100),
            reason: None,
        });
    }
    rows
}

fn median(mut values: Vec<i64>) -> Option<f64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2] as f64),
        _ => Some((values[n / 2 - 1] + values[n / 2]) as f64 / 2.0),
    }
}

/// Writes the month as an external SQL client would (times bound as `timestamptz`).
async fn insert_month(client: &tokio_postgres::Client, rows: &[Gen]) {
    let sys = |t: Timestamp| {
        std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(t.as_second()).expect("after 1970"))
    };
    for r in rows {
        let created = sys(r.created);
        if r.direction == "inbound" {
            let smsc = r.latency.map(|l| {
                (r.created - SignedDuration::from_secs(l))
                    .to_zoned_datetime(TimeZone::fixed(jiff::tz::offset(1)))
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            });
            client
                .execute(
                    "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                         modem_id, smsc_timestamp, created_at, updated_at)
                     VALUES ('+491', 'in', $1, $2, 'inbound', $3, $4, $1, $1)",
                    &[&created, &r.status, &r.modem, &smsc],
                )
                .await
                .expect("insert inbound");
        } else {
            let sent = r
                .latency
                .map(|l| sys(r.created + SignedDuration::from_secs(l)));
            client
                .execute(
                    "INSERT INTO messages (phone_number, content, timestamp, status, direction,
                         sending_modem, created_at, updated_at, sent_at, reason)
                     VALUES ('+492', 'out', $1, $2, 'outbound', $3, $1, $1, $4, $5)",
                    &[&created, &r.status, &r.modem, &sent, &r.reason],
                )
                .await
                .expect("insert outbound");
        }
    }
    client
        .batch_execute(
            "INSERT INTO messages (phone_number, status, direction, created_at)
                 VALUES ('+493', 'delivered', 'outbound', '2024-02-29 23:59:59+00'),
                        ('+493', 'failed', 'outbound', '2024-04-01 00:00:00+00');",
        )
        .await
        .expect("insert outside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_alerts_retention_backups_and_the_toolbox() {
    let Some(pg) = PgServer::start() else { return };

    // --- stats on the generated month: the SQLite test's numbers ---
    let store = open(&pg.create_db("stats").await).await;
    let rows = month();
    insert_month(&pg.client("stats").await, &rows).await;
    let month_range = TimeRange {
        start: utc(1, 0, 0),
        end: utc(31, 0, 0) + SignedDuration::from_hours(24),
    };
    let days: Vec<TimeRange> = (1..=31i8)
        .map(|d| TimeRange {
            start: utc(d, 0, 0),
            end: utc(d, 0, 0) + SignedDuration::from_hours(24),
        })
        .collect();
    let figures = store
        .stats(StatsQuery {
            ranges: vec![month_range],
            modem: None,
        })
        .await
        .expect("stats");
    let all = &figures[0];
    assert_eq!(all.outbound, 127);
    assert_eq!(all.inbound, 62);
    assert_eq!(all.outbound_with(Status::Delivered), 31 * 2 + 21 + 3);
    assert_eq!(all.outbound_with(Status::Sent), 31);
    assert_eq!(all.outbound_with(Status::Failed), 10);
    let failures: Vec<(&str, u64)> = all
        .failures
        .iter()
        .map(|f| (f.reason.as_str(), f.count))
        .collect();
    assert_eq!(
        failures,
        vec![
            ("+CMS ERROR 38 (network out of order)", 5),
            ("not delivered: absent subscriber (TP-ST 0x46)", 5)
        ]
    );
    assert_eq!(all.send_latency.samples, 93 + 21 + 5 + 3);
    let sends: Vec<i64> = rows
        .iter()
        .filter(|r| r.direction == "outbound")
        .filter_map(|r| r.latency)
        .collect();
    assert_eq!(all.send_latency.median_secs, median(sends));
    assert_eq!(all.inbound_latency.samples, 62);
    let inbound: Vec<i64> = rows
        .iter()
        .filter(|r| r.direction == "inbound")
        .filter_map(|r| r.latency)
        .collect();
    assert_eq!(all.inbound_latency.median_secs, median(inbound));
    let total: u64 = all.quarter_hours.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 127 + 62);
    let at_14: u64 = all
        .quarter_hours
        .iter()
        .filter(|(t, _)| t.to_zoned_datetime(TimeZone::UTC).hour() == 14)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(at_14, 31 * 3);
    let per_day = store
        .stats(StatsQuery {
            ranges: days,
            modem: Some(ModemId::from("m1")),
        })
        .await
        .expect("stats per day");
    assert_eq!(per_day[0].send_latency.median_secs, Some(16.0));
    assert_eq!(per_day[5].send_latency.median_secs, Some(16.0));
    assert_eq!(per_day[5].send_latency.samples, 3);
    assert_eq!(per_day[0].inbound_latency.median_secs, Some(6.0));
    assert_eq!(per_day[14].outbound, 4);

    // --- alerts: one active episode per key, also when raised twice at once ---
    let store = open(&pg.create_db("alerts").await).await;
    let alert = |secs: i64| NewAlert {
        key: "modem_down:m1".into(),
        kind: "modem_down".into(),
        modem_id: Some(ModemId::from("m1")),
        message: "modem m1 is down".into(),
        detail: Some(serde_json::json!({ "since": secs })),
        at: at(secs),
    };
    let (a, b) = tokio::join!(store.raise_alert(alert(0)), store.raise_alert(alert(0)));
    let raised: Vec<_> = [a.expect("a"), b.expect("b")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(raised.len(), 1, "one episode");
    assert!(store.raise_alert(alert(5)).await.expect("again").is_none());
    assert_eq!(store.active_alerts().await.expect("active").len(), 1);
    let cleared = store
        .clear_alert("modem_down:m1".into(), "back".into(), at(10))
        .await
        .expect("clear")
        .expect("was active");
    assert!(cleared.cleared_at.is_some());
    assert!(store.active_alerts().await.expect("active").is_empty());
    assert!(
        store
            .clear_alert("modem_down:m1".into(), "back".into(), at(11))
            .await
            .expect("clear")
            .is_none()
    );
    let second = store.raise_alert(alert(20)).await.expect("raise");
    assert!(
        second.is_some_and(|s| s.id != raised[0].id),
        "a new episode"
    );
    let newest = store
        .latest_event(vec!["alert_raised".into(), "alert_cleared".into()])
        .await
        .expect("latest")
        .expect("an event");
    assert_eq!(newest.kind, "alert_raised");
    let queued = store
        .queue_outbound(outbound("+4917640000001", "x"), at(30))
        .await
        .expect("queue");
    let backlog = store.queue_backlog(at(40), at(0)).await.expect("backlog");
    assert_eq!(backlog.due, 1);
    assert_eq!(
        backlog.oldest_due_since.map(|t| t.0),
        Some(conductor_store::SqlTime::from_timestamp(at(30)).0)
    );
    assert_eq!(
        store.send_outcomes(at(0)).await.expect("outcomes"),
        conductor_store::SendOutcomes::default()
    );
    assert_eq!(store.journal_mode().await.expect("mode"), "wal");

    // --- retention: export + delete, a changed row kept ---
    store.cancel(queued, at(31)).await.expect("cancel");
    let keep = store
        .queue_outbound(outbound("+4917640000002", "y"), at(32))
        .await
        .expect("queue");
    store.cancel(keep, at(33)).await.expect("cancel");
    let rule =
        RetentionRule::new(Direction::Outbound, vec![Status::Cancelled], at(1000)).expect("rule");
    let candidates = store
        .retention_candidates(vec![rule.clone(), rule])
        .await
        .expect("candidates");
    assert_eq!(
        candidates.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![queued, keep]
    );
    let details = store
        .message_details(candidates.iter().map(|c| c.id).collect())
        .await
        .expect("export");
    assert_eq!(details.len(), 2);
    assert!(
        !details[0].history.is_empty(),
        "the export carries the history"
    );
    // Someone changes the second row after it was listed: it is kept.
    pg.client("alerts")
        .await
        .execute(
            "UPDATE messages SET reason = 'looked at' WHERE id = $1",
            &[&keep.0],
        )
        .await
        .expect("external update");
    let deleted = store.delete_retained(candidates).await.expect("delete");
    assert_eq!(deleted.deleted, vec![queued]);
    assert_eq!(deleted.changed, 1);
    assert!(deleted.events >= 2, "{deleted:?}");
    assert!(store.message(queued).await.expect("read").is_none());
    assert!(store.message(keep).await.expect("read").is_some());

    // --- backups: a typed error that says to use pg_dump ---
    let dir = tempfile::tempdir().expect("temp dir");
    let err = store
        .backup_to(dir.path().join("copy.db"), Default::default())
        .await
        .expect_err("no SQLite backup of PostgreSQL");
    assert!(
        matches!(
            err,
            conductor_store::MaintenanceError::PostgresBackup { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("pg_dump --format=custom"), "{err}");

    // --- toolbox: cursors and the import ledger ---
    assert_eq!(
        store.event_cursor("scripts".into()).await.expect("read"),
        None
    );
    store
        .set_event_cursor("scripts".into(), 42, at(0))
        .await
        .expect("write");
    store
        .set_event_cursor("scripts".into(), 43, at(1))
        .await
        .expect("write");
    assert_eq!(
        store.event_cursor("scripts".into()).await.expect("read"),
        Some(43)
    );
    let imported = |item: &str| conductor_store::ImportedMessage {
        source_kind: "gammu".into(),
        source: "/data/smsd.db".into(),
        items: vec![item.into()],
        direction: Direction::Inbound,
        phone_number: "+4915112345678".into(),
        content: "hello".into(),
        status: Status::Read,
        timestamp: "2020-01-02 03:04:05".into(),
        created_at: None,
        updated_at: None,
        sent_at: None,
        delivered_at: None,
        modem_id: None,
        reason: None,
        encoding: None,
        parts_total: 1,
        parts_received: 1,
    };
    let first = store
        .import_messages(vec![imported("inbox:1"), imported("inbox:2")], at(0))
        .await
        .expect("import");
    assert_eq!(first.ids.iter().flatten().count(), 2);
    let again = store
        .import_messages(vec![imported("inbox:2"), imported("inbox:3")], at(0))
        .await
        .expect("import");
    assert_eq!(again.already, 1);
    assert_eq!(
        store
            .imported_items(
                "gammu".into(),
                "/data/smsd.db".into(),
                vec!["inbox:3".into(), "inbox:4".into()],
            )
            .await
            .expect("ledger"),
        vec![true, false]
    );
    let id = MessageId(first.ids[0].expect("imported"));
    let row = store.message(id).await.expect("read").expect("row").message;
    assert_eq!(row.timestamp.as_str(), "2020-01-02 03:04:05");
}
