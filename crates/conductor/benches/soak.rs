//! `cargo bench -p conductor --bench soak`: the equivalent of a busy day through the daemon.
//!
//! `SOAK_MESSAGES` messages (default 100 000; half injected into the virtual modem, half
//! queued with SQL) at full speed through the release `conductor run` and `conductor sim`,
//! with a fault every `SOAK_FAULT_SECONDS` (default 10: unplug 3 s, line noise, reboot, in
//! turn), sampling the daemon's RSS, open descriptors, database size and log size. Prints a
//! table and the verdicts, and exits 1 when one fails. The driver is the CI test's
//! (`tests/it/soak.rs`), at full size.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[path = "../tests/it/soak.rs"]
mod soak;

use std::time::Duration;

fn main() {
    let params = soak::SoakParams {
        messages: support::env_or("SOAK_MESSAGES", 100_000),
        window: 200,
        fault_every: Duration::from_secs(support::env_or("SOAK_FAULT_SECONDS", 10)),
        log_mib: 1,
        log_files: 3,
    };
    println!("soak: {params:?}");
    let report = soak::run(&params);
    soak::print(&report);
    let ok = report.correct
        && report.memory_flat
        && report.fds_flat
        && report.logs_within_cap
        && report.db_growth_constant;
    if !ok {
        eprintln!("soak: a verdict failed");
        std::process::exit(1);
    }
}
