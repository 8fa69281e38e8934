//! Receiving: `+CMTI`, the sweep, multipart reassembly and its timeout, undecodable PDUs.

use std::time::Duration;

use conductor_store::{Direction, Status};

use crate::util::{PATIENCE, Rig, extra_modem, gateway_config, sim_config, wait_until};

const FROM: &str = "+15557654321";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmti_message_is_stored_at_once_with_its_sender_text_and_smsc_time() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    let injected_at = jiff::Timestamp::now();
    rig.sim()
        .inject_text("modem0", FROM, "Hello from the network", false)
        .await
        .expect("inject");
    wait_until("the row", Duration::from_secs(2), || async {
        rig.inbound().await.len() == 1
    })
    .await;
    let row = &rig.inbound().await[0];
    assert_eq!(row.phone_number, FROM);
    assert_eq!(row.content, "Hello from the network");
    assert_eq!(row.status, Status::Unread);
    assert_eq!(row.direction, Direction::Inbound);
    assert_eq!(row.encoding.as_deref(), Some("gsm7"));
    assert_eq!(row.modem_id.as_ref().map(|m| m.as_str()), Some("m0"));
    assert!(row.modem_index.is_some(), "on_read keeps the copy: {row:?}");
    assert!(row.fingerprint.is_some());
    let smsc: jiff::Timestamp = row
        .smsc_timestamp
        .as_deref()
        .expect("an SMSC time stamp")
        .parse()
        .expect("RFC 3339");
    assert!(
        smsc.duration_since(injected_at).abs().as_secs() <= 2,
        "SMSC time {smsc} vs injected {injected_at}"
    );
    // Later sweeps read the same copy again: still one row (promise 2).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.inbound().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_stores_a_message_that_no_urc_announced() {
    let mut config = gateway_config(1);
    config.inbound.sweep_interval = Duration::from_millis(300);
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, config, true).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    let pdus = rig.deliver_pdus("modem1", FROM, "stored silently").await;
    rig.store_on_sim("modem0", "SM", &pdus[0]).await;
    wait_until("the sweep to store it", PATIENCE, || async {
        rig.inbound().await.len() == 1
    })
    .await;
    assert_eq!(rig.inbound().await[0].content, "stored silently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_message_whose_parts_arrive_out_of_order_becomes_one_row() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    let pdus = rig.deliver_pdus("modem1", FROM, &text).await;
    assert_eq!(pdus.len(), 3);
    for index in [2, 0, 1] {
        rig.sim()
            .inject_pdu("modem0", &pdus[index])
            .await
            .expect("inject");
    }
    wait_until("the assembled row", PATIENCE, || async {
        rig.inbound().await.len() == 1
    })
    .await;
    let row = &rig.inbound().await[0];
    assert_eq!(row.content, text);
    assert_eq!(row.parts_total, 3);
    assert!(!row.incomplete);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        rig.inbound().await.len(),
        1,
        "a re-read makes no second row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_part_is_stored_incomplete_after_the_timeout_and_a_late_part_completes_it() {
    let mut config = gateway_config(1);
    config.inbound.multipart_timeout = Duration::from_millis(800);
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, config, true).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(6);
    let pdus = rig.deliver_pdus("modem1", FROM, &text).await;
    assert_eq!(pdus.len(), 3);
    rig.sim()
        .inject_pdu("modem0", &pdus[0])
        .await
        .expect("inject");
    rig.sim()
        .inject_pdu("modem0", &pdus[2])
        .await
        .expect("inject");
    wait_until("the incomplete row", PATIENCE, || async {
        rig.inbound().await.first().is_some_and(|m| m.incomplete)
    })
    .await;
    let row = rig.inbound().await.remove(0);
    assert!(row.content.contains("[…]"), "{}", row.content);
    assert!(
        row.reason
            .as_deref()
            .is_some_and(|r| r.contains("part(s) 2 of 3")),
        "{:?}",
        row.reason
    );
    rig.sim()
        .inject_pdu("modem0", &pdus[1])
        .await
        .expect("inject");
    wait_until("the late part to complete the row", PATIENCE, || async {
        rig.inbound().await.first().is_some_and(|m| !m.incomplete)
    })
    .await;
    let rows = rig.inbound().await;
    assert_eq!(rows.len(), 1, "the same row was completed");
    assert_eq!(rows[0].id, row.id);
    assert_eq!(rows[0].content, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_pdu_is_stored_raw_with_a_reason_and_reading_goes_on() {
    let mut config = gateway_config(1);
    config.inbound.sweep_interval = Duration::from_millis(300);
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    // No SMSC, then a first octet with the reserved TP-MTI 11.
    rig.store_on_sim("modem0", "SM", "0003010203").await;
    wait_until("the raw row", PATIENCE, || async {
        rig.inbound().await.len() == 1
    })
    .await;
    let row = rig.inbound().await.remove(0);
    assert_eq!(row.content, "");
    assert_eq!(row.status, Status::Unread);
    assert_eq!(row.raw_pdu.as_deref(), Some("0003010203"));
    assert!(
        row.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("undecodable PDU:")),
        "{:?}",
        row.reason
    );
    rig.sim()
        .inject_text("modem0", FROM, "still listening", false)
        .await
        .expect("inject");
    wait_until("the next message", PATIENCE, || async {
        rig.inbound()
            .await
            .iter()
            .any(|m| m.content == "still listening")
    })
    .await;
    assert_eq!(rig.inbound().await.len(), 2);
}
