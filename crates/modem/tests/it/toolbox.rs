//! USSD and calls against the in-process virtual modem: a `*100#` answer in GSM 7-bit packed
//! hex (Huawei), UCS-2 hex (Quectel) and decoded text (generic), an answer that comes only
//! as a URC, one call event per call, and rejecting with `AT+CHUP` or, where that is
//! refused, `ATH`.

use std::time::Duration;

use conductor_at::Urc;
use conductor_modem::{CallEvent, CallTracker, HangUp};
use conductor_sim::{Personality, SimulatorConfig};

use crate::util::{Rig, sim_config, within};

/// A simulator with `personality`, and a driver task connected to it and ready.
async fn start(personality: Personality) -> Rig {
    let sim = SimulatorConfig {
        personality,
        ..SimulatorConfig::default()
    };
    let rig = Rig::start(sim, sim_config()).await;
    rig.ready().await;
    rig
}

impl Rig {
    async fn control(&self, request: serde_json::Value) -> serde_json::Value {
        let reply = conductor_sim::control::handle_line(self.sim(), &request.to_string()).await;
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON reply");
        assert_eq!(reply["ok"], true, "{reply}");
        reply
    }

    /// Feeds URCs to a call tracker until it reports `wanted` events or times out.
    async fn call_events(&mut self, tracker: &mut CallTracker, wanted: usize) -> Vec<CallEvent> {
        let mut events = Vec::new();
        within("call events", async {
            while events.len() < wanted {
                let urc = self.modem.urcs.recv().await.expect("URC channel open");
                let now = tokio::time::Instant::now().into_std();
                events.extend(tracker.handle_urc(now, &urc));
            }
        })
        .await;
        events
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn balance(personality: Personality) -> conductor_modem::UssdReply {
    let name = personality.name;
    let rig = start(personality).await;
    let reply = within("the USSD answer", rig.modem.handle.ussd("*100#"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(reply.text, "Your balance is 12.34 EUR", "{name}: {reply:?}");
    assert_eq!(reply.status, 0, "{name}");
    let requests = rig.control(serde_json::json!({"op": "ussd"})).await;
    assert_eq!(requests["requests"], serde_json::json!(["*100#"]), "{name}");
    reply
}

#[tokio::test(start_paused = true)]
async fn ussd_round_trip_in_gsm_7_bit_packed_hex() {
    let reply = balance(Personality::huawei_e173()).await;
    assert_eq!(
        reply.raw.as_deref(),
        Some("D9775D0E1287D961F7B80C4ACF4131996B460315AB52")
    );
    assert_eq!(reply.dcs, Some(15));
}

#[tokio::test(start_paused = true)]
async fn ussd_round_trip_in_ucs2() {
    let reply = balance(Personality::quectel_ec25()).await;
    assert_eq!(reply.dcs, Some(72));
    assert!(
        reply
            .raw
            .as_deref()
            .is_some_and(|r| r.starts_with("0059006F")),
        "{reply:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn ussd_text_already_decoded_and_a_changed_answer_outside_gsm_7_bit() {
    let reply = balance(Personality::generic()).await;
    assert_eq!(reply.raw.as_deref(), Some("Your balance is 12.34 EUR"));
    let rig = start(Personality::generic()).await;
    rig.control(serde_json::json!({"op": "ussd", "code": "*101#", "text": "Solde: 3,20 € ✓"}))
        .await;
    let reply = rig.modem.handle.ussd("*101#").await.expect("answered");
    assert_eq!(reply.text, "Solde: 3,20 € ✓");
    assert_eq!(reply.dcs, Some(72));
    let unknown = rig.modem.handle.ussd("*999#").await.expect("answered");
    assert_eq!(unknown.status, 4, "{unknown:?}");
}

#[tokio::test(start_paused = true)]
async fn an_incoming_call_is_one_event_with_the_number_and_chup_rejects_it() {
    let mut rig = start(Personality::generic()).await;
    rig.control(serde_json::json!({
        "op": "call", "from": "+33612345678", "rings": 3, "interval_ms": 2000
    }))
    .await;
    let mut tracker = CallTracker::default();
    let events = rig.call_events(&mut tracker, 1).await;
    assert_eq!(
        events,
        vec![CallEvent::Incoming {
            number: Some("+33612345678".into()),
            type_of_address: Some(145)
        }]
    );
    let how = rig.modem.handle.hang_up().await.expect("hung up");
    assert_eq!(how, HangUp::Chup);
    assert!(matches!(
        tracker.hung_up().as_slice(),
        [CallEvent::Ended { .. }]
    ));
    // A RING may cross the CHUP on the wire; none comes after it, well past the gap.
    while rig.modem.urcs.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_secs(15)).await;
    while let Ok(urc) = rig.modem.urcs.try_recv() {
        assert!(!matches!(urc, Urc::Ring | Urc::CallerId { .. }), "{urc:?}");
    }
    let calls = rig.control(serde_json::json!({"op": "calls"})).await;
    assert_eq!(calls["calls"][0]["outcome"], "rejected", "{calls}");
    assert_eq!(calls["calls"][0]["rejected_with"], "AT+CHUP", "{calls}");
    assert!(calls["calls"][0]["rings"].as_u64() < Some(3), "{calls}");
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_refuses_chup_is_hung_up_with_ath() {
    let mut rig = start(Personality::simcom_sim800()).await;
    rig.control(serde_json::json!({"op": "call", "from": "+33612345678", "rings": 5}))
        .await;
    let mut tracker = CallTracker::default();
    rig.call_events(&mut tracker, 1).await;
    assert_eq!(
        rig.modem.handle.hang_up().await.expect("hung up"),
        HangUp::Ath
    );
    let calls = rig.control(serde_json::json!({"op": "calls"})).await;
    assert_eq!(calls["calls"][0]["rejected_with"], "ATH", "{calls}");
}

#[tokio::test(start_paused = true)]
async fn a_call_nobody_rejects_ends_when_the_caller_gives_up() {
    let mut rig = start(Personality::generic()).await;
    rig.control(serde_json::json!({"op": "call", "from": "+33612345678", "rings": 2}))
        .await;
    let mut tracker = CallTracker::default();
    let events = rig.call_events(&mut tracker, 2).await;
    assert!(
        matches!(
            events.as_slice(),
            [
                CallEvent::Incoming { .. },
                CallEvent::Ended { rings: 2, .. }
            ]
        ),
        "{events:?}"
    );
    let calls = rig.control(serde_json::json!({"op": "calls"})).await;
    assert_eq!(calls["calls"][0]["outcome"], "missed", "{calls}");
}
