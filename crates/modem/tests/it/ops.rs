//! Every typed operation against a scripted modem.

use conductor_at::FinalResult;
use conductor_at::cmd::MessageStatus;
use conductor_modem::{ModemError, RegistrationSummary, SimState};

use crate::util::*;

#[tokio::test(start_paused = true)]
async fn init_brings_a_healthy_modem_to_ready_with_identity_storage_and_settings() {
    let bench = Bench::start(handler(healthy));
    let state = bench.ready().await;
    assert_eq!(state.identity.manufacturer.as_deref(), Some("Conductor"));
    assert_eq!(state.identity.imei.as_deref(), Some("356938035643809"));
    assert_eq!(state.identity.imsi.as_deref(), Some("234150123456789"));
    assert_eq!(
        state.identity.iccid.as_deref(),
        Some("89441000123456789012")
    );
    assert_eq!(state.sim, Some(SimState::Ready));
    assert_eq!(
        state.storage.first().map(|m| m.to_string()),
        Some("SM 2/30 (6.7 % full)".to_owned())
    );
    assert_eq!(state.settings.cnmi.as_deref(), Some("2,1,0,2,0"));
    assert_eq!(state.settings.smsc.as_deref(), Some("+447785016005"));
    assert!(
        state.settings.warnings.is_empty(),
        "{:?}",
        state.settings.warnings
    );
    assert_eq!(state.signal.and_then(|s| s.dbm), Some(-73));
    assert_eq!(state.registration, Some(RegistrationSummary::Home));
    assert_eq!(state.operator.as_deref(), Some("Test Net"));
}

#[tokio::test(start_paused = true)]
async fn list_messages_returns_every_entry_with_its_pdu() {
    let bench = Bench::start(handler(healthy));
    bench.ready().await;
    let entries = bench.modem.handle.list_messages().await.expect("listing");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].index, 0);
    assert_eq!(entries[0].stat, MessageStatus::ReceivedRead);
    assert_eq!(entries[0].pdu, PDU_A);
    assert_eq!(entries[1].index, 1);
    assert_eq!(entries[1].pdu, PDU_B);
}

#[tokio::test(start_paused = true)]
async fn read_returns_the_message_or_none_for_an_empty_slot() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CMGR=9" => cms(321),
        other => healthy(other),
    }));
    bench.ready().await;
    let handle = &bench.modem.handle;
    let message = handle
        .read(0)
        .await
        .expect("read")
        .expect("slot 0 holds a message");
    assert_eq!(message.pdu, PDU_A);
    assert_eq!(
        handle.read(5).await.expect("read"),
        None,
        "bare OK is empty"
    );
    assert_eq!(
        handle.read(9).await.expect("read"),
        None,
        "CMS 321 is empty"
    );
}

#[tokio::test(start_paused = true)]
async fn delete_and_delete_many_send_one_cmgd_per_slot() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let handle = &bench.modem.handle;
    handle.delete(3).await.expect("delete");
    handle.delete_many(&[4, 0]).await.expect("delete many");
    let deletes: Vec<String> = peer
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("AT+CMGD"))
        .collect();
    assert_eq!(deletes, ["AT+CMGD=3", "AT+CMGD=4", "AT+CMGD=0"]);
}

#[tokio::test(start_paused = true)]
async fn delete_many_stops_at_the_first_failure_and_names_the_slot() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CMGD=4" => cms(321),
        other => healthy(other),
    }));
    bench.ready().await;
    let error = bench
        .modem
        .handle
        .delete_many(&[3, 4, 5])
        .await
        .expect_err("slot 4 fails");
    assert!(error.to_string().contains("AT+CMGD=4"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn delete_all_uses_the_delflag_form_when_the_modem_has_it() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    bench.modem.handle.delete_all().await.expect("delete all");
    let deletes: Vec<String> = peer
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("AT+CMGD"))
        .collect();
    assert_eq!(deletes, ["AT+CMGD=0,4"]);
}

