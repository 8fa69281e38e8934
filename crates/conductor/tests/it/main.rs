//! End-to-end tests of the `conductor` binary: each spawns the real executable, as an
//! operator or a script would run it.

mod bad_input;
mod cli;
mod concurrent_sql;
mod daemon;
mod hardware;
mod http;
mod modem;
mod multinode;
mod ops_alerts;
mod ops_backup;
mod pdu;
mod policy;
mod scan;
mod service;
mod soak;
mod support;
mod toolbox_calls;
mod toolbox_import;
mod toolbox_scripts;
mod toolbox_selftest;
mod torture;
