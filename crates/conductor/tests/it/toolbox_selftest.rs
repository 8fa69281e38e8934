//! `conductor selftest` end to end: the daemon and the virtual network, which routes a message
//! to the modem's own number back to it like any other SMS.

use crate::support::{
    DaemonProcess, Scratch, VirtualModemProcess, conductor, poll, scratch, write_one_modem_config,
};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn selftest_passes_through_the_loopback_and_names_the_missing_step_when_nothing_comes_back() {
    let Scratch { dir, db, config } = scratch("c.db");
    let sim = VirtualModemProcess::start_with_control(&["--number", "+15550000001"]);
    let mut control = sim.control();
    control.call(json!({"op": "status_report", "delay_ms": 200, "status": 0, "enabled": true}));
    write_one_modem_config(
        &config,
        &db,
        &sim.device(),
        json!({
            "inbound": {"sweep_interval": "1s"},
            "http": {"enabled": false},
            "backup": {"enabled": false},
        }),
    );
    let daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"));
    let cfg = config.to_string_lossy().into_owned();
    poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let out = conductor(&["--config", &cfg, "health"], "");
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    })
    .unwrap_or_else(|seen| panic!("never healthy: {seen}\n{}", daemon.log()));

    let out = conductor(
        &[
            "--config",
            &cfg,
            "selftest",
            "--to",
            "+15550000001",
            "--timeout",
            "60s",
            "--json",
        ],
        "",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report}\n{}", daemon.log());
    assert_eq!(report["verdict"], "pass", "{report}");
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 6, "{report}");
    for step in steps {
        assert!(step["at"].is_string(), "a step has no time: {report}");
    }
    let received = steps.last().expect("last step");
    assert!(received["after_ms"].as_i64().expect("ms") >= 0, "{report}");

    // A number the network does not route back: the message leaves but never returns.
    let out = conductor(
        &[
            "--config",
            &cfg,
            "selftest",
            "--to",
            "+15550009999",
            "--timeout",
            "6s",
            "--json",
        ],
        "",
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["verdict"], "fail", "{report}");
    let missing: Vec<&str> = report["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(missing.contains(&"received (+CMTI) and stored"), "{report}");
    assert!(!missing.contains(&"sent (+CMGS accepted)"), "{report}");
}
