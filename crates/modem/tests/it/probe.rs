//! `conductor modem probe`: the report, the read-only promise, and a silent device.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conductor_modem::transport::BoxedIo;
use conductor_modem::{ModemError, ProbeOptions, RegistrationSummary, SimState, probe_with};

use crate::util::*;

async fn probe_peer(handler: Handler) -> (Result<conductor_modem::ProbeReport, ModemError>, Peer) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let peer = Peer::spawn(theirs, handler);
    let io: BoxedIo = Box::new(ours);
    let report = probe_with(io, "/dev/ttyTEST", &ProbeOptions::default()).await;
    (report, peer)
}

/// Commands that would change a setting that survives a power cycle, or spend a PIN try.
fn changes_something(command: &str) -> bool {
    let upper = command.to_ascii_uppercase();
    [
        "AT+CPMS=\"",
        "AT+CSCA=",
        "AT&W",
        "AT+CPIN=",
        "AT+CSMS=",
        "AT+CMGD",
        "AT+CMGS",
    ]
    .iter()
    .any(|p| upper.starts_with(p))
        || (upper.starts_with("AT+CNMI=") && upper != "AT+CNMI=?")
}

#[tokio::test(start_paused = true)]
async fn probe_reports_identity_sim_signal_registration_operator_smsc_and_storage() {
    let (report, peer) = probe_peer(handler(healthy)).await;
    let report = report.expect("probe");
    assert_eq!(report.device, "/dev/ttyTEST");
    assert_eq!(report.identity.manufacturer.as_deref(), Some("Conductor"));
    assert_eq!(report.identity.model.as_deref(), Some("Scripted"));
    assert_eq!(report.identity.revision.as_deref(), Some("1.0.0"));
    assert_eq!(report.identity.imei.as_deref(), Some("356938035643809"));
    assert_eq!(report.identity.imsi.as_deref(), Some("234150123456789"));
    assert_eq!(
        report.identity.iccid.as_deref(),
        Some("89441000123456789012")
    );
    assert_eq!(report.sim, SimState::Ready);
    assert_eq!(report.signal_dbm, Some(-73));
    assert_eq!(report.registration, RegistrationSummary::Home);
    assert_eq!(report.operator.as_deref(), Some("Test Net"));
    assert_eq!(report.smsc.as_deref(), Some("+447785016005"));
    assert_eq!(report.storage.len(), 1);
    let commands = peer.commands();
    assert!(
        !commands.iter().any(|c| changes_something(c)),
        "{commands:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_probe_report_serialises_to_the_json_the_cli_prints() {
    let (report, _peer) = probe_peer(handler(healthy)).await;
    let json = serde_json::to_value(report.expect("probe")).expect("serialisable");
    assert_eq!(json["sim"], "ready");
    assert_eq!(json["registration"], "home");
    assert_eq!(json["signal_dbm"], -73);
    assert_eq!(json["storage"][0]["memory"], "SM");
    assert_eq!(json["storage"][0]["used"], 2);
    assert_eq!(json["storage"][0]["total"], 30);
}

#[tokio::test(start_paused = true)]
async fn probing_a_pin_locked_sim_reports_it_and_spends_no_pin_try() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let (report, peer) = probe_peer(handler(move |line| match line {
        l if l.starts_with("AT+CPIN=") => {
            counted.fetch_add(1, Ordering::SeqCst);
            ok()
        }
        "AT+CPIN?" => ok_with(&["+CPIN: SIM PIN"]),
        "AT+CIMI" | "AT+CSCA?" | "AT+CPMS?" => cme(11),
        other => healthy(other),
    }))
    .await;
    let report = report.expect("probe");
    assert_eq!(report.sim, SimState::PinRequired);
    assert_eq!(report.identity.imsi, None);
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    assert!(!peer.commands().iter().any(|c| changes_something(c)));
}

#[tokio::test(start_paused = true)]
async fn a_device_that_never_answers_gets_an_error_that_says_what_to_check() {
    let (report, _peer) = probe_peer(handler(|_| silence())).await;
    let error = report.expect_err("no answer");
    assert!(matches!(error, ModemError::NoAnswer { .. }), "{error:?}");
    let text = error.to_string();
    for hint in [
        "/dev/ttyTEST",
        "baud",
        "ModemManager",
        "systemctl stop ModemManager",
    ] {
        assert!(text.contains(hint), "{text} lacks {hint}");
    }
}

#[tokio::test(start_paused = true)]
async fn probing_a_modem_without_a_sim_reports_it_absent() {
    let (report, _peer) = probe_peer(handler(|line| match line {
        "AT+CPIN?" => cme(10),
        "AT+CIMI" | "AT+CCID" => cme(10),
        other => healthy(other),
    }))
    .await;
    let report = report.expect("probe");
    assert_eq!(report.sim, SimState::Absent);
    assert_eq!(report.identity.iccid, None);
}
