//! Calls and the balance check: an injected call is logged once as a `call` event and
//! rejected, the auto-reply goes to the caller once, a second call within the hour gets
//! none; the balance check runs on the gateway's clock and records the amount.

use std::time::Duration;

use conductor_gateway::{BalanceCheck, CallSettings};
use conductor_store::Event;
use serde_json::json;

use crate::util::{Rig, gateway_config, sim_config, wait_until};

async fn events(rig: &Rig, kind: &str) -> Vec<Event> {
    rig.store
        .events_since(0, 10_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

async fn control(rig: &Rig, request: serde_json::Value) -> serde_json::Value {
    let reply = conductor_sim::control::handle_line(rig.sim(), &request.to_string()).await;
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    assert_eq!(reply["ok"], true, "{reply}");
    reply
}

#[tokio::test]
async fn a_call_is_logged_rejected_and_answered_once_per_caller() {
    let mut config = gateway_config(1);
    config.modems[0].calls = CallSettings {
        reject: true,
        auto_reply: Some("SMS only, please".into()),
        ..CallSettings::default()
    };
    let rig = Rig::new(sim_config(), config, true).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    let caller = "+33612345678";
    control(
        &rig,
        json!({"op": "call", "from": caller, "rings": 5, "interval_ms": 500}),
    )
    .await;
    wait_until("the call event", Duration::from_secs(20), || async {
        !events(&rig, "call").await.is_empty()
    })
    .await;
    let call = &events(&rig, "call").await[0];
    let detail = call.detail.clone().unwrap_or_default();
    assert_eq!(detail["number"], caller, "{detail}");
    assert_eq!(detail["rejected"], true, "{detail}");
    assert!(detail["auto_reply"]["message_id"].is_i64(), "{detail}");
    let calls = control(&rig, json!({"op": "calls"})).await;
    assert_eq!(calls["calls"][0]["outcome"], "rejected", "{calls}");
    wait_until(
        "the auto-reply to leave",
        Duration::from_secs(20),
        || async {
            rig.sim()
                .outside()
                .await
                .iter()
                .any(|m| m.text.as_deref() == Some("SMS only, please"))
        },
    )
    .await;

    // The caller redials: logged and rejected again, but no second reply.
    control(
        &rig,
        json!({"op": "call", "from": caller, "rings": 5, "interval_ms": 500}),
    )
    .await;
    wait_until("the second call event", Duration::from_secs(20), || async {
        events(&rig, "call").await.len() == 2
    })
    .await;
    let second = events(&rig, "call").await[1]
        .detail
        .clone()
        .unwrap_or_default();
    assert_eq!(second["rejected"], true, "{second}");
    assert_eq!(second["auto_reply"], "skipped: replied within the interval");
    let replies = rig
        .messages(conductor_store::Direction::Outbound)
        .await
        .into_iter()
        .filter(|m| m.content == "SMS only, please")
        .count();
    assert_eq!(replies, 1);
    assert_eq!(events(&rig, "call").await.len(), 2, "one event per call");
}

#[tokio::test]
async fn the_balance_check_runs_on_the_gateway_clock_and_records_the_amount() {
    let mut config = gateway_config(1);
    config.modems[0].balance = Some(BalanceCheck {
        code: "*100#".into(),
        every: Duration::from_secs(3600),
        low_below: Some(20.0),
    });
    let rig = Rig::new(sim_config(), config, true).await;
    wait_until(
        "the first balance check",
        Duration::from_secs(20),
        || async { !events(&rig, "balance_checked").await.is_empty() },
    )
    .await;
    let first = events(&rig, "balance_checked").await[0]
        .detail
        .clone()
        .unwrap_or_default();
    assert_eq!(first["amount"], 12.34, "{first}");
    assert_eq!(first["low_below"], 20.0, "{first}");
    control(
        &rig,
        json!({"op": "ussd", "code": "*100#", "text": "Solde: 3,10 EUR"}),
    )
    .await;
    // Not due for an hour on the gateway's clock; a jump makes it due.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(events(&rig, "balance_checked").await.len(), 1);
    rig.clock.advance(Duration::from_secs(3601));
    wait_until(
        "the second balance check",
        Duration::from_secs(20),
        || async { events(&rig, "balance_checked").await.len() == 2 },
    )
    .await;
    let second = events(&rig, "balance_checked").await[1]
        .detail
        .clone()
        .unwrap_or_default();
    assert_eq!(second["amount"], 3.1, "{second}");
}

#[tokio::test]
async fn rings_queued_behind_the_hang_up_are_not_a_second_call() {
    let mut config = gateway_config(1);
    config.modems[0].calls = CallSettings {
        reject: true,
        ..CallSettings::default()
    };
    let rig = Rig::new(sim_config(), config, true).await;
    rig.wait_modem("m0", conductor_store::ModemState::Ready)
        .await;
    // RINGs every 10 ms: several are on their way while `AT+CHUP` is.
    for caller in ["+33612345678", "+33687654321"] {
        control(
            &rig,
            json!({"op": "call", "from": caller, "rings": 100, "interval_ms": 10}),
        )
        .await;
        wait_until(
            "the call to be rejected",
            Duration::from_secs(20),
            || async {
                let calls = control(&rig, json!({"op": "calls"})).await;
                calls["calls"]
                    .as_array()
                    .and_then(|c| c.last())
                    .is_some_and(|c| c["from"] == caller && c["outcome"] == "rejected")
            },
        )
        .await;
    }
    // The second caller's URCs come after every stray one of the first (one queue), so once
    // its event is there, a stray would be too.
    wait_until("the second call event", Duration::from_secs(20), || async {
        events(&rig, "call").await.iter().any(|e| {
            e.detail
                .as_ref()
                .is_some_and(|d| d["number"] == "+33687654321")
        })
    })
    .await;
    let numbers: Vec<_> = events(&rig, "call")
        .await
        .into_iter()
        .map(|e| e.detail.unwrap_or_default()["number"].clone())
        .collect();
    assert_eq!(numbers, [json!("+33612345678"), json!("+33687654321")]);
}
