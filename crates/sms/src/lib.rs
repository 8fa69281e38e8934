//! Conductor's SMS codec: pure functions and types, no I/O, no async, never a panic.
//!
//! Layer "sms codec" of `shared/DESIGN.md`: everything Conductor sends or receives passes
//! through here in TS 27.005 PDU-mode form (SMSC address first, as `AT+CMGL`, `AT+CMGR` and
//! `+CDS` print it).
#![warn(missing_docs)]

pub mod alphabet;
