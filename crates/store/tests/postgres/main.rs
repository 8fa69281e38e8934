//! The PostgreSQL backend against a real, throwaway server (issue 9).
//!
//! Each test starts its own cluster ([`server::PgServer`]) and skips with `NOT RUN` when
//! PostgreSQL is not installed, unless `CONDUCTOR_PG_TESTS` is set (CI), when it fails.

mod lease;
mod ported;
mod server;
mod tls;

use std::collections::HashSet;
use std::time::Duration;

use conductor_store::{
    ClaimRequest, Fingerprint, InboundSms, ListFilter, MessageId, ModemId, NewOutbound, Status,
    Store, StoreError, StoreOptions,
};
use jiff::Timestamp;
use server::PgServer;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("a valid test time")
}

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

fn claim(now: Timestamp, ready: &[&str], limit: usize) -> ClaimRequest {
    ClaimRequest {
        now,
        ready_modems: ready.iter().map(|m| ModemId::from(*m)).collect(),
        limit,
        duplicate_window: Some(Duration::from_secs(600)),
        duplicate_exempt_sources: Vec::new(),
        policy: conductor_store::policy::ClaimPolicy::default(),
    }
}

async fn open(url: &str) -> Store {
    Store::open_url(url, StoreOptions::default())
        .await
        .expect("open the PostgreSQL store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_contract_statements_work_with_now_in_place_of_datetime_now() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("contract").await;
    let store = open(&url).await;
    let sql = pg.client("contract").await;

    // The contract's INSERT, as an external system writes it.
    sql.execute(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction)
         VALUES ($1, 'Auto-reply', now(), 'queued', 'outbound')",
        &[&"+4917612345678"],
    )
    .await
    .expect("the contract INSERT");
    let claimed = store
        .claim_due(claim(Timestamp::now(), &["m1"], 10))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 1, "{claimed:?}");
    assert_eq!(claimed.jobs[0].text, "Auto-reply");
    assert_eq!(claimed.jobs[0].to, "+4917612345678");

    // An inbound row stored by the daemon, then the contract's SELECT and UPDATE.
    let stored = store
        .store_inbound_single(inbound("fp-contract", 3))
        .await
        .expect("store inbound");
    let rows = sql
        .query(
            "SELECT * FROM messages WHERE status='unread' AND direction='inbound'
             ORDER BY timestamp DESC LIMIT 10",
            &[],
        )
        .await
        .expect("the contract SELECT");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>("id"), stored.id.0);
    let updated = sql
        .execute(
            "UPDATE messages SET status='read' WHERE id=$1",
            &[&stored.id.0],
        )
        .await
        .expect("the contract UPDATE");
    assert_eq!(updated, 1);
    let row = store
        .message(stored.id)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(row.message.status, Status::Read);
    assert_ne!(
        row.message.updated_at, row.message.created_at,
        "the trigger moves updated_at for external writers"
    );
    // number_key is generated for every writer.
    let key: String = sql
        .query_one(
            "SELECT number_key FROM messages WHERE phone_number = '+4917612345678'",
            &[],
        )
        .await
        .expect("number_key")
        .get(0);
    assert_eq!(key, "+4917612345678");
    // A typo in status is refused by the CHECK constraint, not stored as a stuck row.
    let typo = sql
        .execute(
            "INSERT INTO messages (phone_number, content, status) VALUES ('+1', 'x', 'queud')",
            &[],
        )
        .await;
    assert!(typo.is_err());
}

