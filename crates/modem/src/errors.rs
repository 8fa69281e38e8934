//! The driver's failure domain: [`ModemError`] for every operation, [`SendError`] for
//! `send_pdu`, whose caller must know whether the message may have left.
//!
//! Why two enums: a failed query is retried or reported, nothing more; a failed send decides
//! a row's fate under promise 3 ("sent at most once"), so its error says on which side of the
//! `> ` prompt the failure happened (DESIGN "Decisions / Sending").
//!
//! Accessors instead of deep matches, as h2 does: [`ModemError::is_transient`],
//! [`ModemError::cms_code`], [`SendError::is_ambiguous`], [`SendError::is_retryable`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use conductor_at::{CmeCode, CmsCode, ErrorClass, FinalResult, InvalidCommand, ParseError};

use crate::state::{Phase, SimState};
use crate::transport::OpenError;

/// Why a modem operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModemError {
    /// The connection was lost (I/O error, end of stream, unplugged) while the request was
    /// queued or running. The task reconnects by itself; try again later.
    #[error("the connection to the modem was lost: {reason}")]
    Disconnected {
        /// What happened, with what to check.
        reason: String,
    },
    /// The task is not in a state to run commands (connecting, initialising, waiting to
    /// reconnect). Transient.
    #[error("the modem is not ready (it is {phase}){}", last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotReady {
        /// Where the task is.
        phase: Phase,
        /// Why, if it is in trouble.
        last_error: Option<String>,
    },
    /// No final result code came in time. The engine cancelled and drained the command.
    #[error("`{command}` got no answer within {timeout:?}")]
    Timeout {
        /// The command line (a PIN is masked).
        command: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Several commands in a row timed out: the modem is hung. The task reopens the port.
    #[error(
        "the modem stopped answering ({count} commands in a row timed out); check that it is \
         powered and that no other program talks on the same port"
    )]
    NotResponding {
        /// Consecutive timeouts.
        count: u32,
    },
    /// The modem restarted (a start-up notice such as `RDY` arrived) while the request ran:
    /// its answer will never come. The task re-runs init.
    #[error("the modem restarted (`{notice}`) while `{command}` was running")]
    Rebooted {
        /// The command that was running (a PIN is masked).
        command: String,
        /// The start-up notice.
        notice: String,
    },
    /// The modem answered with an error final result (`ERROR`, `+CMS ERROR`, `+CME ERROR`).
    #[error("`{command}` failed: {result}")]
    Command {
        /// The command line (a PIN is masked).
        command: String,
        /// The modem's final result code.
        result: FinalResult,
    },
    /// The answer did not have the expected shape.
    #[error("cannot read the answer to `{command}`: {source}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        #[source]
        source: ParseError,
    },
    /// The command was refused before reaching the modem (a control character in a console
    /// line, a PDU that is not hex).
    #[error("refused to send the command: {0}")]
    InvalidCommand(#[from] InvalidCommand),
    /// The device could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading from or writing to an open device failed.
    #[error("{context}: {source}")]
    Io {
        /// What the task was doing.
        context: String,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The device opened but nothing answers `AT`.
    #[error(
        "no answer to AT from {device}{}: check the port path (USB modems expose several; the AT \
         port is often ttyUSB2; `conductor modem scan` tells which), the baud rate ({baud}), and \
         that no other process holds the port (ModemManager: `systemctl stop ModemManager`)",
        if *garbled { ", only unreadable bytes: wrong baud rate? (set modems[].baud_rate to the \
                       modem's, often 115200 or 9600)" } else { "" }
    )]
    NoAnswer {
        /// The device string.
        device: String,
        /// The baud rate used (meaningless for TCP, shown anyway).
        baud: u32,
        /// Bytes came back, but none formed an answer: framing garbage, the sign of a baud
        /// rate the modem does not use.
        garbled: bool,
    },
    /// The SIM is not usable: absent, waiting for a PIN that is not configured, PUK-locked,
    /// or still busy after the configured wait.
    #[error("SIM not usable ({state}): {advice}")]
    Sim {
        /// What `AT+CPIN?` said.
        state: SimState,
        /// What to do about it.
        advice: String,
    },
    /// The SIM rejected the configured PIN. It is never sent again by this task: two more
    /// wrong tries would block the SIM.
    #[error(
        "the SIM rejected the configured PIN; it will not be tried again (fix the PIN in the \
         configuration and restart; three wrong PINs block the SIM)"
    )]
    PinRejected,
    /// The modem lacks something the request needs.
    #[error("{what}")]
    Unsupported {
        /// What is missing.
        what: String,
    },
    /// The modem task has stopped (shutdown); no more commands run.
    #[error("the modem task has stopped")]
    Stopped,
}

impl ModemError {
    /// Whether the same request can succeed later without anyone changing anything: lost
    /// connections, timeouts, a busy SIM, retryable `+CMS`/`+CME` codes.
    pub fn is_transient(&self) -> bool {
        match self {
            ModemError::Disconnected { .. }
            | ModemError::NotReady { .. }
            | ModemError::Timeout { .. }
            | ModemError::NotResponding { .. }
            | ModemError::Rebooted { .. }
            | ModemError::Io { .. }
            | ModemError::NoAnswer { .. } => true,
            ModemError::Command { result, .. } => result.class() == Some(ErrorClass::Retryable),
            ModemError::Open(error) => error.kind.is_transient(),
            ModemError::Sim { state, .. } => {
                !matches!(state, SimState::PinRequired | SimState::PukRequired)
            }
            ModemError::Parse { .. }
            | ModemError::InvalidCommand(_)
            | ModemError::PinRejected
            | ModemError::Unsupported { .. }
            | ModemError::Stopped => false,
        }
    }

