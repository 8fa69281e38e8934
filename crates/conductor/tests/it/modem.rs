//! `conductor modem probe|at` against `conductor sim`, both as real processes over TCP.

use crate::support::{VirtualModemProcess, conductor};

#[test]
fn probe_reports_identity_sim_signal_and_storage_as_json() {
    let sim = VirtualModemProcess::start(&["--personality", "quectel_ec25"]);
    let output = conductor(&["modem", "probe", &sim.device(), "--json"], "");
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("probe prints JSON");
    assert_eq!(report["manufacturer"], "Quectel");
    assert_eq!(report["model"], "EC25");
    assert_eq!(report["sim"], "ready");
    assert_eq!(report["registration"], "home");
    let imei = report["imei"].as_str().expect("imei is text");
    assert_eq!(imei.len(), 15, "{imei}");
    assert!(
        report["iccid"]
            .as_str()
            .is_some_and(|i| i.starts_with("89"))
    );
    assert!(
        report["signal_dbm"]
            .as_i64()
            .is_some_and(|dbm| (-113..=-51).contains(&dbm))
    );
    assert!(report["smsc"].as_str().is_some_and(|s| s.starts_with('+')));
    let storage = report["storage"].as_array().expect("storage is a list");
    assert!(!storage.is_empty());
    for memory in storage {
        assert!(
            memory["used"].as_u64() <= memory["total"].as_u64(),
            "{memory}"
        );
    }
}

#[test]
fn probe_of_a_port_nobody_listens_on_exits_1_saying_what_to_check() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let output = conductor(&["modem", "probe", &format!("tcp://127.0.0.1:{port}")], "");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is the port right"), "{stderr}");
}

#[test]
fn at_console_prints_each_answer_and_fails_when_one_is_an_error() {
    let sim = VirtualModemProcess::start(&[]);
    let output = conductor(&["modem", "at", &sim.device(), "AT+CSQ", "AT+CPMS?"], "");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("> AT+CSQ\n+CSQ: "), "{stdout}");
    assert!(stdout.contains("+CPMS: \"SM\""), "{stdout}");

    let output = conductor(&["modem", "at", &sim.device(), "AT+NOSUCH"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ERROR"));
}

#[test]
fn probe_works_over_a_pseudo_terminal_like_a_usb_serial_port() {
    let sim = VirtualModemProcess::start(&["--pty", "--personality", "simcom_sim800"]);
    let path = sim.pty().expect("the sim printed its pty").to_owned();
    let output = conductor(&["modem", "probe", &path, "--json"], "");
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("probe prints JSON");
    assert_eq!(report["manufacturer"], "SIMCOM_Ltd");
    assert_eq!(report["sim"], "ready");
}
