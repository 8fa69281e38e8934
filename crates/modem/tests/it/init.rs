//! Init's cascades: indications, storage, SIM PIN and busy SIM, service centre, echo, a modem
//! left at a prompt, a modem that does not answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conductor_modem::{Condition, ModemConfig, Phase, SimPin, SimState, StatusReportRouting};
use tokio::time::Instant;

use crate::util::*;

fn cnmi_ds(line: &str) -> Option<&str> {
    line.strip_prefix("AT+CNMI=")?.split(',').nth(3)
}

#[tokio::test(start_paused = true)]
async fn when_stored_status_reports_are_rejected_init_sets_csms_0_and_uses_direct_reports() {
    let mut bench = Bench::start(handler(|line| match line {
        l if cnmi_ds(l) == Some("2") => cms(303),
        "AT+CSMS?" => ok_with(&["+CSMS: 1,1,1,1"]),
        "AT+CNMI=2,1,0,1,0" => ok(),
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    let state = bench.ready().await;
    assert_eq!(state.settings.cnmi.as_deref(), Some("2,1,0,1,0"));
    assert_eq!(
        state.settings.status_reports,
        Some(StatusReportRouting::Direct)
    );
    let commands = peer.commands();
    let csms = commands.iter().position(|c| c == "AT+CSMS=0");
    let cnmi = commands.iter().position(|c| c == "AT+CNMI=2,1,0,1,0");
    assert!(csms.is_some() && csms < cnmi, "{commands:?}");
}

#[tokio::test(start_paused = true)]
async fn when_csms_0_is_refused_direct_reports_are_skipped_for_none() {
    let bench = Bench::start(handler(|line| match line {
        l if cnmi_ds(l) == Some("2") => cms(303),
        "AT+CSMS?" => ok_with(&["+CSMS: 1,1,1,1"]),
        "AT+CSMS=0" => error(),
        "AT+CNMI=2,1,0,0,0" => ok(),
        other => healthy(other),
    }));
    let state = bench.ready().await;
    assert_eq!(state.settings.cnmi.as_deref(), Some("2,1,0,0,0"));
    assert_eq!(
        state.settings.status_reports,
        Some(StatusReportRouting::None)
    );
    assert!(
        state
            .settings
            .warnings
            .iter()
            .any(|w| w.contains("status report")),
        "{:?}",
        state.settings.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_accepts_no_cnmi_is_swept_and_never_gets_mt_2_or_3() {
    let mut bench = Bench::start(handler(|line| match line {
        l if l.starts_with("AT+CNMI=") && l != "AT+CNMI=?" => error(),
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    let state = bench.ready().await;
    assert_eq!(state.settings.cnmi, None);
    assert!(
        state.settings.warnings.iter().any(|w| w.contains("sweep")),
        "{:?}",
        state.settings.warnings
    );
    for command in peer.commands() {
        if let Some(args) = command.strip_prefix("AT+CNMI=").filter(|a| *a != "?") {
            assert_eq!(args.split(',').nth(1), Some("1"), "{command}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn without_sim_storage_init_falls_back_to_the_phone_memory() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CPMS=?" => ok_with(&["+CPMS: (\"ME\",\"MT\"),(\"ME\",\"MT\"),(\"ME\",\"MT\")"]),
        "AT+CPMS=\"ME\",\"ME\",\"ME\"" => ok_with(&["+CPMS: 0,23,0,23,0,23"]),
        other => healthy(other),
    }));
    let state = bench.ready().await;
    assert_eq!(
        state.settings.memories,
        Some(["ME".to_owned(), "ME".to_owned(), "ME".to_owned()])
    );
    assert_eq!(
        state.storage.first().map(|m| (m.memory.as_str(), m.total)),
        Some(("ME", 23))
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_sim_storage_selection_falls_back_to_the_next_memory() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CPMS=?" => ok_with(&[
            "+CPMS: (\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\")",
        ]),
        "AT+CPMS=\"SM\",\"SM\",\"SM\"" => error(),
        "AT+CPMS=\"ME\",\"ME\",\"ME\"" => error(),
        "AT+CPMS=\"MT\",\"MT\",\"MT\"" => ok_with(&["+CPMS: 1,100,1,100,1,100"]),
        other => healthy(other),
    }));
    let state = bench.ready().await;
    assert_eq!(
        state.settings.memories.as_ref().map(|m| m[0].as_str()),
        Some("MT")
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_memory_is_used_first() {
    let config = ModemConfig {
        storage: Some("ME".into()),
        ..config()
    };
    let bench = Bench::start_with(
        config,
        handler(|line| match line {
            "AT+CPMS=\"ME\",\"ME\",\"ME\"" => ok_with(&["+CPMS: 0,23,0,23,0,23"]),
            other => healthy(other),
        }),
        0,
    );
    let state = bench.ready().await;
    assert_eq!(
        state.settings.memories.as_ref().map(|m| m[0].as_str()),
        Some("ME")
    );
    assert!(
        state.settings.warnings.is_empty(),
        "{:?}",
        state.settings.warnings
    );
}

/// A SIM that wants `1234` and counts PIN attempts.
fn pin_sim(correct: &'static str, attempts: Arc<AtomicUsize>) -> Handler {
    let mut unlocked = false;
    handler(move |line| {
        if let Some(pin) = line.strip_prefix("AT+CPIN=") {
            attempts.fetch_add(1, Ordering::SeqCst);
            if pin == format!("\"{correct}\"") {
                unlocked = true;
                return ok();
            }
            return cme(16);
        }
        match line {
            "AT+CPIN?" if unlocked => ok_with(&["+CPIN: READY"]),
            "AT+CPIN?" => ok_with(&["+CPIN: SIM PIN"]),
            "AT+CIMI" if !unlocked => cme(11),
            other => healthy(other),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_configured_pin_unlocks_the_sim_once_and_never_shows_up_in_the_state() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let config = ModemConfig {
        pin: Some(SimPin::new("8642")),
        ..config()
    };
    let bench = Bench::start_with(config, pin_sim("8642", attempts.clone()), 0);
    let state = bench.ready().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(state.sim, Some(SimState::Ready));
    assert!(!format!("{state:?}").contains("8642"));
}

#[tokio::test(start_paused = true)]
async fn a_sim_asking_for_a_pin_that_is_not_configured_says_so() {
    let bench = Bench::start(pin_sim("1234", Arc::new(AtomicUsize::new(0))));
    let state = bench
        .wait_state("an init failure", |s| s.last_error.is_some())
        .await;
    assert_eq!(state.phase, Phase::Disconnected);
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("modems[].pin"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_pin_is_sent_once_and_the_modem_stays_down_as_pin_wrong() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let config = ModemConfig {
        pin: Some(SimPin::new("9999")),
        ..config()
    };
    let bench = Bench::start_with(config.clone(), pin_sim("1234", attempts.clone()), 0);
    let state = bench
        .wait_state("the PIN rejection", |s| s.last_error.is_some())
        .await;
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("rejected the configured PIN"), "{error}");
    assert!(!error.contains("9999"), "{error}");
    assert_eq!(state.condition, Some(Condition::PinWrong));
    // Many backoff periods later: no reconnect, no second PIN, still pin_wrong.
    tokio::time::sleep(config.backoff_max * 10).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        bench.attempt_times().len(),
        1,
        "no reconnect after a wrong PIN"
    );
    let state = bench.modem.state.borrow().clone();
    assert_eq!(state.condition, Some(Condition::PinWrong));
    assert_eq!(state.phase, Phase::Disconnected);
    let refused = bench.modem.handle.signal().await.expect_err("parked");
    assert!(refused.to_string().contains("PIN"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn a_busy_sim_is_polled_until_it_is_ready() {
    let polls = Arc::new(AtomicUsize::new(0));
    let count = polls.clone();
    let started = Instant::now();
    let bench = Bench::start(handler(move |line| match line {
        "AT+CPIN?" if count.fetch_add(1, Ordering::SeqCst) < 2 => cme(14),
        other => healthy(other),
    }));
    let state = bench.ready().await;
    assert_eq!(state.sim, Some(SimState::Ready));
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_sim_that_stays_busy_fails_init_after_the_configured_wait() {
    let config = ModemConfig {
        sim_ready_timeout: Duration::from_secs(5),
        ..config()
    };
    let bench = Bench::start_with(
        config,
        handler(|line| match line {
            "AT+CPIN?" => cme(14),
            other => healthy(other),
        }),
        0,
    );
    let state = bench
        .wait_state("an init failure", |s| s.last_error.is_some())
        .await;
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("busy"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn an_empty_smsc_is_set_from_the_configuration() {
    let config = ModemConfig {
        smsc: Some("+447958879879".into()),
        ..config()
    };
    let mut bench = Bench::start_with(
        config,
        handler(|line| match line {
            "AT+CSCA?" => ok_with(&["+CSCA: \"\",129"]),
            "AT+CSCA=\"+447958879879\",145" => ok(),
            other => healthy(other),
        }),
        0,
    );
    let peer = bench.next_peer().await;
    let state = bench.ready().await;
    assert_eq!(state.settings.smsc.as_deref(), Some("+447958879879"));
    assert!(
        peer.commands()
            .contains(&"AT+CSCA=\"+447958879879\",145".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_smsc_without_configuration_is_a_clear_warning() {
    let bench = Bench::start(handler(|line| match line {
        "AT+CSCA?" => ok_with(&["+CSCA: \"\",129"]),
        other => healthy(other),
    }));
    let state = bench.ready().await;
    assert_eq!(state.settings.smsc, None);
    assert!(
        state
            .settings
            .warnings
            .iter()
            .any(|w| w.contains("330") && w.contains("modems[].smsc")),
        "{:?}",
        state.settings.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_echoes_until_ate0_including_ate0_itself_initialises() {
    let mut echo = true;
    let bench = Bench::start(handler(move |line| {
        let mut answer = Vec::new();
        if echo {
            answer.push(Action::Line(line.to_owned()));
        }
        if line == "ATE0" {
            echo = false;
        }
        answer.extend(healthy(line));
        answer
    }));
    let state = bench.ready().await;
    assert_eq!(state.identity.model.as_deref(), Some("Scripted"));
}

#[tokio::test(start_paused = true)]
async fn a_modem_left_at_a_send_prompt_is_freed_with_esc() {
    let mut at_prompt = true;
    let mut bench = Bench::start(handler(move |line| match line {
        // A previous process died after AT+CMGS: the line is swallowed as message text.
        _ if at_prompt && line == "AT" => {
            at_prompt = false;
            silence()
        }
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    bench.ready().await;
    assert!(peer.log().contains(&"ESC".to_owned()), "{:?}", peer.log());
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_never_answers_is_reported_with_what_to_check() {
    let bench = Bench::start(handler(|_| silence()));
    let state = bench
        .wait_state("an init failure", |s| s.last_error.is_some())
        .await;
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("no answer to AT"), "{error}");
    assert!(error.contains("ModemManager"), "{error}");
    assert!(error.contains("baud"), "{error}");
}
