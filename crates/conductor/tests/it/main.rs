//! End-to-end tests of the `conductor` binary: each spawns the real executable, as an
//! operator or a script would run it.

mod modem;
mod pdu;
mod support;
