//! Integration tests of `conductor-store` on real SQLite files, with external writers as
//! separate threads and `sqlite3` processes (the shell is at /usr/bin/sqlite3; CI installs it).
//!
//! Every test opens its own database in a temp dir and uses the fixed test clock in `util`.

mod alerts;
mod changes;
mod concurrency;
mod inbound;
mod maintenance;
mod outbound;
mod queries;
mod reports;
mod schema;
mod stats;
mod util;