#[tokio::test(start_paused = true)]
async fn delete_all_falls_back_to_slot_by_slot_when_delflag_is_refused() {
    let mut bench = Bench::start(handler(|line| match line {
        "AT+CMGD=0,4" => error(),
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    bench.ready().await;
    bench.modem.handle.delete_all().await.expect("delete all");
    let deletes: Vec<String> = peer
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("AT+CMGD"))
        .collect();
    assert_eq!(deletes, ["AT+CMGD=0,4", "AT+CMGD=0", "AT+CMGD=1"]);
}

#[tokio::test(start_paused = true)]
async fn send_pdu_writes_the_pdu_after_the_prompt_and_returns_the_reference() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let reference = bench.modem.handle.send_pdu(SUBMIT).await.expect("sent");
    assert_eq!(reference, 7);
    let log = peer.log();
    let at = log
        .iter()
        .position(|l| l == "AT+CMGS=23")
        .expect("CMGS sent");
    assert_eq!(log.get(at + 1), Some(&format!("PDU {SUBMIT}")));
}

#[tokio::test(start_paused = true)]
async fn queries_parse_signal_registration_operator_sim_identity_smsc_and_storage() {
    let bench = Bench::start(handler(healthy));
    bench.ready().await;
    let handle = &bench.modem.handle;
    let signal = handle.signal().await.expect("signal");
    assert_eq!((signal.dbm, signal.rssi, signal.ber), (Some(-73), 20, None));
    let registration = handle.registration().await.expect("registration");
    assert_eq!(registration.summary, RegistrationSummary::Home);
    assert_eq!(registration.domains.len(), 3);
    assert_eq!(
        handle.operator().await.expect("operator").as_deref(),
        Some("Test Net")
    );
    assert_eq!(handle.sim_state().await.expect("sim"), SimState::Ready);
    let identity = handle.identity().await.expect("identity");
    assert_eq!(identity.model.as_deref(), Some("Scripted"));
    assert_eq!(identity.revision.as_deref(), Some("1.0.0"));
    assert_eq!(
        handle.smsc().await.expect("smsc").as_deref(),
        Some("+447785016005")
    );
    let storage = handle.storage().await.expect("storage");
    assert_eq!(storage.read.memory, "SM");
    assert_eq!(storage.receive.map(|r| r.capacity.total), Some(30));
}

#[tokio::test(start_paused = true)]
async fn registration_is_the_best_of_the_domains_that_answer() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CREG?" => ok_with(&["+CREG: 0,2"]),
        "AT+CGREG?" => error(),
        "AT+CEREG?" => ok_with(&["+CEREG: 0,5"]),
        other => healthy(other),
    }));
    bench.ready().await;
    let report = bench
        .modem
        .handle
        .registration()
        .await
        .expect("registration");
    assert_eq!(report.summary, RegistrationSummary::Roaming);
    assert_eq!(report.domains.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_iccid_comes_from_the_first_vendor_command_that_answers() {
    let mut bench = Bench::start(handler(|command| match command {
        "AT+CCID" | "AT+ICCID" => error(),
        "AT^ICCID?" => line("COMMAND NOT SUPPORT"),
        "AT+QCCID" => ok_with(&["+QCCID: 8949226000123456789F"]),
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    let state = bench.ready().await;
    assert_eq!(state.identity.iccid.as_deref(), Some("8949226000123456789"));
    let tried: Vec<String> = peer
        .commands()
        .into_iter()
        .filter(|c| c.contains("CCID"))
        .collect();
    assert_eq!(tried, ["AT+CCID", "AT+ICCID", "AT^ICCID?", "AT+QCCID"]);
}

#[tokio::test(start_paused = true)]
async fn sim_state_maps_cme_errors_to_states() {
    let absent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = absent.clone();
    let bench = Bench::start(handler(move |line| match line {
        "AT+CPIN?" if flag.load(std::sync::atomic::Ordering::SeqCst) => cme(10),
        other => healthy(other),
    }));
    bench.ready().await;
    absent.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        bench.modem.handle.sim_state().await.expect("sim"),
        SimState::Absent
    );
}

#[tokio::test(start_paused = true)]
async fn the_console_command_returns_errors_as_answers_and_refuses_cmgs() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CFUN?" => ok_with(&["+CFUN: 1"]),
        "AT+BOGUS" => cme(100),
        other => healthy(other),
    }));
    bench.ready().await;
    let handle = &bench.modem.handle;
    let answer = handle.command("AT+CFUN?").await.expect("answer");
    assert!(answer.is_ok());
    assert_eq!(
        answer.lines.first().map(|l| l.text.as_str()),
        Some("+CFUN: 1")
    );
    let refused = handle.command("AT+BOGUS").await.expect("an answer");
    assert!(matches!(refused.result, FinalResult::CmeError(_)));
    assert!(matches!(
        handle.command("AT+CMGS=23").await,
        Err(ModemError::Unsupported { .. })
    ));
    assert!(matches!(
        handle.command("AT\rAT").await,
        Err(ModemError::InvalidCommand(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_console_query_updates_the_published_signal() {
    let bench = Bench::start(handler(healthy));
    bench.ready().await;
    bench.modem.handle.command("AT+CSQ").await.expect("csq");
    assert_eq!(bench.modem.state.borrow().signal.map(|s| s.rssi), Some(20));
}

#[tokio::test(start_paused = true)]
async fn handle_futures_are_send_so_the_gateway_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let bench = Bench::start(handler(healthy));
    bench.ready().await;
    let handle = bench.modem.handle.clone();
    assert_send(&handle.send_pdu(SUBMIT));
    assert_send(&handle.list_messages());
    assert_send(&handle.identity());
    assert_send(&handle.registration());
    let joined = tokio::spawn(async move { handle.signal().await });
    assert!(
        within("a spawned query", joined)
            .await
            .expect("joined")
            .is_ok()
    );
}