fn inbound(fingerprint: &str, slot: u32) -> InboundSms {
    InboundSms {
        modem_id: ModemId::from("m1"),
        fingerprint: Fingerprint::from(fingerprint),
        sim_storage: "SM".into(),
        sim_slot: slot,
        sender: "+4915112345678".into(),
        text: "hello".into(),
        encoding: Some("gsm7".into()),
        smsc_timestamp: Some("2024-03-01T12:00:00+01:00".into()),
        message_class: None,
        raw_pdu: None,
        received_at: at(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_claiming_at_once_never_claim_the_same_row() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("nodes").await;
    let node_a = open(&url).await;
    let node_b = open(&url).await;
    let batch: Vec<NewOutbound> = (0..500)
        .map(|i| outbound(&format!("+49151{i:07}"), &format!("message {i}")))
        .collect();
    node_a
        .queue_outbound_batch(batch, None, at(0))
        .await
        .expect("queue 500");

    let run = |store: Store, modem: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let claimed = store
                    .claim_due(claim(at(1), &[modem], 7))
                    .await
                    .expect("claim");
                if claimed.jobs.is_empty() {
                    let left = store
                        .list(ListFilter {
                            status: Some(Status::Queued),
                            limit: 1,
                            ..ListFilter::default()
                        })
                        .await
                        .expect("list");
                    if left.is_empty() {
                        return mine;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "queued rows left but none claimed"
                    );
                    tokio::task::yield_now().await;
                    continue;
                }
                for job in claimed.jobs {
                    assert_eq!(job.modem.as_str(), modem);
                    mine.push(job.id);
                }
            }
        })
    };
    let a = run(node_a.clone(), "a1");
    let b = run(node_b.clone(), "b1");
    let (a, b) = (a.await.expect("node a"), b.await.expect("node b"));
    let set_a: HashSet<MessageId> = a.iter().copied().collect();
    let set_b: HashSet<MessageId> = b.iter().copied().collect();
    assert_eq!(set_a.len(), a.len(), "node a claimed a row twice");
    assert_eq!(set_b.len(), b.len(), "node b claimed a row twice");
    assert!(set_a.is_disjoint(&set_b), "a row was claimed by both nodes");
    assert_eq!(a.len() + b.len(), 500, "every row claimed exactly once");
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both nodes took part (a {}, b {})",
        a.len(),
        b.len()
    );
    let totals = node_b.totals().await.expect("totals");
    let sending: u64 = totals
        .iter()
        .filter(|t| t.status == Status::Sending)
        .map(|t| t.count)
        .sum();
    assert_eq!(sending, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_row_goes_through_sending_sent_and_a_delivery_report() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("lifecycle").await;
    let store = open(&url).await;
    let id = store
        .queue_outbound(outbound("+4917600000001", "hi"), at(0))
        .await
        .expect("queue");
    let claimed = store
        .claim_due(claim(at(1), &["m1"], 10))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 1);
    store
        .part_sending(
            id,
            conductor_store::PartSending {
                seq: 1,
                total: 1,
                concat_ref: None,
                pdu: "00".into(),
                status_report: true,
            },
            at(2),
        )
        .await
        .expect("part sending");
    let status = store.part_sent(id, 1, 42, at(3)).await.expect("part sent");
    assert_eq!(status, Status::Sent);
    let outcome = store
        .record_status_report(conductor_store::StatusReportIn {
            modem_id: ModemId::from("m1"),
            message_ref: 42,
            recipient: "+4917600000001".into(),
            status_code: 0,
            category: conductor_store::ReportCategory::Delivered,
            description: None,
            discharge_time: None,
            raw_pdu: None,
            received_at: at(4),
            sim: None,
        })
        .await
        .expect("report");
    assert_eq!(outcome.message_status, Some(Status::Delivered));
    let detail = store.message(id).await.expect("read").expect("present");
    assert_eq!(detail.message.status, Status::Delivered);
    assert_eq!(detail.reports.len(), 1);
    let kinds: Vec<&str> = detail.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["queued", "claimed", "sent", "status_report", "delivered"]
    );

    // A second, interrupted send becomes unknown at recovery; requeue sends it again.
    let id2 = store
        .queue_outbound(outbound("+4917600000002", "again"), at(5))
        .await
        .expect("queue");
    store
        .claim_due(claim(at(6), &["m1"], 10))
        .await
        .expect("claim");
    store
        .part_sending(
            id2,
            conductor_store::PartSending {
                seq: 1,
                total: 1,
                concat_ref: None,
                pdu: "00".into(),
                status_report: false,
            },
            at(7),
        )
        .await
        .expect("part sending");
    let recovered = store
        .recover_interrupted(at(8), false)
        .await
        .expect("recover");
    assert_eq!(recovered.unknown, vec![id2]);
    store.requeue(id2, at(9)).await.expect("requeue");
    let again = store
        .claim_due(claim(at(10), &["m1"], 10))
        .await
        .expect("claim");
    assert_eq!(again.jobs.len(), 1);
    assert_eq!(again.jobs[0].id, id2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sim_copy_stored_twice_or_by_two_nodes_makes_one_row() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("inbound").await;
    let node_a = open(&url).await;
    let node_b = open(&url).await;
    let first = node_a
        .store_inbound_single(inbound("fp-1", 1))
        .await
        .expect("store");
    assert!(first.newly_created);
    let again = node_a
        .store_inbound_single(inbound("fp-1", 1))
        .await
        .expect("store again");
    assert_eq!(again.id, first.id);
    assert!(!again.newly_created);
    // Two nodes at once, many times: one row per fingerprint.
    let mut tasks = Vec::new();
    for i in 0..20 {
        for store in [node_a.clone(), node_b.clone()] {
            tasks.push(tokio::spawn(async move {
                store
                    .store_inbound_single(inbound(&format!("fp-race-{i}"), 2))
                    .await
            }));
        }
    }
    let mut ids: Vec<MessageId> = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task").expect("store").id);
    }
    let distinct: HashSet<MessageId> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 20);
    let rows = node_b
        .list(ListFilter {
            status: Some(Status::Unread),
            limit: 1000,
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(rows.len(), 21);
    // The SIM copy is due for deletion once read, and gone afterwards.
    node_a
        .mark_read(vec![first.id], at(5))
        .await
        .expect("mark read");
    let due = node_a
        .sim_deletions_due(ModemId::from("m1"), conductor_store::DeletePolicy::OnRead)
        .await
        .expect("due");
    assert_eq!(due.len(), 1);
    assert!(
        node_a
            .sim_copy_deleted(
                ModemId::from("m1"),
                "SM".into(),
                1,
                Fingerprint::from("fp-1"),
                at(6)
            )
            .await
            .expect("deleted")
    );
    let row = node_a.message(first.id).await.expect("read").expect("row");
    assert_eq!(row.message.modem_index, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_insert_wakes_the_watcher_within_a_second_and_own_writes_do_not() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("notify").await;
    let store = open(&url).await;
    let mut watcher = store
        .watch_external_changes(Duration::from_secs(60))
        .await
        .expect("watch");
    // The store's own write is not an external change.
    store
        .queue_outbound(outbound("+4917600000003", "own"), at(0))
        .await
        .expect("queue");
    let external = pg.client("notify").await;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        external
            .execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction)
                 VALUES ('+4917600000004', 'from n8n', now(), 'queued', 'outbound')",
                &[],
            )
            .await
            .expect("external insert");
    });
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(1) + Duration::from_millis(100),
        watcher.changed(),
    )
    .await
    .expect("woken within a second of the external insert")
    .expect("watch");
    assert!(started.elapsed() < Duration::from_secs(2));
    writer.await.expect("writer");
    // Only the external row's commit woke it: nothing is pending now.
    assert!(!watcher.poll().await.expect("poll"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_twice_are_a_no_op_and_concurrent_openers_do_not_fail() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("migrate").await;
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open_url(&url, StoreOptions::default()).await })
        })
        .collect();
    for opener in openers {
        opener.await.expect("task").expect("concurrent open");
    }
    let store = open(&url).await;
    let sql = pg.client("migrate").await;
    let versions: Vec<i64> = sql
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("schema_migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = (5..=conductor_store::SCHEMA_VERSION).collect();
    assert_eq!(versions, expected);
    store.check_writable().await.expect("writable");
}

#[tokio::test]
async fn a_database_with_a_foreign_messages_table_is_refused() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("foreign_schema").await;
    pg.client("foreign_schema")
        .await
        .batch_execute("CREATE TABLE messages (id serial, body text)")
        .await
        .expect("foreign table");
    let err = Store::open_url(&url, StoreOptions::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(err, StoreError::PostgresForeignSchema { .. }),
        "{err:?}"
    );
}
