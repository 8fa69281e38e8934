//! Conductor's housekeeping: what operators of other SMS gateways do with cron jobs and shell
//! scripts, done by the daemon itself on the gateway's one replaceable clock (DESIGN.md
//! "Times"), so a daily backup or a day-long alert episode is tested in seconds.
//!
//! Layer: beside the gateway, above the store. It never talks to a modem; it reads and writes
//! the database through `conductor-store` and reads time from `conductor_gateway::Clock`.
#![warn(missing_docs)]

pub mod alert_sms;
pub mod alerts;
pub mod backup;
mod gz_file;
pub mod import;
pub mod lock;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod scripts;
pub mod stats;
