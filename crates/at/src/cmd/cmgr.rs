//! `AT+CMGR`: read one message from the read memory (TS 27.005 §4.2, PDU mode).
//!
//! The answer is a two-line construct, `+CMGR: <stat>,[<alpha>],<length>` then the PDU
//! line. DESIGN "Receiving": a slot is deleted only after reading it again and finding the
//! same fingerprint, so this read comes before every `AT+CMGD`.

use super::{MessageStatus, cmgl::parse_stat, find};
use crate::{Command, InfoLine, ParseError, params};

/// `AT+CMGR=<index>`.
pub fn read(index: u32) -> Command {
    Command::trusted(format!("AT+CMGR={index}"))
}

/// A message read from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its status (`<stat>`). Reading a "REC UNREAD" message marks it read on the SIM.
    pub stat: MessageStatus,
    /// The phonebook name of the sender, when the modem fills it in (`<alpha>`).
    pub alpha: Option<String>,
    /// The TPDU length in octets, without the SMSC address (`<length>`).
    pub length: u32,
    /// The PDU, hex, SMSC address first.
    pub pdu: String,
}

/// Parses the answer. An empty slot gives `Ok(None)`: modems answer it with a bare `OK`, or
/// with `+CMGR: 0,,0` and no PDU line (an `+CMS ERROR: 321` is the caller's to read from
/// the final result).
pub fn parse(lines: &[InfoLine]) -> Result<Option<StoredMessage>, ParseError> {
    let (line, rest) = match find(lines, "+CMGR") {
        Ok(found) => found,
        Err(_) => return Ok(None),
    };
    let text = &line.text;
    let items = params::split(rest);
    let stat = parse_stat(items.first(), text)?;
    let (alpha, length) = match items.len() {
        2 => (None, params::number(items.get(1), text, "<length>")?),
        _ => (
            params::optional_string(items.get(1)),
            params::number(items.get(2), text, "<length>")?,
        ),
    };
    match &line.pdu {
        Some(pdu) => Ok(Some(StoredMessage {
            stat,
            alpha,
            length,
            pdu: pdu.clone(),
        })),
        None if length == 0 => Ok(None),
        None => Err(ParseError::MissingPdu { line: text.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDU: &str =
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

    #[test]
    fn the_command_names_the_slot() {
        assert_eq!(read(7).line(), "AT+CMGR=7");
    }

    #[test]
    fn a_message_parses_with_and_without_alpha() {
        let expected = StoredMessage {
            stat: MessageStatus::ReceivedUnread,
            alpha: None,
            length: 39,
            pdu: PDU.into(),
        };
        assert_eq!(
            parse(&[InfoLine::with_pdu("+CMGR: 0,,39", PDU)]),
            Ok(Some(expected.clone()))
        );
        assert_eq!(
            parse(&[InfoLine::with_pdu("+CMGR: 0,39", PDU)]),
            Ok(Some(expected))
        );
    }

    #[test]
    fn an_empty_slot_is_none() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[InfoLine::new("+CMGR: 0,,0")]), Ok(None));
    }

    #[test]
    fn a_header_without_its_pdu_is_an_error() {
        assert_eq!(
            parse(&[InfoLine::new("+CMGR: 1,,39")]),
            Err(ParseError::MissingPdu {
                line: "+CMGR: 1,,39".into()
            })
        );
    }
}
