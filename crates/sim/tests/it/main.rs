//! Integration tests of conductor-sim: one binary, one module per topic (STYLE.md "Tests").

mod determinism;
mod faults;
mod inbound;
mod personalities;
#[cfg(unix)]
mod pty;
mod sending;
mod serving;
mod storage;
mod support;
mod transcripts;
mod v250;
