//! The gateway against the virtual network, in-process, with a real SQLite file.
//!
//! One integration binary (STYLE "Tests"). Each test starts its own simulator, database and
//! gateway; modems are connected over in-memory pipes. Test names are sentences.

mod hardware;
mod inbound;
mod lifecycle;
mod modems;
mod outbound;
mod policy;
mod reports;
mod routing;
mod runtime;
mod toolbox;
mod util;
