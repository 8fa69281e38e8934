//! The sending policy (issue 11) against the virtual network: numbers, limits, routing,
//! priority, quiet hours, expiry, opt-out, transliteration and the part limit.
//!
//! Windows pass on the gateway's [`conductor_gateway::ManualClock`], so an hour or a month
//! passes in an instant; every wait is a condition with a deadline.

use std::time::Duration;

use conductor_gateway::{Limits, PrefixRule, QuietHours};
use conductor_sim::{Fault, FaultKind};
use conductor_store::{Direction, MessageId, ModemId, ModemState, Status};
use jiff::tz::TimeZone;

use crate::util::{PATIENCE, Rig, extra_modem, gateway_config, outbound, sim_config, wait_until};

async fn wait_status(rig: &Rig, id: MessageId, status: Status) {
    wait_until(&format!("#{id} to be {status}"), PATIENCE, || async {
        rig.status_of(id).await == status
    })
    .await;
}

async fn wait_sent(rig: &Rig, id: MessageId) {
    wait_until(&format!("#{id} to be sent"), PATIENCE, || async {
        matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
    })
    .await;
}

async fn wait_held(rig: &Rig, id: MessageId, by: &str) {
    wait_until(&format!("#{id} to be held by {by}"), PATIENCE, || async {
        let m = rig.message(id).await.message;
        m.status == Status::Queued && m.held_by.as_deref() == Some(by)
    })
    .await;
}

