//! Integration tests of the modem driver: scripted peers over in-memory pipes, replayed
//! real-device transcripts, TCP and pseudo-terminals. Paused-time tests run in virtual time.

mod hardware;
mod init;
mod logs;
mod ops;
mod probe;
mod reconnect;
mod send;
mod sim;
mod toolbox;
mod transcripts;
mod transport;
mod urcs;
mod util;
