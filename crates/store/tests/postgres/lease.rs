//! Modem leases on a real server (issue 9): atomic acquisition, expiry, renewal, release, the
//! claim's fence and recovery scoped to the modems a node acquires.

use std::time::Duration;

use conductor_store::{Acquisition, ModemId, PartSending, Status, StoreError};

use super::server::PgServer;
use super::{at, claim, open, outbound};

const EXPIRY: Duration = Duration::from_secs(20);

fn part() -> PartSending {
    PartSending {
        seq: 1,
        total: 1,
        concat_ref: None,
        pdu: "00".into(),
        status_report: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_holds_a_lease_until_it_expires_and_racing_nodes_get_it_once() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("lease_basic").await;
    let a = open(&url).await;
    let b = open(&url).await;
    let m1 = ModemId::from("m1");
    assert!(a.needs_leases());

    // Ten nodes race for a free lease: exactly one wins.
    let mut racers = Vec::new();
    for n in 0..10 {
        let store = open(&url).await;
        let m1 = m1.clone();
        racers.push(tokio::spawn(async move {
            store
                .acquire_lease(&m1, &format!("racer{n}"), at(0), EXPIRY)
                .await
                .expect("acquire")
        }));
    }
    let mut winners = 0;
    for racer in racers {
        if matches!(racer.await.expect("join"), Acquisition::Acquired { .. }) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one node acquires a free lease");
    let holder = a.leases().await.expect("leases")[0].node.clone();

    // Not expired: another node cannot take it; the holder renews and re-acquires.
    let taken = b.acquire_lease(&m1, "node-b", at(10), EXPIRY).await;
    assert!(
        matches!(&taken, Ok(Acquisition::HeldBy { node, .. }) if *node == holder),
        "{taken:?}"
    );
    assert!(
        a.renew_lease(&m1, &holder, at(15), EXPIRY)
            .await
            .expect("renew")
    );
    assert_eq!(
        a.acquire_lease(&m1, &holder, at(16), EXPIRY)
            .await
            .expect("again"),
        Acquisition::Acquired { taken_from: None }
    );
    // Renewed at 16: still held at 35, expired at 36.
    assert!(matches!(
        b.acquire_lease(&m1, "node-b", at(35), EXPIRY).await,
        Ok(Acquisition::HeldBy { .. })
    ));
    let leases = b.leases().await.expect("leases");
    assert!(leases[0].is_live(at(35)) && !leases[0].is_live(at(36)));
    assert_eq!(
        b.acquire_lease(&m1, "node-b", at(36), EXPIRY)
            .await
            .expect("takeover"),
        Acquisition::Acquired {
            taken_from: Some(holder.clone())
        }
    );
    // The old holder's renewal now fails: it must stop driving the modem.
    assert!(
        !a.renew_lease(&m1, &holder, at(37), EXPIRY)
            .await
            .expect("renew")
    );
    // A release by a node that does not hold it changes nothing; the holder's frees it.
    a.release_lease(&m1, &holder).await.expect("release");
    assert_eq!(a.leases().await.expect("leases")[0].node, "node-b");
    b.release_lease(&m1, "node-b").await.expect("release");
    assert!(a.leases().await.expect("leases").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_node_claims_only_for_its_modems_and_cannot_send_after_a_takeover() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_db("lease_fence").await;
    let a = open(&url).await;
    let b = open(&url).await;
    a.fence_node("node-a");
    b.fence_node("node-b");
    let (m1, m2) = (ModemId::from("m1"), ModemId::from("m2"));
    a.acquire_lease(&m1, "node-a", at(0), EXPIRY)
        .await
        .expect("a m1");
    b.acquire_lease(&m2, "node-b", at(0), EXPIRY)
        .await
        .expect("b m2");

    // A row naming node B's modem: node A skips it without a hold reason.
    let mut named = outbound("+15550001", "for m2");
    named.modem_id = Some(m2.clone());
    let named = a.queue_outbound(named, at(1)).await.expect("queue");
    let unnamed = a
        .queue_outbound(outbound("+15550002", "anyone"), at(1))
        .await
        .expect("queue");
    // Node A says both modems are ready (it cannot know better): only m1 is its own.
    let claimed = a
        .claim_due(claim(at(2), &["m1", "m2"], 10))
        .await
        .expect("claim a");
    assert_eq!(claimed.jobs.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed.jobs[0].id, claimed.jobs[0].modem.as_str()),
        (unnamed, "m1")
    );
    assert!(claimed.held.is_empty(), "{claimed:?}");
    let row = a.message(named).await.expect("read").expect("row");
    assert_eq!(row.message.status, Status::Queued);
    assert_eq!(row.message.held_by, None);
    let claimed = b
        .claim_due(claim(at(2), &["m2"], 10))
        .await
        .expect("claim b");
    assert_eq!(claimed.jobs.len(), 1, "{claimed:?}");
    assert_eq!(claimed.jobs[0].id, named);

    // Node A stalls past its expiry; node B takes m1 over and recovers its in-flight row.
    a.part_sending(unnamed, part(), at(3))
        .await
        .expect("part a");
    let ours = a
        .queue_outbound(outbound("+15550003", "claimed, not started"), at(3))
        .await
        .expect("queue");
    let claimed = a.claim_due(claim(at(4), &["m1"], 10)).await.expect("claim");
    assert_eq!(claimed.jobs.len(), 1);
    assert!(matches!(
        b.acquire_lease(&m1, "node-b", at(30), EXPIRY).await,
        Ok(Acquisition::Acquired { taken_from: Some(ref n) }) if n == "node-a"
    ));
    let recovered = b
        .recover_interrupted_on(vec![m1.clone()], at(30), false)
        .await
        .expect("recover");
    assert_eq!(recovered.unknown, vec![unnamed]);
    assert_eq!(recovered.requeued, vec![ours]);
    // Node B's own in-flight row on m2 is untouched.
    assert_eq!(
        b.message(named)
            .await
            .expect("read")
            .expect("row")
            .message
            .status,
        Status::Sending
    );
    // Node A can neither claim for m1 nor record a part for it any more.
    let claimed = a
        .claim_due(claim(at(31), &["m1"], 10))
        .await
        .expect("claim");
    assert!(claimed.jobs.is_empty(), "{claimed:?}");
    let again = b
        .claim_due(claim(at(31), &["m1", "m2"], 10))
        .await
        .expect("claim");
    assert_eq!(again.jobs.len(), 1, "{again:?}");
    let lost = a.part_sending(again.jobs[0].id, part(), at(31)).await;
    assert!(
        matches!(&lost, Err(StoreError::LeaseLost { modem, node }) if modem == "m1" && node == "node-a"),
        "{lost:?}"
    );
}
