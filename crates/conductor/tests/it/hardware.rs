//! The SIM PIN as an operator gives it to the real daemon (issue 10, "Living with the modem and
//! the network"): from an environment variable named in the config, so the PIN stays out of
//! the config file; a wrong one is tried once and the modem is reported `pin_wrong`.

use crate::support::{DaemonProcess, VirtualModemProcess, open_db, poll, write_config};
use rusqlite::OptionalExtension;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// `(state, last_error)` of the modem's status row, once there is one.
fn status_row(db: &Path) -> Result<(String, Option<String>), String> {
    if !db.exists() {
        return Err("no database yet".into());
    }
    open_db(db)
        .query_row(
            "SELECT state, last_error FROM modem_status WHERE modem_id = 'm1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no status row yet".into())
}

fn daemon_with_pin_from(
    env_value: &str,
) -> (VirtualModemProcess, DaemonProcess, tempfile::TempDir) {
    let sim = VirtualModemProcess::start(&["--pin", "4321"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.json");
    write_config(
        &config,
        &json!({
            "database": {"path": dir.path().join("gw.db")},
            "modems": [{"id": "m1", "device": sim.device(), "pin_env": "CONDUCTOR_TEST_SIM_PIN"}],
            "http": {"listen": "127.0.0.1:0"},
        }),
    );
    let daemon = DaemonProcess::start_with_env(
        &config,
        &dir.path().join("daemon.log"),
        &[("CONDUCTOR_TEST_SIM_PIN", env_value)],
    );
    (sim, daemon, dir)
}

#[test]
fn the_pin_comes_from_the_variable_the_config_names_and_a_wrong_one_is_reported_pin_wrong() {
    let (_sim, _daemon, dir) = daemon_with_pin_from("4321");
    let db = dir.path().join("gw.db");
    poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || match status_row(&db)? {
            (state, _) if state == "ready" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|seen| panic!("the right PIN from the variable unlocks the SIM: {seen}"));

    let (_sim, daemon, dir) = daemon_with_pin_from("1111");
    let db = dir.path().join("gw.db");
    poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || match status_row(&db)? {
            (_, Some(error)) if error.starts_with("pin_wrong") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|seen| panic!("a wrong PIN shows as pin_wrong: {seen}\n{}", daemon.log()));
    assert!(
        !daemon.log().contains("1111"),
        "the PIN never reaches the log"
    );
}
