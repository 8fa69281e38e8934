//! Integration tests of `conductor-http`: the router driven with `oneshot` (no socket) over a
//! real SQLite file, the event stream and webhooks over real local sockets.

mod api;
mod browser;
mod events;
mod idempotency;
mod security;
mod tls;
mod ussd;
mod util;
mod webhooks;
