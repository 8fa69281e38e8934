//! One module per verb of the command line; each turns raw arguments into typed settings,
//! does the work and reports, returning `anyhow` errors with context for `main` to print.

pub mod backup;
pub mod block;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod health;
pub mod http;
pub mod import;
pub mod messages;
pub mod modem;
pub mod pdu;
pub mod prune;
pub mod restore;
pub mod run;
pub mod selftest;
pub mod service;
pub mod sim;
pub mod stats;
pub mod ussd;
pub mod watch;
