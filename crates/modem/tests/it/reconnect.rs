//! Promise 6: the modem may vanish. Lost connections, hung modems and restarts fail what is
//! running, then the task backs off (virtual time), reconnects and re-runs init.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conductor_modem::{ModemConfig, ModemError, Phase};
use tokio::time::Instant;

use crate::util::*;

#[tokio::test(start_paused = true)]
async fn a_peer_that_closes_fails_the_running_request_and_the_task_reconnects_and_reinits() {
    let mut bench = Bench::start_each(config(), 0, |n| {
        handler(move |line| match line {
            // The first modem dies while answering a read.
            "AT+CMGR=3" if n == 0 => vec![Action::Close],
            other => healthy(other),
        })
    });
    let first = bench.next_peer().await;
    bench.ready().await;
    let error = bench.modem.handle.read(3).await.expect_err("lost");
    assert!(
        matches!(error, ModemError::Disconnected { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    let lost_at = Instant::now();
    let second = bench.next_peer().await;
    assert!(first.commands().contains(&"AT+CMGR=3".to_owned()));
    let state = bench
        .wait_state("ready again", |s| s.is_ready() && s.outages == 1)
        .await;
    assert_eq!(state.last_error, None);
    second.wait_for("AT+CNMI=2,1,0,2,0").await;
    let times = bench.attempt_times();
    assert_eq!(times.len(), 2);
    assert!(times[1] - lost_at >= Duration::from_secs(1), "backed off");
    assert!(bench.modem.handle.signal().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_drops_after_serving_a_while_is_retried_after_the_initial_delay_each_time() {
    // Three modems in a row, each up for 10 s and then gone in the middle of a read: three
    // separate outages, each retried after the initial 1 s, not after 1, 2 then 4 s.
    let mut bench = Bench::start_each(config(), 0, |n| {
        handler(move |line| match line {
            "AT+CMGR=3" if n < 3 => vec![Action::Close],
            other => healthy(other),
        })
    });
    let mut losses = Vec::new();
    for _ in 0..3 {
        let _peer = bench.next_peer().await;
        bench.ready().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _ = bench.modem.handle.read(3).await;
        losses.push(Instant::now());
    }
    let _last = bench.next_peer().await;
    bench.ready().await;
    let times = bench.attempt_times();
    assert_eq!(times.len(), 4);
    for (lost, retried) in losses.iter().zip(&times[1..]) {
        let gap = *retried - *lost;
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_secs(2),
            "retried {gap:?} after the loss"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn failed_opens_back_off_doubling_up_to_the_cap_then_the_modem_is_used() {
    let bench = Bench::start_with(config(), handler(healthy), 7);
    bench.ready().await;
    let times = bench.attempt_times();
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    // Doubling, then the 30 s cap with jitter (22.5 to 30 s) so retries at the cap do not
    // fall in step with a fault that repeats on a schedule.
    assert_eq!(gaps[..5], [1, 2, 4, 8, 16]);
    assert!(gaps[5..].iter().all(|g| (22..=30).contains(g)), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn an_open_failure_is_published_with_its_advice_while_the_task_retries() {
    let bench = Bench::start_with(config(), handler(healthy), 1_000);
    let state = bench
        .wait_state("the open failure", |s| s.last_error.is_some())
        .await;
    assert_eq!(state.phase, Phase::Disconnected);
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("plugged in"), "{error}");
    let later = bench.wait_state("more attempts", |_| true).await;
    assert_eq!(later.phase, Phase::Disconnected);
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_stops_answering_is_reopened_after_consecutive_timeouts() {
    let hung = Arc::new(AtomicBool::new(false));
    let flag = hung.clone();
    let config = ModemConfig {
        refresh_interval: Some(Duration::from_secs(30)),
        ..config()
    };
    let mut bench = Bench::start_each(config, 0, move |n| {
        let flag = flag.clone();
        handler(move |line| {
            if n == 0 && flag.load(Ordering::SeqCst) {
                silence()
            } else {
                healthy(line)
            }
        })
    });
    bench.next_peer().await;
    bench.ready().await;
    hung.store(true, Ordering::SeqCst);
    // The periodic refresh is the keep-alive: its commands time out, and after three in a
    // row the task gives up on this connection.
    let second = bench.next_peer().await;
    second.wait_for("AT").await;
    let state = bench
        .wait_state("ready on the new connection", |s| {
            s.is_ready() && s.outages == 1
        })
        .await;
    assert_eq!(state.phase, Phase::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_request_running_when_the_modem_hangs_gets_a_timeout() {
    let hung = Arc::new(AtomicBool::new(false));
    let flag = hung.clone();
    let bench = Bench::start(handler(move |line| {
        if flag.load(Ordering::SeqCst) {
            silence()
        } else {
            healthy(line)
        }
    }));
    bench.ready().await;
    hung.store(true, Ordering::SeqCst);
    let error = bench.modem.handle.signal().await.expect_err("timeout");
    assert!(matches!(error, ModemError::Timeout { .. }), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test(start_paused = true)]
async fn a_restart_notice_while_idle_reruns_init_on_the_same_connection() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    // A booting modem's burst: one re-init, not one per line.
    for notice in ["RDY", "+CFUN: 1", "+CPIN: READY", "SMS Ready", "PB DONE"] {
        peer.inject(notice).await;
    }
    bench
        .wait_state("ready after re-init", |s| s.is_ready() && s.outages == 1)
        .await;
    peer.wait_for_count("AT", 2).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(peer.commands().iter().filter(|c| *c == "AT").count(), 2);
    assert_eq!(bench.attempt_times().len(), 1, "no reconnect needed");
    assert!(bench.modem.handle.signal().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_restart_during_a_request_fails_it_as_rebooted() {
    let restarted = Arc::new(AtomicBool::new(false));
    let flag = restarted.clone();
    let bench = Bench::start(handler(move |line| match line {
        "AT+CMGR=3" if !flag.swap(true, Ordering::SeqCst) => line_rdy(),
        other => healthy(other),
    }));
    bench.ready().await;
    let error = bench.modem.handle.read(3).await.expect_err("rebooted");
    assert!(matches!(error, ModemError::Rebooted { .. }), "{error:?}");
    assert!(error.is_transient());
    bench
        .wait_state("ready after re-init", |s| s.is_ready() && s.outages == 1)
        .await;
    assert!(bench.modem.handle.signal().await.is_ok());
}

fn line_rdy() -> Vec<Action> {
    vec![Action::Line("RDY".into())]
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_running_command_finish_then_stops_the_task() {
    let mut bench = Bench::start(handler(|line| match line {
        "AT+CSQ" => {
            let mut slow = vec![Action::Sleep(Duration::from_secs(3))];
            slow.extend(healthy(line));
            slow
        }
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let handle = bench.modem.handle.clone();
    let running = tokio::spawn(async move { handle.signal().await });
    // Init sent the first AT+CSQ; the second is the request.
    peer.wait_for_count("AT+CSQ", 2).await;
    bench.shutdown.cancel();
    let answer = within("the running command", running)
        .await
        .expect("joined");
    assert!(answer.is_ok(), "{answer:?}");
    bench
        .wait_state("the task to stop", |s| s.phase == Phase::Stopped)
        .await;
    within("the task to end", &mut bench.modem.task)
        .await
        .expect("no panic");
    assert!(matches!(
        bench.modem.handle.signal().await,
        Err(ModemError::Stopped)
    ));
}

#[tokio::test(start_paused = true)]
async fn the_task_stops_when_every_handle_is_dropped() {
    let bench = Bench::start(handler(healthy));
    bench.ready().await;
    let Bench { modem, .. } = bench;
    let task = modem.task;
    drop(modem.handle);
    within("the task to end", task).await.expect("no panic");
}
