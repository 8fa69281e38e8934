//! The `least_used` routing strategy (issue 11, "Routing"): a row that names no modem goes to
//! the modem that sent the fewest parts in the last 24 hours, where round robin would
//! alternate.

use conductor_gateway::Strategy;
use conductor_store::{MessageId, ModemId, ModemState, NewOutbound, Status};

use crate::util::{PATIENCE, Rig, extra_modem, gateway_config, outbound, sim_config, wait_until};

async fn sending_modem(rig: &Rig, id: MessageId) -> String {
    wait_until(&format!("#{id} to be sent"), PATIENCE, || async {
        matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
    })
    .await;
    rig.message(id)
        .await
        .message
        .sending_modem
        .map(|m| m.0)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_used_sends_through_the_modem_with_the_fewest_parts_today() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let mut config = gateway_config(2);
    config.outbound.routing.strategy = Strategy::LeastUsed;
    let rig = Rig::new(sim, config, true).await;
    for m in ["m0", "m1"] {
        rig.wait_modem(m, ModemState::Ready).await;
    }
    // m0 has sent three parts today.
    for i in 0..3 {
        let id = rig
            .queue_with(NewOutbound {
                modem_id: Some(ModemId::from("m0")),
                ..outbound(&format!("+1555000200{i}"), &format!("named {i}"))
            })
            .await;
        assert_eq!(sending_modem(&rig, id).await, "m0");
    }
    // So the next three unnamed rows, one at a time, all go through m1 (0, 1, 2 parts < 3);
    // round robin would have given one of them to m0.
    for i in 0..3 {
        let id = rig
            .queue(&format!("+1555000300{i}"), &format!("free {i}"))
            .await;
        assert_eq!(
            sending_modem(&rig, id).await,
            "m1",
            "unnamed row {i} goes to the least used modem"
        );
    }
}
