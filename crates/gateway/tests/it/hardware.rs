//! Living with the network (issue 10), gateway side: registration lost and regained in the
//! middle of a batch pauses and resumes sending with nothing lost or sent twice; a wrong
//! PIN and a hang show in the status row and the event log.

use std::collections::HashSet;
use std::time::Duration;

use conductor_modem::SimPin;
use conductor_sim::{Fault, FaultKind, SendLatency};
use conductor_store::{Direction, ModemState, Status};

use crate::util::{PATIENCE, Rig, gateway_config, sim_config, wait_until};

const TO: &str = "+447700900123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_lost_mid_batch_pauses_sending_and_regained_resumes_with_none_lost_or_doubled()
{
    let mut sim = sim_config();
    sim.send_latency = SendLatency::fixed(Duration::from_millis(150));
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(rig.queue(TO, &format!("batch {i}")).await);
    }
    wait_until("a few submissions", PATIENCE, || async {
        rig.sim().submitted().await.len() >= 3
    })
    .await;
    rig.sim()
        .fault("modem0", &Fault::NoNetwork { seconds: None })
        .await
        .expect("fault");
    // The +CREG URC pauses the modem: the row is degraded with the reason.
    wait_until("the modem to show as unregistered", PATIENCE, || async {
        rig.modem_status("m0").await.is_some_and(|s| {
            s.state == ModemState::Degraded
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("not registered"))
        })
    })
    .await;
    // Paused: nothing more reaches the network, and nothing is failed or lost meanwhile.
    let paused_at = rig.sim().submitted().await.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.sim().submitted().await.len(), paused_at);
    let rows = rig.messages(Direction::Outbound).await;
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter().all(|m| matches!(
            m.status,
            Status::Queued | Status::Sending | Status::Sent | Status::Delivered
        )),
        "{:?}",
        rows.iter().map(|m| m.status).collect::<Vec<_>>()
    );
    assert!(paused_at < 12, "the batch was not interrupted: {paused_at}");

    rig.sim()
        .clear_fault("modem0", Some(FaultKind::NoNetwork))
        .await
        .expect("clear");
    for id in &ids {
        wait_until("every row sent after re-registration", PATIENCE, || async {
            matches!(rig.status_of(*id).await, Status::Sent | Status::Delivered)
        })
        .await;
    }
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 12, "{submitted:?}");
    assert!(submitted.iter().all(|s| s.count == 1), "{submitted:?}");
    let texts: HashSet<String> = rig
        .messages(Direction::Outbound)
        .await
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts.len(), 12);
    rig.wait_modem("m0", ModemState::Ready).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_shows_as_pin_wrong_in_the_status_row_and_nothing_is_sent() {
    let mut sim = sim_config();
    sim.pin = Some("1234".into());
    let mut config = gateway_config(1);
    config.modems[0].modem.pin = Some(SimPin::new("0000"));
    let rig = Rig::new(sim, config, true).await;
    wait_until("pin_wrong in the row", PATIENCE, || async {
        rig.modem_status("m0").await.is_some_and(|s| {
            s.state == ModemState::Down
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("pin_wrong: "))
        })
    })
    .await;
    let id = rig.queue(TO, "waits for a working modem").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.status_of(id).await, Status::Queued);
    assert!(rig.sim().submitted().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_hung_until_reset_is_reset_and_each_step_is_a_modem_event() {
    let mut config = gateway_config(1);
    config.modems[0].modem.allow_reset = true;
    config.modems[0].modem.max_consecutive_timeouts = 1;
    // A short command (the refresh's AT+CSQ, 5 s) finds the hang, not a sweep's AT+CMGL
    // (30 s): this test runs in real time.
    config.modems[0].modem.refresh_interval = Some(Duration::from_secs(1));
    config.inbound.sweep_interval = Duration::from_secs(300);
    let rig = Rig::new(sim_config(), config, true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    rig.sim()
        .fault("modem0", &Fault::HangUntilReset)
        .await
        .expect("fault");
    // A command times out, the driver probes, resets, and the modem is back.
    wait_until("the recovery events", Duration::from_secs(45), || async {
        let events = rig.store.events_since(0, 10_000).await.expect("events");
        let steps: Vec<(String, bool)> = events
            .iter()
            .filter(|e| e.kind == "modem_recovery")
            .filter_map(|e| e.detail.as_ref())
            .map(|d| {
                (
                    d["step"].as_str().unwrap_or_default().to_owned(),
                    d["recovered"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        steps.contains(&("reset".to_owned(), true)) && steps.iter().any(|(s, _)| s == "probe")
    })
    .await;
    let id = rig.queue(TO, "after the reset").await;
    wait_until("sent after the reset", PATIENCE, || async {
        matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
    })
    .await;
}
