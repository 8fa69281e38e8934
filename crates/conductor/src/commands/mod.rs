//! One module per verb of the command line; each turns raw arguments into typed settings,
//! does the work and reports, returning `anyhow` errors with context for `main` to print.

pub mod config;
pub mod demo;
pub mod health;
pub mod http;
pub mod messages;
pub mod modem;
pub mod pdu;
pub mod run;
pub mod sim;
pub mod watch;
