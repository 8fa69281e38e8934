//! The SIM lifecycle: delete-on-store, delete-on-read (after an external `UPDATE`), and the
//! capacity guard draining a full SIM.

use std::time::Duration;

use conductor_gateway::DeletePolicy;
use conductor_store::ModemState;

use crate::util::{PATIENCE, Rig, gateway_config, sim_config, wait_until};

const FROM: &str = "+15557654321";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_store_deletes_each_copy_right_after_its_row_is_committed() {
    let mut config = gateway_config(1);
    config.inbound.delete_policy = DeletePolicy::OnStore;
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    for i in 0..3 {
        rig.sim()
            .inject_text("modem0", FROM, &format!("message {i}"), false)
            .await
            .expect("inject");
    }
    wait_until("three rows and an empty SIM", PATIENCE, || async {
        rig.inbound().await.len() == 3 && rig.slots("modem0", "SM").await == 0
    })
    .await;
    wait_until("modem_index cleared on every row", PATIENCE, || async {
        rig.inbound().await.iter().all(|m| m.modem_index.is_none())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_read_keeps_the_copy_until_an_external_update_marks_the_row_read() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    rig.sim()
        .inject_text("modem0", FROM, "keep me until read", false)
        .await
        .expect("inject");
    wait_until("the row", PATIENCE, || async {
        rig.inbound().await.len() == 1
    })
    .await;
    // Two sweeps later the copy is still there: the row is unread.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(rig.slots("modem0", "SM").await, 1);
    let row = rig.inbound().await.remove(0);
    assert!(row.modem_index.is_some());

    // The SQL contract's statement, from another process.
    let external = rig.external();
    let changed = external
        .execute("UPDATE messages SET status='read' WHERE id=?", [row.id.0])
        .expect("the external update");
    assert_eq!(changed, 1);
    wait_until("the copy to be deleted", Duration::from_secs(3), || async {
        rig.slots("modem0", "SM").await == 0
    })
    .await;
    wait_until("modem_index to be cleared", PATIENCE, || async {
        rig.inbound().await[0].modem_index.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sim_of_30_is_drained_and_nothing_the_network_held_is_lost() {
    let rig = Rig::new(sim_config(), gateway_config(1), false).await;
    // 40 messages for a 30-slot SIM while nobody listens: 30 stored, 10 held by the network.
    for i in 0..40 {
        rig.sim()
            .inject_text("modem0", FROM, &format!("backlog {i:02}"), false)
            .await
            .expect("inject");
    }
    assert_eq!(rig.slots("modem0", "SM").await, 30);
    assert_eq!(rig.sim().held().await.len(), 10);

    let mut rig = rig;
    rig.start_gateway().await;
    wait_until(
        "all 40 messages stored",
        Duration::from_secs(30),
        || async { rig.inbound().await.len() == 40 },
    )
    .await;
    wait_until("the network to hold nothing", PATIENCE, || async {
        rig.sim().held().await.is_empty()
    })
    .await;
    let mut texts: Vec<String> = rig.inbound().await.into_iter().map(|m| m.content).collect();
    texts.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("backlog {i:02}")).collect();
    assert_eq!(texts, expected, "every message once");
    assert!(rig.slots("modem0", "SM").await < 30, "slots were freed");

    let events = rig.store.events_since(0, 10_000).await.expect("events");
    assert!(events.iter().any(|e| e.kind == "sim_full"), "{events:?}");
    assert!(events.iter().any(|e| e.kind == "capacity_cleanup"));
    let status = rig.modem_status("m0").await.expect("a status row");
    assert!(!status.storage.is_empty(), "{status:?}");
}
