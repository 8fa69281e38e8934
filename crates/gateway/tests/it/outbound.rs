//! Sending: batches, external inserts, duplicates, retries, permanent refusals, and a crash
//! while the modem holds a send.

use std::time::{Duration, Instant};

use conductor_sim::{Fault, RejectStage, SendLatency};
use conductor_store::{ModemState, Status};

use crate::util::{PATIENCE, Rig, gateway_config, outbound, sim_config, wait_until};

const TO: &str = "+447700900123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_rows_at_one_to_three_seconds_of_latency_are_all_submitted_within_fifteen_seconds() {
    let mut sim = sim_config();
    sim.send_latency = SendLatency::default();
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(rig.queue(TO, &format!("batch message {i}")).await);
    }
    wait_until("five submissions", Duration::from_secs(16), || async {
        rig.sim().submitted().await.len() == 5
    })
    .await;
    let elapsed = started.elapsed();
    assert!(elapsed <= Duration::from_secs(15), "took {elapsed:?}");
    let submitted = rig.sim().submitted().await;
    assert!(submitted.iter().all(|s| s.count == 1), "{submitted:?}");
    // Back to back: at most 3 s per send, no poll interval between them.
    let first = submitted.iter().map(|s| s.first_at_ms).min().unwrap_or(0);
    let last = submitted.iter().map(|s| s.last_at_ms).max().unwrap_or(0);
    assert!(last - first <= 4 * 3000, "{first}..{last} ms");
    for id in ids {
        wait_until("sent", PATIENCE, || async {
            matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_queued_rows_are_each_submitted_exactly_once() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(rig.queue(TO, &format!("bulk {i}")).await);
    }
    wait_until("fifty rows sent", PATIENCE, || async {
        let rows = rig.messages(conductor_store::Direction::Outbound).await;
        rows.len() == 50
            && rows
                .iter()
                .all(|m| matches!(m.status, Status::Sent | Status::Delivered))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 50);
    assert!(submitted.iter().all(|s| s.count == 1), "{submitted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_inserted_by_another_process_with_the_contract_statement_is_sent_within_a_second() {
    let mut config = gateway_config(1);
    config.change_poll_interval = conductor_gateway::GatewayConfig::default().change_poll_interval;
    config.outbound.poll_interval = Duration::from_secs(30);
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let external = rig.external();
    let started = Instant::now();
    external
        .execute(
            "INSERT INTO messages (phone_number, content, timestamp, status, direction) \
             VALUES (?, 'Auto-reply', datetime('now'), 'queued', 'outbound')",
            [TO],
        )
        .expect("the contract INSERT");
    wait_until("the submission", Duration::from_secs(2), || async {
        !rig.sim().submitted().await.is_empty()
    })
    .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted[0].text.as_deref(), Some("Auto-reply"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_inside_the_window_is_not_sent_and_after_the_window_it_is() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let first = rig.queue(TO, "Your code is 1234").await;
    let second = rig.queue(TO, "Your code is 1234").await;
    wait_until("the duplicate to be caught", PATIENCE, || async {
        rig.status_of(second).await == Status::Duplicate
    })
    .await;
    wait_until("the first to be sent", PATIENCE, || async {
        matches!(rig.status_of(first).await, Status::Sent | Status::Delivered)
    })
    .await;
    let detail = rig.message(second).await;
    let reason = detail.message.reason.unwrap_or_default();
    assert!(reason.contains(&format!("#{first}")), "{reason}");
    assert!(detail.history.iter().any(|e| e.kind == "duplicate"));
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].count, 1);

    // Eleven minutes later (on the gateway's clock) the same text is a new message.
    rig.clock.advance(Duration::from_secs(11 * 60));
    let third = rig.queue(TO, "Your code is 1234").await;
    wait_until("the third to be sent", PATIENCE, || async {
        matches!(rig.status_of(third).await, Status::Sent | Status::Delivered)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_refusal_before_the_prompt_is_retried_with_backoff_then_sent() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let congestion = Fault::RejectSends {
        count: 2,
        code: 42,
        stage: RejectStage::BeforePrompt,
    };
    rig.sim().fault("modem0", &congestion).await.expect("fault");
    let id = rig.queue(TO, "try again").await;
    wait_until("sent after two refusals", PATIENCE, || async {
        matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
    })
    .await;
    let detail = rig.message(id).await;
    assert_eq!(detail.message.attempts, 3);
    let retries = detail
        .history
        .iter()
        .filter(|e| e.kind == "retry_scheduled")
        .count();
    assert_eq!(retries, 2, "{:?}", detail.history);
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_the_row_with_the_cms_code_and_its_meaning() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let refusal = Fault::RejectSends {
        count: 1,
        code: 304,
        stage: RejectStage::BeforePrompt,
    };
    rig.sim().fault("modem0", &refusal).await.expect("fault");
    let id = rig.queue(TO, "never").await;
    wait_until("failed", PATIENCE, || async {
        rig.status_of(id).await == Status::Failed
    })
    .await;
    let detail = rig.message(id).await;
    let reason = detail.message.reason.unwrap_or_default();
    assert!(reason.contains("+CMS ERROR 304"), "{reason}");
    let meaning = conductor_modem::CmsCode(304).description();
    assert!(reason.contains(meaning), "{reason}");
    assert_eq!(detail.message.attempts, 1);
    assert!(rig.sim().submitted().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_modem_holds_a_send_leaves_the_row_unknown_and_it_is_never_resent() {
    let mut rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let hold = Fault::HoldSends {
        count: 1,
        submit: true,
    };
    rig.sim().fault("modem0", &hold).await.expect("fault");
    let id = rig.queue(TO, "maybe sent").await;
    // The PDU reached the network; the modem never answers.
    wait_until("the held submission", PATIENCE, || async {
        rig.sim().submitted().await.len() == 1
    })
    .await;
    let detail = rig.message(id).await;
    assert_eq!(detail.message.status, Status::Sending);
    assert_eq!(detail.parts[0].state.as_deref(), Some("sending"));

    rig.crash_gateway().await;
    rig.start_gateway().await;
    // Recovery runs before anything is claimed.
    let detail = rig.message(id).await;
    assert_eq!(detail.message.status, Status::Unknown);
    let reason = detail.message.reason.unwrap_or_default();
    assert!(
        reason.contains(&format!("conductor requeue {id}")),
        "{reason}"
    );
    rig.wait_modem("m0", ModemState::Ready).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].count, 1, "not resent");
    assert_eq!(rig.status_of(id).await, Status::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_modem_spaces_its_messages_and_keeps_the_rest_queued() {
    let mut config = gateway_config(1);
    // One message every 500 ms.
    config.modems[0].rate_limit_per_minute = Some(120);
    let rig = Rig::start(config).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    for i in 0..3 {
        rig.queue(TO, &format!("paced {i}")).await;
    }
    wait_until("three submissions", PATIENCE, || async {
        rig.sim().submitted().await.len() == 3
    })
    .await;
    let mut times: Vec<u64> = rig
        .sim()
        .submitted()
        .await
        .iter()
        .map(|s| s.first_at_ms)
        .collect();
    times.sort_unstable();
    assert!(
        times[1] - times[0] >= 450 && times[2] - times[1] >= 450,
        "{times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_stops_claiming_and_records_the_modem_as_stopped() {
    let mut rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let id = rig.queue(TO, "before shutdown").await;
    wait_until("sent", PATIENCE, || async {
        matches!(rig.status_of(id).await, Status::Sent | Status::Delivered)
    })
    .await;
    let handle = rig.handle();
    rig.stop_gateway().await;
    let status = rig.modem_status("m0").await.expect("a status row");
    assert_eq!(status.state, ModemState::Down);
    assert_eq!(status.last_error.as_deref(), Some("the gateway stopped"));
    let late = handle
        .queue(outbound(TO, "after shutdown"))
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rig.status_of(late).await, Status::Queued);
    assert_eq!(rig.sim().submitted().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_mid_batch_gives_unstarted_rows_back_to_the_queue_and_sends_each_once_after_restart()
 {
    let mut sim = sim_config();
    sim.send_latency = SendLatency::fixed(Duration::from_millis(300));
    let mut rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(rig.queue(TO, &format!("batch row {n}")).await);
    }
    wait_until("the first row sent", PATIENCE, || async {
        matches!(
            rig.status_of(ids[0]).await,
            Status::Sent | Status::Delivered
        )
    })
    .await;
    rig.stop_gateway().await;
    let mut queued = 0;
    for id in &ids {
        match rig.status_of(*id).await {
            Status::Sent | Status::Delivered => {}
            Status::Queued => queued += 1,
            other => panic!("message {id} is {other} after a graceful shutdown"),
        }
    }
    assert!(queued > 0, "the shutdown came before the batch was done");

    rig.start_gateway().await;
    wait_until("every row sent", PATIENCE, || async {
        let mut all = true;
        for id in &ids {
            all &= matches!(rig.status_of(*id).await, Status::Sent | Status::Delivered);
        }
        all
    })
    .await;
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), ids.len());
    assert!(submitted.iter().all(|s| s.count == 1), "{submitted:?}");
}