    /// The `+CMS ERROR` code, when the modem answered with one.
    pub fn cms_code(&self) -> Option<CmsCode> {
        match self {
            ModemError::Command { result, .. } => result.cms_code(),
            _ => None,
        }
    }

    /// The `+CME ERROR` code, when the modem answered with one.
    pub fn cme_code(&self) -> Option<CmeCode> {
        match self {
            ModemError::Command { result, .. } => result.cme_code(),
            _ => None,
        }
    }

    /// The modem's final result, when it answered with an error.
    pub fn final_result(&self) -> Option<&FinalResult> {
        match self {
            ModemError::Command { result, .. } => Some(result),
            _ => None,
        }
    }

    /// Whether the error means the connection is gone (the task reconnects by itself).
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            ModemError::Disconnected { .. }
                | ModemError::Io { .. }
                | ModemError::NotResponding { .. }
                | ModemError::Open(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ModemError {
        ModemError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

/// Why `send_pdu` did not return a message reference. The variant tells on which side of the
/// `> ` prompt it failed, which is what DESIGN "Decisions / Sending" decides on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The modem refused `AT+CMGS` before taking the PDU (`+CMS ERROR` instead of the
    /// prompt): the message surely did not leave. Retry when `retryable`.
    #[error("the modem refused the send before taking the PDU: {result}")]
    Rejected {
        /// The `+CMS ERROR` code, if the answer had one.
        code: Option<CmsCode>,
        /// The final result as received.
        result: FinalResult,
        /// Whether trying again later can succeed (the code's class; a bare `ERROR` counts as
        /// retryable, bounded by the caller's attempt limit).
        retryable: bool,
    },
    /// The command never reached the point where the modem could have the PDU: the task was
    /// not ready, the link dropped before the prompt, the prompt never came (the engine
    /// cancelled with ESC), or the PDU was not valid hex. Nothing left.
    #[error("the message was not sent: {0}")]
    NotSent(ModemError),
    /// The modem took the PDU and answered with an error: the network did not accept the
    /// message. Not ambiguous, and not retried automatically (only errors before the PDU are).
    #[error("the modem took the PDU and then refused the send: {result}")]
    Failed {
        /// The `+CMS ERROR` code, if the answer had one.
        code: Option<CmsCode>,
        /// The final result as received.
        result: FinalResult,
    },
    /// The PDU was written after the prompt and then no verdict came: a timeout, a lost
    /// connection, a modem restart, or an `OK` without a `+CMGS` reference. The message may
    /// or may not have left: the row becomes `unknown` and is never resent by itself.
    #[error("the send is ambiguous (the PDU was written, then: {reason})")]
    Ambiguous {
        /// What happened after the PDU was written.
        reason: String,
    },
}

impl SendError {
    /// Whether the message may have left (promise 3: never resend it automatically).
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, SendError::Ambiguous { .. })
    }

    /// Whether an automatic retry is allowed and may succeed: only failures before the
    /// modem took the PDU, and only transient ones.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Rejected { retryable, .. } => *retryable,
            SendError::NotSent(error) => error.is_transient(),
            SendError::Failed { .. } | SendError::Ambiguous { .. } => false,
        }
    }

    /// The `+CMS ERROR` code, if the modem gave one.
    pub fn cms_code(&self) -> Option<CmsCode> {
        match self {
            SendError::Rejected { code, .. } | SendError::Failed { code, .. } => *code,
            SendError::NotSent(error) => error.cms_code(),
            SendError::Ambiguous { .. } => None,
        }
    }
}

/// Masks the PIN in `AT+CPIN="1234"` (and the PUK form) so a command line can be logged or
/// put in an error. Other lines come back unchanged.
pub fn redact(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("AT+CPIN=")
        || upper.starts_with("AT+CPIN2=")
        || upper.starts_with("AT+CLCK=")
    {
        let head = &line[..line.find('=').map_or(line.len(), |i| i + 1)];
        format!("{head}<redacted>")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_never_appear_in_redacted_lines() {
        assert_eq!(redact("AT+CPIN=\"1234\""), "AT+CPIN=<redacted>");
        assert_eq!(redact("at+cpin=\"1234\",\"5678\""), "at+cpin=<redacted>");
        assert_eq!(redact("AT+CPIN?"), "AT+CPIN?");
        assert_eq!(redact("AT+CSQ"), "AT+CSQ");
    }

    #[test]
    fn transience_follows_the_error_class() {
        let busy = ModemError::Command {
            command: "AT+CMGS=23".into(),
            result: FinalResult::CmsError(CmsCode(314)),
        };
        assert!(busy.is_transient());
        assert_eq!(busy.cms_code(), Some(CmsCode(314)));
        let bad = ModemError::Command {
            command: "AT+CMGS=23".into(),
            result: FinalResult::CmsError(CmsCode(304)),
        };
        assert!(!bad.is_transient());
        assert!(!ModemError::PinRejected.is_transient());
        assert!(
            ModemError::Disconnected {
                reason: "eof".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn only_failures_before_the_prompt_are_retryable() {
        let rejected = SendError::Rejected {
            code: Some(CmsCode(42)),
            result: FinalResult::CmsError(CmsCode(42)),
            retryable: true,
        };
        assert!(rejected.is_retryable() && !rejected.is_ambiguous());
        let ambiguous = SendError::Ambiguous {
            reason: "timeout".into(),
        };
        assert!(!ambiguous.is_retryable() && ambiguous.is_ambiguous());
        let failed = SendError::Failed {
            code: Some(CmsCode(350)),
            result: FinalResult::CmsError(CmsCode(350)),
        };
        assert!(!failed.is_retryable() && !failed.is_ambiguous());
    }
}
