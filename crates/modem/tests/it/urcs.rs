//! URCs reach the bounded channel, also from the middle of a response, and a slow receiver
//! neither loses them (up to the backlog) nor wedges the task.

use conductor_at::Urc;
use conductor_modem::{ModemConfig, RegistrationSummary};

use crate::util::*;

async fn next_urc(bench: &mut Bench) -> Urc {
    within("a URC", bench.modem.urcs.recv())
        .await
        .expect("the URC channel is open")
}

/// Skips restart notices and noise until a `+CMTI`.
async fn next_stored(bench: &mut Bench) -> (String, u32) {
    loop {
        if let Urc::MessageStored { storage, index } = next_urc(bench).await {
            return (storage, index);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_cmti_in_the_middle_of_a_listing_reaches_the_urc_channel_and_the_listing_stays_whole() {
    let mut bench = Bench::start(handler(|line| match line {
        "AT+CMGL=4" => vec![
            Action::Line("+CMGL: 0,1,,23".into()),
            Action::Line(PDU_A.into()),
            Action::Line("+CMTI: \"SM\",2".into()),
            Action::Line("^RSSI:14".into()),
            Action::Line("+CMGL: 1,0,,23".into()),
            Action::Line(PDU_B.into()),
            Action::Line("OK".into()),
        ],
        other => healthy(other),
    }));
    bench.ready().await;
    let entries = bench.modem.handle.list_messages().await.expect("listing");
    assert_eq!(entries.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(next_stored(&mut bench).await, ("SM".to_owned(), 2));
}

#[tokio::test(start_paused = true)]
async fn a_urc_between_commands_is_delivered_at_once() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    peer.inject("+CMTI: \"ME\",7").await;
    assert_eq!(next_stored(&mut bench).await, ("ME".to_owned(), 7));
}

#[tokio::test(start_paused = true)]
async fn a_status_report_with_its_pdu_line_arrives_as_one_urc() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    peer.write(
        b"\r\n+CDS: 25\r\n07913366003051F506170B913366304381F9520120110500405201201105104000\r\n",
    )
    .await;
    loop {
        if let Urc::StatusReport { length, pdu } = next_urc(&mut bench).await {
            assert_eq!(length, 25);
            assert!(pdu.is_some_and(|p| p.starts_with("0791")));
            break;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_registration_urc_updates_the_published_state() {
    let bench = Bench::start(handler(healthy));
    let mut bench = bench;
    let peer = bench.next_peer().await;
    bench.ready().await;
    peer.inject("+CREG: 3").await;
    peer.inject("+CGREG: 3").await;
    peer.inject("+CEREG: 2").await;
    bench
        .wait_state("registration to drop to searching", |s| {
            s.registration == Some(RegistrationSummary::Searching)
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_receiver_gets_every_urc_in_order_up_to_the_backlog() {
    let config = ModemConfig {
        urc_queue: 4,
        ..config()
    };
    let mut bench = Bench::start_with(config, handler(healthy), 0);
    let peer = bench.next_peer().await;
    bench.ready().await;
    // Drain what init produced (nothing, with a healthy script) by letting the task idle.
    for index in 0..8 {
        peer.inject(&format!("+CMTI: \"SM\",{index}")).await;
    }
    // Commands still run while nobody reads URCs.
    bench.modem.handle.signal().await.expect("signal");
    let mut seen = Vec::new();
    while seen.len() < 8 {
        let (_, index) = next_stored(&mut bench).await;
        seen.push(index);
    }
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    assert_eq!(bench.modem.state.borrow().urcs_dropped, 0);
}

#[tokio::test(start_paused = true)]
async fn urcs_beyond_the_backlog_are_dropped_counted_and_the_task_keeps_answering() {
    let config = ModemConfig {
        urc_queue: 2,
        ..config()
    };
    let mut bench = Bench::start_with(config, handler(healthy), 0);
    let peer = bench.next_peer().await;
    bench.ready().await;
    for index in 0..10 {
        peer.inject(&format!("+CMTI: \"SM\",{index}")).await;
    }
    bench.modem.handle.signal().await.expect("signal");
    let state = bench
        .wait_state("drops to be counted", |s| s.urcs_dropped > 0)
        .await;
    assert_eq!(state.urcs_dropped, 6, "2 in the channel, 2 in the backlog");
    assert_eq!(next_stored(&mut bench).await.1, 0, "the oldest are kept");
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_calls_the_modem_for_each_cmti_never_deadlocks_with_a_full_channel() {
    let config = ModemConfig {
        urc_queue: 1,
        ..config()
    };
    let mut bench = Bench::start_with(config, handler(healthy), 0);
    let peer = bench.next_peer().await;
    bench.ready().await;
    for index in 0..2 {
        peer.inject(&format!("+CMTI: \"SM\",{index}")).await;
    }
    let mut read = 0;
    while read < 2 {
        next_stored(&mut bench).await;
        // The gateway's reaction: read the slot while more URCs may be queued.
        bench.modem.handle.read(0).await.expect("read");
        read += 1;
    }
}
