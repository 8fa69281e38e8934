//! Integration tests of `conductor-at` through its public API, as the modem task uses it.
//!
//! Every transcript runs through `util::run`, which feeds it whole, one byte at a time and
//! split at every offset, and checks that all feedings give the same events and writes.

mod framing;
mod robustness;
mod sending;
mod timeouts;
mod urcs;
mod ussd;
mod util;
