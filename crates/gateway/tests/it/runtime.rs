//! Changing a running gateway: modems added and removed without a restart (what a config
//! reload does), and the liveness a service manager's watchdog reads.

use std::time::Duration;

use conductor_gateway::{GatewayError, ModemSettings};
use conductor_store::{Direction, ModemId, ModemState, Status};

use crate::util::{PATIENCE, Rig, connector, extra_modem, gateway_config, sim_config, wait_until};

const TO: &str = "+447700900123";

/// Queues a row naming `modem` as an external writer would (plain SQL).
fn queue_for(rig: &Rig, modem: &str, text: &str) -> i64 {
    let conn = rig.external();
    conn.execute(
        "INSERT INTO messages (phone_number, content, timestamp, status, direction, modem_id)
         VALUES (?1, ?2, datetime('now'), 'queued', 'outbound', ?3)",
        rusqlite::params![TO, text, modem],
    )
    .expect("insert");
    conn.last_insert_rowid()
}

fn status_of(rig: &Rig, id: i64) -> String {
    rig.external()
        .query_row("SELECT status FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("the row")
}

/// "m1", the rig's second modem, with the short timings the rig's modems have.
fn second_modem() -> ModemSettings {
    gateway_config(2).modems.remove(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_added_at_runtime_serves_and_a_removed_one_stops_while_its_rows_wait() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let handle = rig.handle();
    assert_eq!(handle.modems().len(), 1);

    handle
        .add_modem_with(
            second_modem(),
            connector(rig.sim().clone(), "modem1".into()),
        )
        .await
        .expect("m1 is added");
    rig.wait_modem("m1", ModemState::Ready).await;
    let ids: Vec<String> = handle.modems().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["m0", "m1"]);
    let first = queue_for(&rig, "m1", "through the new modem");
    wait_until("the row naming m1 sent", PATIENCE, || async {
        matches!(status_of(&rig, first).as_str(), "sent" | "delivered")
    })
    .await;
    let row = rig.message(conductor_store::MessageId(first)).await.message;
    assert_eq!(row.sending_modem.as_ref().map(ModemId::as_str), Some("m1"));

    // Adding it twice is refused; the running one is untouched.
    let twice = handle
        .add_modem_with(
            second_modem(),
            connector(rig.sim().clone(), "modem1".into()),
        )
        .await;
    assert!(
        matches!(twice, Err(GatewayError::AddModem { ref id, .. }) if id == "m1"),
        "{twice:?}"
    );

    tokio::time::timeout(PATIENCE, handle.remove_modem("m1"))
        .await
        .expect("the removal finishes in time")
        .expect("m1 is removed");
    let status = rig.modem_status("m1").await.expect("m1's row");
    assert_eq!(status.state, ModemState::Down);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("removed")),
        "{status:?}"
    );
    let ids: Vec<String> = handle.modems().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["m0"]);

    // A row naming the removed modem waits; unnamed rows go through m0.
    let waiting = queue_for(&rig, "m1", "for m1 only");
    let unnamed = rig.queue(TO, "anyone").await;
    wait_until("the unnamed row sent", PATIENCE, || async {
        matches!(
            rig.status_of(unnamed).await,
            Status::Sent | Status::Delivered
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(status_of(&rig, waiting), "queued");
    let sent_by_m1 = rig
        .sim()
        .submitted()
        .await
        .iter()
        .filter(|s| s.modem == "modem1")
        .count();
    assert_eq!(sent_by_m1, 1, "only the first row went out through m1");

    // Added again: the waiting row goes out.
    handle
        .add_modem_with(
            second_modem(),
            connector(rig.sim().clone(), "modem1".into()),
        )
        .await
        .expect("m1 is added again");
    wait_until("the waiting row sent by m1", PATIENCE, || async {
        matches!(status_of(&rig, waiting).as_str(), "sent" | "delivered")
    })
    .await;
    assert!(
        rig.messages(Direction::Outbound)
            .await
            .iter()
            .all(|m| m.status != Status::Sending)
    );

    let unknown = handle.remove_modem("nope").await;
    assert!(
        matches!(unknown, Err(GatewayError::UnknownModem { ref id }) if id == "nope"),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_is_live_while_its_loop_turns_and_not_once_it_stops() {
    let mut rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let handle = rig.handle();
    // The dispatcher turns at least every poll interval (500 ms here) when idle.
    wait_until("a fresh heartbeat", PATIENCE, || async {
        handle.heartbeat_age() < Duration::from_millis(800)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        handle.heartbeat_age() < Duration::from_millis(800),
        "{:?}",
        handle.heartbeat_age()
    );
    assert!(handle.is_live());
    rig.stop_gateway().await;
    assert!(!handle.is_live(), "a stopped gateway is not live");
    let late = handle.add_modem(second_modem()).await;
    assert!(matches!(late, Err(GatewayError::Stopped)), "{late:?}");
}
