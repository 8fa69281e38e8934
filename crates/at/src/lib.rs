//! Sans-IO AT command engine: modem bytes in, events out; commands in, bytes out.
//!
//! Layer "modem" of `shared/DESIGN.md`, lower half. One engine serves the serial port, TCP
//! (ser2net, network-attached modems) and the virtual modem, and every edge case (a `+CMTI`
//! inside a `+CMGL` listing, the `> ` prompt, `+CMS ERROR` after the PDU, a stuck prompt,
//! late answers after a timeout, garbage on the line) is tested with no I/O and no clock.
//!
//! Not here: ports, tasks, retries, reconnects and the choice of what to send
//! (`conductor-modem`), and PDU decoding (`conductor-sms`; PDUs travel through this crate
//! as hex text). This crate contains no networking code, spawns nothing and never reads the
//! OS clock: every input takes `now`, as quinn-proto does. Its manifest has no tokio.
//!
//! Keeps promise 5 ("bad input gets a clear answer, never a crash"): any byte sequence gives
//! events or a typed [`ParseError`], never a panic, and the engine stays usable. It is the
//! base of promise 3 ("sent at most once"): an event says whether the PDU of a send had
//! been written when the command ended ([`Event::TimedOut::pdu_sent`]).
//!
//! Spec: ITU-T V.250 (line format, echo, result codes); 3GPP TS 27.005 (SMS commands,
//! `+CMS ERROR` §3.2.5, the `> ` prompt §3.5.1 and §4.3); 3GPP TS 27.007 (`+CME ERROR` §9.2,
//! registration, signal, SIM, identity).
//!
//! # Layout
//!
//! - [`engine`]: the state machine ([`Engine`]), the only stateful part.
//! - `lexer`: bytes to lines and prompts (private; the engine feeds it byte by byte).
//! - [`response`]: what a command's answer looks like ([`Response`], [`FinalResult`]).
//! - [`urc`]: the unsolicited result code table and typed [`Urc`]s.
//! - [`codes`]: `+CMS ERROR` / `+CME ERROR` codes with meanings and retry classes.
//! - [`command`]: a command line plus its timeout and data phase ([`Command`]).
//! - [`cmd`]: one module per command family: builds the line, parses the information lines.
//! - [`params`]: splitting AT parameter lists (quotes, parenthesised ranges).
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use conductor_at::{cmd::csq, Engine, Event};
//!
//! let now = Instant::now(); // the caller's clock, never the engine's
//! let mut engine = Engine::new();
//! let id = engine.submit(now, csq::query()).expect("engine is idle");
//! assert_eq!(engine.poll_transmit().as_deref(), Some(&b"AT+CSQ\r"[..]));
//!
//! engine.handle_input(now, b"\r\n+CSQ: 17,99\r\n\r\nOK\r\n");
//! match engine.poll_event() {
//!     Some(Event::Completed { id: done, response, .. }) => {
//!         assert_eq!(done, id);
//!         let quality = csq::parse(&response.lines).expect("well-formed");
//!         assert_eq!(quality.dbm(), Some(-79));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![warn(missing_docs)]

pub mod cmd;
pub mod codes;
pub mod command;
pub mod engine;
mod error;
mod lexer;
pub mod params;
pub mod response;
pub mod urc;

pub use codes::{CmeCode, CmsCode, ErrorClass};
pub use command::Command;
pub use engine::{Busy, CommandId, Config, DiscardReason, Engine, Event};
pub use error::{InvalidCommand, ParseError};
pub use response::{FinalResult, InfoLine, Response};
pub use urc::Urc;
