//! Several modems, outages and the status rows.

use std::time::Duration;

use conductor_sim::{Fault, FaultKind};
use conductor_store::{Direction, ModemId, ModemState, NewOutbound, Status};

use crate::util::{PATIENCE, Rig, extra_modem, gateway_config, outbound, sim_config, wait_until};

const TO: &str = "+447700900123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ready_modem_has_a_fresh_status_row_with_identity_storage_and_signal() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(2), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    rig.wait_modem("m1", ModemState::Ready).await;
    wait_until("storage and a sweep recorded", PATIENCE, || async {
        rig.modem_status("m1")
            .await
            .is_some_and(|s| !s.storage.is_empty() && s.last_cycle_at.is_some())
    })
    .await;
    let status = rig.modem_status("m1").await.expect("a row");
    assert!(
        status.iccid.is_some() && status.imei.is_some(),
        "{status:?}"
    );
    assert_eq!(status.registration.as_deref(), Some("home"));
    assert!(status.signal_dbm.is_some());
    assert!(status.operator.is_some());
    assert_eq!(status.storage[0].memory, "SM");
    // Rewritten at least every status_interval (1 s here), so readers can judge staleness.
    let first = status.updated_at.clone();
    wait_until("a newer row", Duration::from_secs(3), || async {
        rig.modem_status("m1")
            .await
            .is_some_and(|s| s.updated_at > first)
    })
    .await;
    let events = rig.store.events_since(0, 1000).await.expect("events");
    assert!(events.iter().any(|e| e.kind == "modem_up"
        && e.modem_id.as_ref().map(ModemId::as_str) == Some("m1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_of_two_modems_unplugged_the_other_sends_every_unnamed_row_and_named_rows_wait() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(2), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    rig.wait_modem("m1", ModemState::Ready).await;
    rig.sim()
        .fault("modem1", &Fault::Unplug { seconds: None })
        .await
        .expect("unplug");
    rig.wait_modem("m1", ModemState::Down).await;

    let mut unnamed = Vec::new();
    for i in 0..6 {
        unnamed.push(rig.queue(TO, &format!("anyone {i}")).await);
    }
    let mut named = Vec::new();
    for i in 0..2 {
        named.push(
            rig.queue_with(NewOutbound {
                modem_id: Some(ModemId::from("m1")),
                ..outbound(TO, &format!("only m1 {i}"))
            })
            .await,
        );
    }
    for &id in &unnamed {
        wait_until("an unnamed row sent", PATIENCE, || async {
            matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
        })
        .await;
    }
    for row in rig.messages(Direction::Outbound).await {
        if unnamed.contains(&row.id) {
            assert_eq!(row.sending_modem.as_ref().map(ModemId::as_str), Some("m0"));
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    for &id in &named {
        assert_eq!(rig.status_of(id).await, Status::Queued, "waits for m1");
    }
    let events = rig.store.events_since(0, 1000).await.expect("events");
    assert!(events.iter().any(|e| e.kind == "modem_down"));

    rig.sim()
        .clear_fault("modem1", Some(FaultKind::Unplug))
        .await
        .expect("plug back in");
    for &id in &named {
        wait_until("a named row sent by m1", PATIENCE, || async {
            matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
        })
        .await;
        let row = rig.message(id).await.message;
        assert_eq!(row.sending_modem.as_ref().map(ModemId::as_str), Some("m1"));
    }
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 8);
    assert!(submitted.iter().all(|s| s.count == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_rows_are_spread_over_two_ready_modems() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(2), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    rig.wait_modem("m1", ModemState::Ready).await;
    for i in 0..20 {
        rig.queue(TO, &format!("spread {i}")).await;
    }
    wait_until("all sent", PATIENCE, || async {
        rig.messages(Direction::Outbound)
            .await
            .iter()
            .all(|m| matches!(m.status, Status::Sent | Status::Delivered))
    })
    .await;
    let submitted = rig.sim().submitted().await;
    let by_m0 = submitted.iter().filter(|s| s.modem == "modem0").count();
    let by_m1 = submitted.iter().filter(|s| s.modem == "modem1").count();
    assert_eq!(by_m0 + by_m1, 20);
    assert!(by_m0 >= 5 && by_m1 >= 5, "{by_m0} / {by_m1}");
}
