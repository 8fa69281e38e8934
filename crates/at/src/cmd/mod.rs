//! One module per command family: each builds its command lines and parses the information
//! lines of its answer into typed values.
//!
//! Why here and not in the driver: parsing is pure, so every vendor variant seen in the wild
//! (a bare ICCID, a verbose error, a two-memory `+CPMS`) is a unit test, not a hardware
//! session. Modules are named after the AT mnemonic (`cmgs`), because that is what operators
//! read in logs; the driver's public operations use plain verbs (`send_pdu`).
//!
//! Parsers take the information lines of a [`crate::Response`] (the caller checks its final
//! result first) and return a typed value or a [`crate::ParseError`] naming the line. They
//! skip lines that carry another command's prefix (a vendor's stray notice that is not in the
//! URC table lands among the lines), are strict about their own lines, and never panic.
//!
//! Builders that format only numbers return a [`crate::Command`]; those that embed a caller's
//! string return `Result<Command, InvalidCommand>`, refusing quotes and control characters.

pub mod cmgd;
pub mod cmgl;
pub mod cmgr;
pub mod cmgs;
pub mod cnmi;
pub mod cops;
pub mod cpin;
pub mod cpms;
pub mod creg;
pub mod csca;
pub mod csq;
pub mod identity;
pub mod ussd;

use crate::{InfoLine, InvalidCommand, ParseError, params};

/// The stored-message status of TS 27.005 §3.1 `<stat>`, as PDU mode numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// 0, "REC UNREAD": received, not yet read.
    ReceivedUnread,
    /// 1, "REC READ": received and read.
    ReceivedRead,
    /// 2, "STO UNSENT": stored, not sent.
    StoredUnsent,
    /// 3, "STO SENT": stored and sent.
    StoredSent,
    /// 4, "ALL": only as a `+CMGL` filter.
    All,
}

impl MessageStatus {
    /// The PDU-mode number.
    pub fn number(self) -> u8 {
        match self {
            MessageStatus::ReceivedUnread => 0,
            MessageStatus::ReceivedRead => 1,
            MessageStatus::StoredUnsent => 2,
            MessageStatus::StoredSent => 3,
            MessageStatus::All => 4,
        }
    }

    /// Reads a status given as a PDU-mode number or as a text-mode string (some firmwares
    /// answer with the string even in PDU mode).
    pub fn from_param(value: &str) -> Option<MessageStatus> {
        match params::unquote(value).to_ascii_uppercase().as_str() {
            "0" | "REC UNREAD" => Some(MessageStatus::ReceivedUnread),
            "1" | "REC READ" => Some(MessageStatus::ReceivedRead),
            "2" | "STO UNSENT" => Some(MessageStatus::StoredUnsent),
            "3" | "STO SENT" => Some(MessageStatus::StoredSent),
            "4" | "ALL" => Some(MessageStatus::All),
            _ => None,
        }
    }
}

/// The first information line with `prefix`, and the text after its colon.
fn find<'a>(
    lines: &'a [InfoLine],
    prefix: &'static str,
) -> Result<(&'a InfoLine, &'a str), ParseError> {
    lines
        .iter()
        .find_map(|l| params::after_prefix(&l.text, prefix).map(|rest| (l, rest)))
        .ok_or(ParseError::MissingLine { expected: prefix })
}

/// Every information line with `prefix`, each with the text after its colon.
fn find_all<'a>(
    lines: &'a [InfoLine],
    prefix: &'static str,
) -> impl Iterator<Item = (&'a InfoLine, &'a str)> {
    lines
        .iter()
        .filter_map(move |l| params::after_prefix(&l.text, prefix).map(|rest| (l, rest)))
}

/// Quotes a caller's string for a command line, refusing a `"` inside it (V.250 §5.4.2.2
/// has no escape for it in most firmwares). Control characters are caught by
/// [`crate::Command::new`].
fn quoted(value: &str) -> Result<String, InvalidCommand> {
    if value.contains('"') {
        return Err(InvalidCommand::QuoteInString {
            value: value.to_owned(),
        });
    }
    Ok(format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_status_reads_numbers_and_text_mode_strings() {
        assert_eq!(
            MessageStatus::from_param("0"),
            Some(MessageStatus::ReceivedUnread)
        );
        assert_eq!(
            MessageStatus::from_param("\"REC READ\""),
            Some(MessageStatus::ReceivedRead)
        );
        assert_eq!(MessageStatus::from_param("9"), None);
        assert_eq!(MessageStatus::All.number(), 4);
    }

    #[test]
    fn quoted_refuses_embedded_quotes() {
        assert_eq!(quoted("SM"), Ok("\"SM\"".to_owned()));
        assert!(quoted("S\"M").is_err());
    }
}