/// One limit: the last of `to` waits, named by its limit, and goes once `window` has passed.
async fn limit_holds_and_releases(
    limits: Limits,
    recipient_per_hour: Option<u32>,
    to: &[&str],
    window: Duration,
    name: &str,
) {
    let mut config = gateway_config(1);
    config.modems[0].limits = limits;
    config.outbound.recipient_per_hour = recipient_per_hour;
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let mut ids = Vec::new();
    for (i, number) in to.iter().enumerate() {
        ids.push(
            rig.queue(number, &format!("limit {name} message {i}"))
                .await,
        );
    }
    let (last, first) = ids.split_last().expect("ids");
    for id in first {
        wait_sent(&rig, *id).await;
    }
    wait_held(&rig, *last, name).await;
    let row = rig.message(*last).await;
    let reason = row.message.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(name) && reason.contains("goes at"),
        "{reason}"
    );
    // Polls go on while it waits; the event log says so once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rig.status_of(*last).await, Status::Queued, "{name}");
    let held = rig.message(*last).await.history;
    assert_eq!(
        held.iter().filter(|e| e.kind == "held").count(),
        1,
        "{held:?}"
    );
    assert_eq!(rig.sim().submitted().await.len(), first.len(), "{name}");

    rig.clock.advance(window + Duration::from_secs(1));
    wait_sent(&rig, *last).await;
    let row = rig.message(*last).await.message;
    assert_eq!(row.held_by, None, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_holds_a_message_until_its_window_passes() {
    const A: &str = "+4915100000001";
    const B: &str = "+4915100000002";
    const C: &str = "+4915100000003";
    let minute = Duration::from_secs(60);
    let hour = Duration::from_secs(3600);
    let day = Duration::from_secs(24 * 3600);
    let cases = [
        (
            Limits {
                per_minute: Some(2),
                ..Limits::default()
            },
            None,
            minute,
            "per_minute",
        ),
        (
            Limits {
                per_hour: Some(2),
                ..Limits::default()
            },
            None,
            hour,
            "per_hour",
        ),
        (
            Limits {
                per_day: Some(2),
                ..Limits::default()
            },
            None,
            day,
            "per_day",
        ),
        (
            Limits {
                recipients_per_day: Some(2),
                ..Limits::default()
            },
            None,
            day,
            "recipients_per_day",
        ),
        (
            Limits {
                recipients_per_month: Some(2),
                ..Limits::default()
            },
            None,
            30 * day,
            "recipients_per_month",
        ),
    ];
    for (limits, per_recipient, window, name) in cases {
        limit_holds_and_releases(limits, per_recipient, &[A, B, C], window, name).await;
    }
    // Per recipient: three to the same number, over any modem.
    limit_holds_and_releases(
        Limits::default(),
        Some(2),
        &[A, A, A],
        hour,
        "recipient_per_hour",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_parts_so_a_long_text_fills_a_window_alone() {
    let mut config = gateway_config(1);
    config.modems[0].limits.per_minute = Some(3);
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    // 3 parts of GSM 7-bit fill the minute; a short one after it waits.
    let long = rig.queue("+4915100000001", &"x".repeat(400)).await;
    let short = rig.queue("+4915100000002", "short").await;
    wait_sent(&rig, long).await;
    wait_held(&rig, short, "per_minute").await;
    rig.clock.advance(Duration::from_secs(61));
    wait_sent(&rig, short).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_are_normalised_at_claim_and_what_is_not_a_number_fails_with_the_reason() {
    let mut config = gateway_config(1);
    config.outbound.numbers.default_country_code = Some("+49".to_owned());
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let external = rig.external();
    let insert = |to: &str, text: &str| -> MessageId {
        external
            .execute(
                "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
                 VALUES (?, ?, datetime('now'), 'queued', 'outbound')",
                [to, text],
            )
            .expect("the contract INSERT");
        MessageId(external.last_insert_rowid())
    };
    let national = insert("0151 2345-6789", "Your table is ready");
    let same = insert("+49 (151) 2345 6789", "Your table is ready");
    let bad = insert("call me", "hello");
    wait_sent(&rig, national).await;
    wait_status(&rig, same, Status::Duplicate).await;
    wait_status(&rig, bad, Status::Failed).await;

    let detail = rig.message(national).await;
    assert_eq!(detail.message.phone_number, "+4915123456789");
    let normalised = detail
        .history
        .iter()
        .find(|e| e.kind == "number_normalized")
        .expect("the original is in the event log");
    assert_eq!(
        normalised.detail.as_ref().and_then(|d| d["from"].as_str()),
        Some("0151 2345-6789")
    );
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].to, "+4915123456789");
    let reason = rig.message(bad).await.message.reason.unwrap_or_default();
    assert!(reason.contains("letters"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_over_three_modems_skips_the_one_that_is_down() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    sim.extra_modems.push(extra_modem("+15550000003"));
    let mut config = gateway_config(3);
    config.outbound.routing.sticky = true;
    config.outbound.routing.prefixes = vec![
        PrefixRule {
            prefix: "+44".into(),
            modem: ModemId::from("m2"),
        },
        PrefixRule {
            prefix: "+33".into(),
            modem: ModemId::from("m1"),
        },
    ];
    let rig = Rig::new(sim, config, true).await;
    for m in ["m0", "m1", "m2"] {
        rig.wait_modem(m, ModemState::Ready).await;
    }
    rig.sim()
        .fault("modem1", &Fault::Unplug { seconds: None })
        .await
        .expect("unplug");
    rig.wait_modem("m1", ModemState::Down).await;

    // Sticky: the modem a number last wrote to answers it.
    let friend = "+4915199999999";
    rig.sim()
        .inject_text("modem0", friend, "hi, are you there?", false)
        .await
        .expect("inject");
    wait_until("the inbound row", PATIENCE, || async {
        !rig.inbound().await.is_empty()
    })
    .await;
    let reply = rig.queue(friend, "yes, here").await;
    // By prefix: +44 through m2.
    let uk = rig.queue("+447700900001", "uk").await;
    // Prefix rule to a modem that is down: the strategy picks another.
    let fr = rig.queue("+33612345678", "fr").await;
    // Round robin over the modems that are up: m0 and m2, never m1.
    let mut spread = Vec::new();
    for i in 0..6 {
        spread.push(
            rig.queue(&format!("+1555000100{i}"), &format!("rr {i}"))
                .await,
        );
    }
    // A row naming the modem that is down waits for it, saying so.
    let mut named = outbound("+4915100000009", "only via m1");
    named.modem_id = Some(ModemId::from("m1"));
    let named = rig.queue_with(named).await;

    let rig = &rig;
    let modem_of = |id: MessageId| async move {
        rig.message(id)
            .await
            .message
            .sending_modem
            .map(|m| m.0)
            .unwrap_or_default()
    };
    for id in [reply, uk, fr].iter().chain(&spread) {
        wait_sent(rig, *id).await;
    }
    assert_eq!(modem_of(reply).await, "m0");
    assert_eq!(modem_of(uk).await, "m2");
    assert_ne!(modem_of(fr).await, "m1");
    let mut used = std::collections::HashSet::new();
    for id in &spread {
        used.insert(modem_of(*id).await);
    }
    assert_eq!(
        used,
        ["m0", "m2"].iter().map(|s| s.to_string()).collect(),
        "round robin over the modems that are up"
    );
    wait_held(rig, named, "modem_not_ready").await;
    let reason = rig.message(named).await.message.reason.unwrap_or_default();
    assert!(reason.contains("modem m1"), "{reason}");

    rig.sim()
        .clear_fault("modem1", Some(FaultKind::Unplug))
        .await
        .ok();
    rig.wait_modem("m1", ModemState::Ready).await;
    wait_sent(rig, named).await;
    assert_eq!(modem_of(named).await, "m1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_row_overtakes_a_queue_of_bulk_sends() {
    let mut rig = Rig::new(sim_config(), gateway_config(1), false).await;
    let now = jiff::Timestamp::now();
    let mut bulk = Vec::new();
    for i in 0..12 {
        let row = outbound(&format!("+4915100001{i:03}"), &format!("newsletter {i}"));
        bulk.push(rig.store.queue_outbound(row, now).await.expect("queued"));
    }
    let mut urgent = outbound("+4915100009999", "Your login code is 4711");
    urgent.priority = 10;
    let urgent = rig.store.queue_outbound(urgent, now).await.expect("queued");
    rig.start_gateway().await;
    for id in bulk.iter().chain([&urgent]) {
        wait_sent(&rig, *id).await;
    }
    let submitted = rig.sim().submitted().await;
    let first = submitted
        .iter()
        .min_by_key(|s| s.first_at_ms)
        .expect("submissions");
    assert_eq!(first.text.as_deref(), Some("Your login code is 4711"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_rows_and_expiry_ends_those_still_queued() {
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(TimeZone::UTC)
        .time();
    let mut config = gateway_config(1);
    config.outbound.quiet_hours = Some(QuietHours {
        start: now.wrapping_sub(jiff::SignedDuration::from_hours(1)),
        end: now.wrapping_add(jiff::SignedDuration::from_hours(2)),
        time_zone: TimeZone::UTC,
    });
    config.outbound.default_ttl = Some(Duration::from_secs(3 * 3600));
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;

    let waits = rig
        .queue("+4915100000001", "Our sale starts tomorrow")
        .await;
    let mut code = outbound("+4915100000002", "Your code is 1234");
    code.transactional = true;
    let code = rig.queue_with(code).await;
    let mut soon = outbound("+4915100000003", "Table for two at 8?");
    soon.expires_at = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30));
    let soon = rig.queue_with(soon).await;

    wait_sent(&rig, code).await;
    wait_held(&rig, waits, "quiet_hours").await;
    wait_held(&rig, soon, "quiet_hours").await;
    let reason = rig.message(waits).await.message.reason.unwrap_or_default();
    assert!(reason.contains("quiet hours"), "{reason}");

    // An hour on: still quiet; the row with its own 30-minute expiry is not sent late.
    rig.clock.advance(Duration::from_secs(3600));
    wait_status(&rig, soon, Status::Expired).await;
    let reason = rig.message(soon).await.message.reason.unwrap_or_default();
    assert!(reason.contains("expired"), "{reason}");
    assert_eq!(rig.status_of(waits).await, Status::Queued);

    // Quiet hours over: the held row goes.
    rig.clock.advance(Duration::from_secs(3600));
    wait_sent(&rig, waits).await;
    let texts: Vec<_> = rig
        .sim()
        .submitted()
        .await
        .into_iter()
        .filter_map(|s| s.text)
        .collect();
    assert!(
        !texts.iter().any(|t| t.contains("Table for two")),
        "{texts:?}"
    );

    // The default TTL: a row held by quiet hours the next night expires three hours after
    // it became due.
    let mut later = outbound("+4915100000004", "Reminder");
    later.send_at = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(21));
    let later = rig.queue_with(later).await;
    rig.clock.advance(Duration::from_secs(24 * 3600));
    wait_status(&rig, later, Status::Expired).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_blocks_the_sender_and_start_unblocks_it() {
    let mut sim = sim_config();
    sim.extra_modems.push(extra_modem("+15550000002"));
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let who = "+4915177777777";
    rig.sim()
        .inject_text("modem0", who, " Stop ", false)
        .await
        .expect("inject");
    wait_until("the block", PATIENCE, || async {
        rig.store
            .blocked_numbers()
            .await
            .expect("the list")
            .iter()
            .any(|b| b.number == who)
    })
    .await;
    let promo = rig.queue(who, "20% off this weekend").await;
    let mut receipt = outbound(who, "Your receipt: 12.50 EUR");
    receipt.transactional = true;
    let receipt = rig.queue_with(receipt).await;
    wait_status(&rig, promo, Status::Blocked).await;
    wait_sent(&rig, receipt).await;
    let reason = rig.message(promo).await.message.reason.unwrap_or_default();
    assert!(reason.contains("block list"), "{reason}");

    rig.sim()
        .inject_text("modem0", who, "start", false)
        .await
        .expect("inject");
    wait_until("the unblock", PATIENCE, || async {
        rig.store
            .blocked_numbers()
            .await
            .expect("the list")
            .is_empty()
    })
    .await;
    let welcome = rig.queue(who, "Welcome back").await;
    wait_sent(&rig, welcome).await;
    let events = rig.store.events_since(0, 10_000).await.expect("events");
    assert!(events.iter().any(|e| e.kind == "number_blocked"));
    assert!(events.iter().any(|e| e.kind == "number_unblocked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transliteration_halves_the_parts_of_a_text_with_typographic_punctuation() {
    let text = "We’re open today – see you soon! ".repeat(4);
    let mut parts = Vec::new();
    for transliterate in [false, true] {
        let mut config = gateway_config(1);
        config.outbound.transliterate = transliterate;
        let rig = Rig::start(config).await;
        rig.wait_modem("m0", ModemState::Ready).await;
        let id = rig.queue("+4915100000001", &text).await;
        wait_sent(&rig, id).await;
        let submitted = rig.sim().submitted().await;
        if transliterate {
            let sent = submitted[0].text.clone().unwrap_or_default();
            assert!(sent.starts_with("We're open today - see"), "{sent}");
        }
        parts.push(submitted.len());
    }
    assert_eq!(
        parts,
        vec![2, 1],
        "UCS-2 as written, GSM 7-bit transliterated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_longer_than_max_parts_fails_with_its_part_count() {
    let mut config = gateway_config(1);
    config.outbound.max_parts = Some(2);
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let external = rig.external();
    external
        .execute(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
             VALUES ('+4915100000001', ?, datetime('now'), 'queued', 'outbound')",
            ["y".repeat(500)],
        )
        .expect("the contract INSERT");
    let id = MessageId(external.last_insert_rowid());
    wait_status(&rig, id, Status::Failed).await;
    let reason = rig.message(id).await.message.reason.unwrap_or_default();
    assert!(reason.contains("needs 4 SMS parts"), "{reason}");
    assert!(rig.sim().submitted().await.is_empty());
    assert!(rig.messages(Direction::Outbound).await.len() == 1);
}
